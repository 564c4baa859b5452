"""``halo-survey scan | targets | tiles | query | plot | catalog``: wiring, messages, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from survey.cli import build_parser, main
from survey.output import paths
from survey.output.schema import synthetic_table
from survey.output.store import CatalogWriter
from tests.survey.survey_helpers import local_ray, write_standin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_standin(tmp_path_factory.mktemp("model"))


@pytest.fixture
def finished_catalogue(tmp_path) -> Path:
    """A run directory holding a small finished candidate catalogue with cut-outs."""
    run = tmp_path / "run dir"
    writer = CatalogWriter(paths.catalog_dir(run, kind="candidates"), order=5, provenance={"run_id": "t"},
                           with_cutout=True)
    for tile, rows in ((11583, 4), (11584, 0), (11586, 3)):
        writer.write_tile(tile, synthetic_table(order=5, tile=tile, n_rows=rows, seed=tile, with_cutout=True))
    writer.finish()
    return run


def test_scan_without_arguments_is_the_mock_demo():
    from survey.defaults import DEFAULT_MODEL, DEFAULT_OUTPUT

    args = build_parser().parse_args(["scan"])
    assert (args.region, args.source, args.model, args.output) == (None, "mock", str(DEFAULT_MODEL), DEFAULT_OUTPUT)


HEAVY_MODULES = ("healpy", "hats", "astropy", "matplotlib", "pandas", "pyarrow", "ray", "onnxruntime", "scipy")


def test_building_the_parser_loads_no_heavy_module():
    """``--help`` and argument errors answer at once: the parser needs only ``survey.defaults``."""
    code = ("import sys; from survey.cli import build_parser; build_parser(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_targets_take_a_catalogue_list():
    args = build_parser().parse_args(["targets", "--catalog", "psz2,mcxc", "--source", "fits:/data"])
    assert (args.catalog, args.source) == ("psz2,mcxc", "fits:/data")


def test_stage_options_reach_the_run_arguments(model, tmp_path):
    from survey.run.arguments import SurveyArguments

    argv = ["scan", "--model", str(model), "-o", str(tmp_path), "--stages", "split", "--read-concurrency", "3"]
    args = SurveyArguments.from_cli(build_parser().parse_args(argv), mode="scan")
    assert (args.fused_stages, args.read_concurrency, args.concurrency) == (False, 3, None)


def test_tiles_prints_the_plan(capsys):
    assert main(["tiles", "--region", "cone:339.6,-39.6,3"]) == 0
    out = capsys.readouterr().out
    assert "tiles         18 non-empty" in out and "windows       8,624" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume", "--overwrite"], "pass one"),
        (["--region", "cone:1"], "three numbers"),
        (["--source", "fits:/no/such/dir"], "does not exist"),
        (["--read-concurrency", "4"], "pass --stages split"),
    ],
)
def test_bad_scan_options_fail_with_one_line_before_ray_starts(model, tmp_path, capsys, argv, message):
    assert main(["scan", "--model", str(model), "-o", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("halo-survey scan: error:") and message in err
    assert not (tmp_path / "o").exists()


def test_a_model_with_another_models_card_is_refused_before_ray_starts(model, tmp_path, capsys):
    other = write_standin(tmp_path / "other", gain=1.0)
    (tmp_path / "other" / "standin.card.json").write_text(model.with_name("standin.card.json").read_text())
    assert main(["scan", "--model", str(other), "-o", str(tmp_path / "o")]) == 2
    assert "describes another model" in capsys.readouterr().err


def test_an_unwritable_output_is_refused_before_ray_starts(model, tmp_path, capsys):
    (tmp_path / "a file").write_text("")
    assert main(["scan", "--model", str(model), "-o", str(tmp_path / "a file" / "out")]) == 2
    assert "cannot write the catalogue here" in capsys.readouterr().err


def test_a_missing_model_says_how_to_get_one(tmp_path, capsys):
    assert main(["scan", "--model", str(tmp_path / "none.onnx")]) == 2
    assert "pass --model PATH" in capsys.readouterr().err


def test_query_reads_a_run_directory(finished_catalogue, capsys):
    assert main(["query", str(finished_catalogue), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 7 and lines[0].startswith("_healpix_29,ra,dec")


def test_query_filters_and_writes_files(finished_catalogue, tmp_path, capsys):
    out = tmp_path / "best.parquet"
    assert main(["query", str(finished_catalogue), "--min-score", "0.5", "--format", "parquet", "--out", str(out)]) == 0
    import pyarrow.parquet as pq

    assert (pq.read_table(out).column("score").to_numpy() >= 0.5).all()


def test_query_of_something_else_names_it(tmp_path, capsys):
    assert main(["query", str(tmp_path)]) == 2
    assert "no hats.properties" in capsys.readouterr().err


def test_plot_writes_a_sky_map_and_a_gallery(finished_catalogue, capsys):
    assert main(["plot", str(finished_catalogue), "--top", "3"]) == 0
    written = [Path(p) for p in capsys.readouterr().out.splitlines()]
    assert [p.name for p in written] == ["sky.png", "gallery.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written)
    assert written[0].parent == finished_catalogue / "plots"


def test_plot_refuses_a_non_positive_top(finished_catalogue, capsys):
    assert main(["plot", str(finished_catalogue), "--top", "0"]) == 2
    assert "--top" in capsys.readouterr().err


@pytest.mark.realdata
def test_catalog_prints_psz2_in_the_gleam_footprint(catalogs_dir, capsys):
    assert main(["catalog", "psz2", "--footprint", "gleam", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "PSZ2 G008.94-81.22" in out
    # 1182 PSZ2 clusters lie in the footprint (README, Magellanic Clouds not masked); masking can only remove some.
    assert 1000 < len(out.strip().splitlines()) - 1 <= 1182


@pytest.fixture(scope="module")
def ray_local():
    yield from local_ray()


@pytest.mark.ray
@pytest.mark.slow
def test_the_demo_scan_runs_and_labels_its_mock_data(ray_local, model, tmp_path, capsys):
    output = tmp_path / "halo-survey-out"
    assert main(["scan", "--model", str(model), "-o", str(output), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MOCK DATA: synthetic GLEAM-like sky")
    assert "18 done now" in out and "windows       8,624" in out and "injected halos recovered" in out
    assert "candidates near no injected halo" in out
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["provenance"]["source"] == "mock:0"
    # The outputs feed the other commands.
    assert main(["query", str(output), "--format", "table"]) == 0
    assert main(["plot", str(output)]) == 0
    assert (output / "plots" / "sky.png").exists()
    # A second run into the same directory is refused, --resume finds nothing left to do.
    assert main(["scan", "--model", str(model), "-o", str(output), "--no-progress"]) == 2
    assert "pass --overwrite or --resume" in capsys.readouterr().err
    assert main(["scan", "--model", str(model), "-o", str(output), "--no-progress", "--resume"]) == 0
    capsys.readouterr()
    assert main(["scan", "--model", str(model), "-o", str(output), "--no-progress", "--resume", "--threshold", "0.99"]) == 2
    assert "had threshold=0.95 but this run has threshold=0.99" in capsys.readouterr().err
