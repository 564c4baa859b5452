"""End-to-end runs on a local Ray (survey.run.pipeline): catalogues lsdb reads, split = fused, kill and resume, refusals, real fields.

The model is the stand-in of ``tests/survey/survey_helpers.py`` (not trained: it thresholds
the brightest 170-231 MHz pixel), so these tests check plumbing - what is read, scored,
merged, written, resumed - never astronomy.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from survey.exceptions import BadInputError, HaloSurveyError
from survey.output import paths
from survey.run.candidates import detections, merge_detections, neighbour_groups
from survey.run.manifest import read_manifest
from survey.run.pipeline import run
from survey.run.plan import plan_scan
from survey.sky import healpix
from tests.survey.run.helpers import (
    FailingSource,
    survey_args,
)
from tests.survey.survey_helpers import free_cpus_within


def candidate_frame(output: Path):
    """Candidate rows in ``_healpix_29`` order, without the per-run ``run_id``."""
    table = pq.read_table(paths.dataset_dir(paths.catalog_dir(output, kind="candidates")).path)
    table = table.drop_columns([c for c in ("run_id", "Norder", "Dir", "Npix") if c in table.column_names])
    return table.sort_by("_healpix_29").to_pandas()


@pytest.fixture(scope="module")
def uninterrupted(ray_local, model, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted") / "out dir"
    return run(survey_args(model, output, all_scores=True)), output


@pytest.mark.ray
def test_scan_writes_a_valid_catalogue_that_lsdb_reads_back(uninterrupted):
    import lsdb
    from hats.io.validation import is_valid_catalog

    summary, output = uninterrupted
    root = paths.catalog_dir(output, kind="candidates")
    assert summary.manifest.status == "complete" and summary.manifest.tiles_done == 6
    assert summary.manifest.windows == 1382 and summary.candidates > 0
    assert summary.candidates_per_deg2 == pytest.approx(summary.candidates / summary.area_deg2)
    assert is_valid_catalog(root, strict=True)
    opened = lsdb.open_catalog(root, columns=["ra", "dec", "score", "n_windows", "psz2_name"]).compute()
    assert len(opened) == summary.candidates
    assert sorted(opened["score"].round(6)) == sorted(candidate_frame(output)["score"].round(6))
    assert not (output / "work").exists()  # the work catalogue is removed once the run is complete
    assert read_manifest(output).candidates == summary.candidates


@pytest.mark.ray
def test_candidates_are_the_merged_detections_of_the_window_scores(uninterrupted):
    summary, output = uninterrupted
    scores = pq.read_table(paths.dataset_dir(paths.catalog_dir(output, kind="scores")).path).to_pandas()
    assert len(scores) == 1382 == summary.manifest.windows
    order = int(summary.manifest.provenance["window_order"])
    hit = detections(scores["score"].to_numpy(), threshold=0.95)
    ipix = scores["window_ipix"].to_numpy()[hit]
    peaks, sizes = merge_detections(ipix, scores["score"].to_numpy()[hit], order=order)
    frame = candidate_frame(output)
    assert sorted(frame["window_ipix"]) == sorted(ipix[peaks])
    assert dict(zip(frame["window_ipix"], frame["n_windows"])) == dict(zip(ipix[peaks], sizes))
    # One group spans several tiles, so the merge crossed tile boundaries.
    labels = neighbour_groups(ipix, order=order)
    tiles = healpix.parent(ipix, order=order, parent_order=5)
    assert max(len(set(tiles[labels == label])) for label in set(labels)) > 1
    assert frame["n_windows"].sum() == hit.sum()
    assert len(frame["cutout"][0]) == 64 * 64 * 4


@pytest.mark.ray
def test_split_stages_write_the_rows_of_fused_ones(uninterrupted, ray_local, model, tmp_path):
    """Their actors take a tile per task and write it, as fused actors do (one node: ``auto`` lets them)."""
    summary, reference = uninterrupted
    output = tmp_path / "split"
    split = run(survey_args(model, output, all_scores=True, stages="split", read_concurrency=1))
    assert [run.manifest.arguments["stages"] for run in (summary, split)] == ["fused", "split"]
    assert split.manifest.arguments["tile_writes"] == "actors"
    assert split.manifest.status == "complete" and split.manifest.windows == summary.manifest.windows
    assert candidate_frame(output).equals(candidate_frame(reference))
    scores = [pq.read_table(paths.dataset_dir(paths.catalog_dir(out, kind="scores")).path).drop_columns(["run_id"])
              .sort_by("_healpix_29") for out in (output, reference)]
    assert scores[0].equals(scores[1])


def test_split_stages_send_the_driver_only_detections_and_counts_and_write_the_same_candidates(
        uninterrupted, ray_local, model, tmp_path):
    summary, reference = uninterrupted
    output = tmp_path / "split-detections"
    # The driver writes (a local output on a multi-node Ray); no --all-scores: detections and counts travel.
    split = run(survey_args(model, output, stages="split", read_concurrency=1, tile_writes="driver"))
    assert split.manifest.arguments["tile_writes"] == "driver"
    assert split.manifest.status == "complete" and split.manifest.windows == summary.manifest.windows
    assert candidate_frame(output).equals(candidate_frame(reference))


def test_tiles_the_driver_writes_equal_tiles_the_actors_write(uninterrupted, ray_local, model, tmp_path):
    """The default on one node: fused actors write their tiles and send the driver one row each."""
    summary, reference = uninterrupted
    output = tmp_path / "driver-writes"
    by_driver = run(survey_args(model, output, all_scores=True, tile_writes="driver"))
    assert [r.manifest.arguments["tile_writes"] for r in (summary, by_driver)] == ["actors", "driver"]
    assert by_driver.manifest.windows == summary.manifest.windows
    assert {n: sorted(t) for n, t in by_driver.manifest.nodes.items()} == {n: sorted(t) for n, t in summary.manifest.nodes.items()}
    assert candidate_frame(output).equals(candidate_frame(reference))
    scores = [pq.read_table(paths.dataset_dir(paths.catalog_dir(out, kind="scores")).path).drop_columns(["run_id"])
              .sort_by("_healpix_29") for out in (output, reference)]
    assert scores[0].equals(scores[1])


@pytest.mark.ray
def test_a_killed_run_resumes_to_the_rows_of_an_uninterrupted_one(ray_local, model, tmp_path, uninterrupted):
    _, reference = uninterrupted
    output = tmp_path / "resumed"
    args = survey_args(model, output, all_scores=True)
    tiles = [int(t) for t in plan_scan(args).tiles]
    with pytest.raises(HaloSurveyError, match=rf"simulated crash while reading tile 5/{tiles[-1]}\); .*rerun with --resume"):
        run(args, source=FailingSource(crash_tile=tiles[-1]))
    assert free_cpus_within(2) == 2, "the stopped run's inference actor still holds a CPU: the resume would hang"
    assert read_manifest(output).status == "interrupted"
    assert not paths.properties_file(paths.catalog_dir(output, kind="candidates")).exists()

    # Second attempt: one tile cannot be read; the run goes on and says which.
    partial = run(replace(args, resume=True, run_id="second"), source=FailingSource(bad_tile=tiles[-1]))
    assert partial.manifest.status == "partial"
    assert [f.tile for f in partial.manifest.failed] == [tiles[-1]]
    assert f"field {tiles[-1]}.fits" in partial.manifest.failed[0].error
    assert partial.manifest.tiles_done_before + partial.manifest.tiles_done == len(tiles) - 1

    final = run(replace(args, resume=True, run_id="third"))
    assert final.manifest.status == "complete" and final.manifest.tiles_done == 1
    assert final.manifest.run_ids[-2:] == ["second", "third"]
    assert candidate_frame(output).equals(candidate_frame(reference))
    scores = pq.read_table(paths.dataset_dir(paths.catalog_dir(output, kind="scores")).path)
    assert scores.num_rows == 1382 and len(set(scores.column("window_ipix").to_pylist())) == 1382
    assert not list(output.rglob("*.tmp"))


@pytest.mark.ray
@pytest.mark.parametrize("stages", ["fused", "split"])
def test_a_stopped_run_gives_its_actors_back_while_its_error_is_kept(model, tmp_path, stages):
    # A fresh process (the leak showed there, not after this module's earlier streams), with
    # the cyclic garbage collector off: before the fix, 1 of 2 CPUs stayed with the split
    # layout's actor.
    probe = subprocess.run([sys.executable, "-m", "tests.survey.run.stopped_run_probe", str(model), str(tmp_path / "out"),
                            stages],
                           capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[3])
    assert "free_cpus=2.0" in probe.stdout, probe.stdout[-2000:] + probe.stderr[-3000:]


@pytest.mark.ray
def test_a_second_run_into_the_same_output_is_refused(uninterrupted, model, ray_local):
    _, output = uninterrupted
    with pytest.raises(BadInputError, match="pass --overwrite or --resume"):
        run(survey_args(model, output))


@pytest.mark.ray
@pytest.mark.realdata
def test_targets_on_the_real_sources_match_psz2_names(ray_local, model, gleam_dir, catalogs_dir, tmp_path):
    args = survey_args(model, tmp_path / "targets", mode="targets", catalogs="images", source=f"fits:{gleam_dir}",
                       region="allsky", match_catalogs="psz2")
    summary = run(args)
    assert summary.manifest.status == "complete" and summary.candidates == 46
    frame = candidate_frame(tmp_path / "targets").set_index("target_name")
    assert frame["score"].notna().all() and (frame["target_catalog"] == "images").all()
    # Data README: A2744 <-> PSZ2 G008.94-81.22 at 1.29', A3399 <-> PSZ2 G257.32-22.19 at 0.01'.
    assert frame.loc["A2744", "psz2_name"] == "PSZ2 G008.94-81.22"
    assert frame.loc["A2744", "psz2_sep_arcmin"] == pytest.approx(1.29, abs=0.05)
    assert frame.loc["A3399", "psz2_name"] == "PSZ2 G257.32-22.19"
    for name in ("A2680", "A2693", "AS0084", "A0122", "RXC J0137.2-0912"):
        assert pd.isna(frame.loc[name, "psz2_name"]), name


@pytest.mark.ray
@pytest.mark.realdata
def test_a_blind_scan_over_a_real_field_reports_candidates_per_deg2(ray_local, model, gleam_dir, tmp_path):
    args = survey_args(model, tmp_path / "real", source=f"fits:{gleam_dir}", region="cone:3.586,-30.39,0.8")
    summary = run(args)
    assert summary.manifest.status == "complete" and not summary.manifest.failed
    assert summary.area_deg2 > 0 and summary.candidates_per_deg2 is not None
    assert summary.manifest.provenance["source"] == f"fits:{gleam_dir}"


@pytest.mark.ray
def test_a_run_writes_to_a_filesystem_uri(ray_local, model):
    import lsdb

    output = "memory://halo-survey-test/run"
    summary = run(survey_args(model, output, region="cone:339.6,-39.6,0.5"))
    root = paths.catalog_dir(output, kind="candidates")
    assert summary.manifest.status == "complete" and paths.properties_file(root).exists()
    assert len(lsdb.open_catalog(root).compute()) == summary.candidates
    assert read_manifest(output).candidates == summary.candidates
    assert not (paths.as_upath(output) / "work").exists()
