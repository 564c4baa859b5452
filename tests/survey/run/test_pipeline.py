"""The survey run: argument checks, the stages on plain dicts, and end-to-end runs on a local Ray.

The model is the stand-in of ``standin_model.py`` (not trained: it thresholds the brightest
170-231 MHz pixel), so these tests check plumbing - what is read, scored, merged, written,
resumed - never astronomy.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from survey.defaults import DEMO_REGION
from survey.exceptions import BadInputError, HaloSurveyError, ModelCardError, RemoteServiceError
from survey.images.base import BandImage
from survey.images.mock import MockSky, MockSource
from survey.model.normalisation import Normalisation
from survey.model.preprocess import IMAGE_COLUMN
from survey.output import paths
from survey.run.arguments import SurveyArguments, parse_source
from survey.run.candidates import detections, merge_detections, neighbour_groups
from survey.run.manifest import RunManifest, read_manifest
from survey.run.pipeline import (
    CPU_ACTOR_THREADS,
    RunSummary,
    TileAssembler,
    format_summary,
    inference_actors,
    inference_resources,
    plan_scan,
    plan_targets,
    run_with_client,
)
from survey.run.stages import Predictor, TileScorer, preprocess_batch, preprocess_tile, work_items
from survey.sky import healpix
from survey.sky.tiling import windows_in_tile
from tests.survey.survey_helpers import NORMALISATION, expected_score, free_cpus_within, local_ray, write_standin

SMALL_REGION = "cone:339.6,-39.6,1.2"
"""Six order-5 tiles of the mock sky (1,382 windows at the default window order 10) where the
stand-in's detections form a group spanning several tiles: the merge must cross tile boundaries."""


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_standin(tmp_path_factory.mktemp("model"))


def survey_args(model: Path, output: Path, **kwargs) -> SurveyArguments:
    defaults = {"region": SMALL_REGION, "progress": False, "match_catalogs": ()}
    return SurveyArguments(model=model, output=output, **{**defaults, **kwargs})


# --------------------------------------------------------------------------------------
# Arguments (no Ray)
# --------------------------------------------------------------------------------------


def test_defaults_are_the_demo_scan_of_the_mock_sky(model, tmp_path):
    args = SurveyArguments(model=model, output=tmp_path)
    assert (args.region, args.source_spec.kind, args.mode) == (DEMO_REGION, "mock", "scan")
    assert SurveyArguments(mode="targets", model=model, output=tmp_path).region == "gleam"


def test_the_demo_region_holds_injected_mock_halos():
    assert len(MockSky(seed=0).truth(DEMO_REGION)) >= 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"region": "cone:1,2"}, BadInputError, "three numbers"),
        ({"resume": True, "overwrite": True}, BadInputError, "pass one"),
        ({"threshold": 1.0}, BadInputError, "strictly between 0 and 1"),
        ({"tile_order": 9, "window_order": 5}, BadInputError, "tile order <= window order"),
        ({"batch_size": 0}, BadInputError, "batch_size"),
        ({"source": "fits:/no/such dir"}, BadInputError, "does not exist"),
        ({"source": "mock:x"}, BadInputError, "integer seed"),
        ({"mode": "targets", "catalogs": "psz2,nope"}, BadInputError, "nope"),
        ({"mode": "targets", "catalogs": "images"}, BadInputError, "fits:DIR"),
        ({"stages": "both"}, BadInputError, "auto, fused, split"),
        ({"read_concurrency": 2}, BadInputError, "fused .* pass --stages split"),
    ],
)
def test_bad_arguments_are_refused_before_any_compute(model, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        survey_args(model, tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "fused"),
    [
        ({}, True),  # CPU inference on the mock sky: one actor does everything
        ({"num_gpus": 1.0}, False),  # CPUs preprocess while the GPU infers
        ({"source": "skyview"}, False),  # reads wait on the network
        ({"num_gpus": 1.0, "stages": "fused"}, True),
        ({"stages": "split", "read_concurrency": 2}, False),
    ],
)
def test_stages_are_fused_for_cpu_inference_unless_asked_otherwise(model, tmp_path, kwargs, fused):
    assert survey_args(model, tmp_path, **kwargs).fused_stages is fused


def test_fused_stages_start_one_actor_per_cpu_split_stages_one(model, tmp_path, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # Ray Data would start a local Ray on every core
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert inference_actors(survey_args(model, tmp_path)) == 6
    assert inference_actors(survey_args(model, tmp_path, concurrency=3)) == 3
    assert inference_actors(survey_args(model, tmp_path, stages="split")) == 1
    assert inference_actors(survey_args(model, tmp_path, num_gpus=1.0)) == 1


def test_a_missing_model_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ModelCardError, match=r"nothing\.onnx not found; pass --model"):
        SurveyArguments(model=tmp_path / "nothing.onnx", output=tmp_path)


def test_source_names_keep_spaces_and_colons():
    assert parse_source("fits:/tmp").directory == Path("/tmp")
    assert parse_source("mock:3").text == "mock:3"


# --------------------------------------------------------------------------------------
# Stages on plain dicts (no Ray)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_plan(model, tmp_path_factory):
    args = survey_args(model, tmp_path_factory.mktemp("plan"))
    return args, plan_scan(args)


def tile_rows(args, tile, source=None, normalisation=NORMALISATION):
    return preprocess_tile({"tile": tile, "targets": ""}, source=source or MockSource(MockSky(seed=0)),
                           tile_order=args.tile_order, window_order=args.window_order, region=args.region_spec,
                           normalisation=normalisation)


def test_a_tile_emits_one_row_per_window_of_the_region(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile)
    windows = windows_in_tile(tile, region=args.region_spec)
    assert rows["window_ipix"].tolist() == windows.ipix.tolist() == list(rows["window_ipix"])
    assert rows[IMAGE_COLUMN].shape == (len(windows), 4, 64, 64)  # band planes, as the Predictor feeds them
    assert set(rows["error"]) == {""} and (rows["tile_rows"] == len(windows)).all()
    # Mock fields carry the cut-out margin: no window reaches past an image edge.
    assert (rows["outside_fraction"] == 0).all()


class ZeroSource(MockSource):
    """The mock sky with one band zero-filled everywhere (no data)."""

    def read_field(self, request):
        images = super().read_field(request)
        band = images["103-134"]
        images["103-134"] = BandImage(band.band, np.zeros_like(band.data), band.wcs, "zeros.fits")
        return images


class FailingSource(MockSource):
    """The mock sky; ``bad_tile`` fails like an unreadable file, ``crash_tile`` like a bug."""

    def __init__(self, *, bad_tile: int = -1, crash_tile: int = -1):
        super().__init__(MockSky(seed=0))
        self.bad_tile, self.crash_tile = bad_tile, crash_tile

    def read_field(self, request):
        if request.key.endswith(f"/{self.bad_tile}"):
            raise BadInputError(f"{request.key} (/data/field {self.bad_tile}.fits)", "is not a readable FITS file")
        if request.key.endswith(f"/{self.crash_tile}"):
            raise RuntimeError(f"simulated crash while reading {request.key}")
        return super().read_field(request)


def test_a_zero_filled_band_fails_the_tile_naming_tile_and_file(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile, ZeroSource(MockSky(seed=0)))
    assert rows["tile"].tolist() == [tile] and rows["tile_rows"].tolist() == [1]
    assert f"tile 5/{tile}" in rows["error"][0] and "zeros.fits" in rows["error"][0] and "103-134" in rows["error"][0]


class OfflineSource(MockSource):
    """SkyView as seen without a network."""

    def read_field(self, request):
        raise RemoteServiceError(f"SkyView could not be reached for {request.key} (connection refused)")


def test_an_unreachable_service_fails_the_tile_with_its_message(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile, OfflineSource())
    assert rows["error"][0] == f"SkyView could not be reached for tile 5/{tile} (connection refused)"


def test_an_unreadable_field_fails_the_tile_and_a_bug_stops_the_run(small_plan):
    args, work = small_plan
    tile = int(work.tiles[1])
    rows = tile_rows(args, tile, FailingSource(bad_tile=tile))
    assert f"field {tile}.fits" in rows["error"][0]
    with pytest.raises(RuntimeError, match="simulated crash"):
        tile_rows(args, tile, FailingSource(crash_tile=tile))


def test_predictor_scores_a_plain_batch_and_keeps_only_detections_cutouts(small_plan, model):
    args, work = small_plan
    batch = tile_rows(args, int(work.tiles[2]))
    batch["error"][0] = "tile 5/0: pretend this row failed"
    table = Predictor(model, input_normalisation=NORMALISATION, providers="cpu", keep_above=0.95)(batch)
    expected = expected_score(batch[IMAGE_COLUMN])
    scores = table.column("score").to_numpy()
    np.testing.assert_allclose(scores[1:], expected[1:], atol=1e-5)
    assert scores[0] == 0.0
    kept = ~np.asarray(table.column(IMAGE_COLUMN).is_null())
    assert kept.tolist() == ((scores >= 0.95) & (np.arange(len(scores)) > 0)).tolist()
    assert set(table.column("provider").to_pylist()) == {"CPUExecutionProvider"}
    assert IMAGE_COLUMN in table.column_names and table.num_rows == len(batch["tile"])


def test_a_tile_scorer_gives_the_rows_of_the_two_stages_it_fuses(small_plan, model):
    """Scored in slices smaller than a tile, with a tile that fails among them."""
    args, work = small_plan
    tiles = [int(work.tiles[2]), int(work.tiles[1])]
    source = FailingSource(bad_tile=tiles[1])
    preprocess = {"source": source, "tile_order": args.tile_order, "window_order": args.window_order,
                  "region": args.region_spec, "normalisation": NORMALISATION}
    predictor = {"model_path": model, "input_normalisation": NORMALISATION, "providers": "cpu", "keep_above": 0.95}
    items = {"tile": np.array(tiles), "targets": np.array(["", ""], dtype=object)}
    fused = TileScorer(preprocess=preprocess, predictor=predictor, batch_size=100)(items)
    split = Predictor(**predictor)(preprocess_batch(items, **preprocess))
    small = [name for name in fused.column_names if name not in ("tile_seconds", IMAGE_COLUMN)]  # timed apart
    pd.testing.assert_frame_equal(fused.select(small).to_pandas(), split.select(small).to_pandas())
    assert fused.column(IMAGE_COLUMN).to_pylist() == split.column(IMAGE_COLUMN).to_pylist()
    assert fused.column(IMAGE_COLUMN).null_count < fused.num_rows  # some cut-outs kept, and compared
    assert fused.num_rows == len(windows_in_tile(tiles[0], region=args.region_spec)) + 1
    assert f"field {tiles[1]}.fits" in fused.column("error")[-1].as_py()


LOG_SCALING = Normalisation("log-minmax-sym", -1.2, 2.9, log_scale=0.054)


def test_predictor_refuses_windows_normalised_otherwise_than_its_card(model):
    with pytest.raises(ModelCardError, match="normalised with .*log-minmax-sym.* card says .*minmax"):
        Predictor(model, input_normalisation=LOG_SCALING, providers="cpu")


def test_predictor_returns_kept_cut_outs_in_jy_per_beam(small_plan, tmp_path):
    """Windows arrive normalised (here signed-log) as band planes; the kept cut-outs go back to
    clipped Jy/beam in the catalogue's (64, 64, 4)."""
    args, work = small_plan
    tile = int(work.tiles[2])
    raw = np.moveaxis(tile_rows(args, tile, normalisation=NORMALISATION)[IMAGE_COLUMN], 1, -1)  # identity: Jy/beam
    batch = tile_rows(args, tile, normalisation=LOG_SCALING)
    log_model = write_standin(tmp_path, normalisation=LOG_SCALING)
    table = Predictor(log_model, input_normalisation=LOG_SCALING, providers="cpu", keep_above=0.0)(batch)
    kept = np.array(table.column(IMAGE_COLUMN).to_pylist(), np.float32).reshape(raw.shape)
    np.testing.assert_allclose(kept, raw, rtol=2e-6, atol=0)
    assert ((kept == 0) == (raw == 0)).all()


def test_cpu_actors_run_one_thread_on_their_core_and_gpu_actors_reserve_their_gpu(model, tmp_path):
    assert inference_resources(survey_args(model, tmp_path)) == (CPU_ACTOR_THREADS, {"num_cpus": 1})
    assert inference_resources(survey_args(model, tmp_path, intra_op_threads=4)) == (4, {"num_cpus": 1})
    assert inference_resources(survey_args(model, tmp_path, num_gpus=1.0)) == (None, {"num_gpus": 1.0})


def test_the_assembler_rebuilds_tiles_from_any_batches():
    rows = {"tile": [7] * 5 + [9] * 3, "tile_rows": [5] * 5 + [3] * 3, "x": list(range(8))}
    table = pa.table(rows).take(pa.array([5, 0, 6, 1, 7, 2, 3, 4]))
    assembler = TileAssembler()
    done = [assembler.add(table.slice(i, 3)) for i in range(0, 8, 3)]
    assert [[t for t, _ in d] for d in done] == [[], [9], [7]]
    assert sorted(done[2][0][1].column("x").to_pylist()) == [0, 1, 2, 3, 4]
    with pytest.raises(HaloSurveyError, match="tile 9: received 4 rows, but it announced 3"):
        TileAssembler().add(pa.table({"tile": [9] * 4, "tile_rows": [3] * 4}))


def test_targets_are_planned_per_tile_and_kept_to_the_images(model, tmp_path):
    from survey.testing import write_source_set

    write_source_set(tmp_path / "fits", "abell 2744", ra_deg=3.59, dec_deg=-30.39, shape=(100, 100))
    args = survey_args(model, tmp_path / "out", mode="targets", catalogs="images", source=f"fits:{tmp_path / 'fits'}",
                       region="allsky")
    from survey.images.fitsdir import FitsDirectorySource

    work = plan_targets(args, FitsDirectorySource(tmp_path / "fits"))
    (tile,) = work.targets
    assert tile == int(healpix.ang2pix(args.tile_order, 3.59, -30.39))
    assert [t.name for t in work.targets[tile]] == ["A2744"]
    assert work_items(work.tiles, work.targets)[0]["targets"].startswith('[{"name": "A2744"')


class _ThreeTargets:
    """Targets in and out of the GLEAM footprint; images only west of RA 10 deg."""

    def targets(self) -> Table:
        return Table({"name": ["in", "no image", "plane"], "ra": [3.59, 20.0, 79.01], "dec": [-30.39, -30.0, 24.97]})

    def covers(self, ra, dec):
        return np.asarray(ra) < 10.0


def test_targets_not_planned_are_counted_by_reason_and_summarised(model, tmp_path):
    from survey.testing import write_source_set

    write_source_set(tmp_path / "fits", "abell 2744", ra_deg=3.59, dec_deg=-30.39, shape=(100, 100))
    args = survey_args(model, tmp_path / "out", mode="targets", catalogs="images", source=f"fits:{tmp_path / 'fits'}",
                       region="gleam")
    work = plan_targets(args, _ThreeTargets())
    assert [t.name for tile in work.targets.values() for t in tile] == ["in"]
    assert work.targets_skipped == {"outside_region": 1, "outside_images": 1}
    manifest = RunManifest(run_id="r", mode="targets", arguments={}, provenance={}, tiles_planned=1,
                           targets_skipped=work.targets_skipped)
    text = format_summary(RunSummary(str(tmp_path), manifest, 1, None, ["CPUExecutionProvider"]))
    assert "not planned: 1 outside the region, 1 outside the images" in text


# --------------------------------------------------------------------------------------
# End to end on a local Ray
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    yield from local_ray()


def candidate_frame(output: Path):
    """Candidate rows in ``_healpix_29`` order, without the per-run ``run_id``."""
    table = pq.read_table(paths.dataset_dir(paths.catalog_dir(output, kind="candidates")).path)
    table = table.drop_columns([c for c in ("run_id", "Norder", "Dir", "Npix") if c in table.column_names])
    return table.sort_by("_healpix_29").to_pandas()


@pytest.fixture(scope="module")
def uninterrupted(ray_local, model, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted") / "out dir"
    return run_with_client(survey_args(model, output, all_scores=True), ray_local), output


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
    summary, reference = uninterrupted
    output = tmp_path / "split"
    split = run_with_client(survey_args(model, output, all_scores=True, stages="split", read_concurrency=1), ray_local)
    assert [run.manifest.arguments["stages"] for run in (summary, split)] == ["fused", "split"]
    assert split.manifest.status == "complete" and split.manifest.windows == summary.manifest.windows
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
        run_with_client(args, ray_local, source=FailingSource(crash_tile=tiles[-1]))
    assert free_cpus_within(2) == 2, "the stopped run's inference actor still holds a CPU: the resume would hang"
    assert read_manifest(output).status == "interrupted"
    assert not paths.properties_file(paths.catalog_dir(output, kind="candidates")).exists()

    # Second attempt: one tile cannot be read; the run goes on and says which.
    partial = run_with_client(replace(args, resume=True, run_id="second"), ray_local,
                              source=FailingSource(bad_tile=tiles[-1]))
    assert partial.manifest.status == "partial"
    assert [f.tile for f in partial.manifest.failed] == [tiles[-1]]
    assert f"field {tiles[-1]}.fits" in partial.manifest.failed[0].error
    assert partial.manifest.tiles_done_before + partial.manifest.tiles_done == len(tiles) - 1

    final = run_with_client(replace(args, resume=True, run_id="third"), ray_local)
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
        run_with_client(survey_args(model, output), ray_local)


@pytest.mark.ray
@pytest.mark.realdata
def test_targets_on_the_real_sources_match_psz2_names(ray_local, model, gleam_dir, catalogs_dir, tmp_path):
    args = survey_args(model, tmp_path / "targets", mode="targets", catalogs="images", source=f"fits:{gleam_dir}",
                       region="allsky", match_catalogs="psz2")
    summary = run_with_client(args, ray_local)
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
    summary = run_with_client(args, ray_local)
    assert summary.manifest.status == "complete" and not summary.manifest.failed
    assert summary.area_deg2 > 0 and summary.candidates_per_deg2 is not None
    assert summary.manifest.provenance["source"] == f"fits:{gleam_dir}"


@pytest.mark.ray
def test_a_run_writes_to_a_filesystem_uri(ray_local, model):
    import lsdb

    output = "memory://halo-survey-test/run"
    summary = run_with_client(survey_args(model, output, region="cone:339.6,-39.6,0.5"), ray_local)
    root = paths.catalog_dir(output, kind="candidates")
    assert summary.manifest.status == "complete" and paths.properties_file(root).exists()
    assert len(lsdb.open_catalog(root).compute()) == summary.candidates
    assert read_manifest(output).candidates == summary.candidates
    assert not (paths.as_upath(output) / "work").exists()
