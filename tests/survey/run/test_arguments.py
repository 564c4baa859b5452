"""Run arguments (survey.run.arguments): defaults, every bad value refused before compute, the stage layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey.defaults import DEMO_REGION
from survey.exceptions import BadInputError, ModelCardError
from survey.images.mock import MockSky
from survey.images.spec import parse_source
from survey.run.arguments import SurveyArguments
from tests.survey.run.helpers import (
    survey_args,
)


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


def test_a_missing_model_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ModelCardError, match=r"nothing\.onnx not found; pass --model"):
        SurveyArguments(model=tmp_path / "nothing.onnx", output=tmp_path)


def test_source_names_keep_spaces_and_colons():
    assert parse_source("fits:/tmp").directory == Path("/tmp")
    assert parse_source("mock:3").text == "mock:3"


# --------------------------------------------------------------------------------------
# One definition: the command line and the manifest record come from the fields
# --------------------------------------------------------------------------------------

NON_DEFAULT_VALUES = {
    "region": "cone:10,-20,2", "source": "mock:7", "output": "elsewhere", "tile_order": 4, "window_order": 9,
    "threshold": 0.5, "catalogs": "psz2,mcxc", "match_catalogs": "mgcls", "match_radius_arcmin": 3.0,
    "batch_size": 64, "concurrency": 3, "stages": "split", "num_gpus": 0.0, "read_concurrency": 2,
    "providers": "cpu", "intra_op_threads": 2, "tile_writes": "driver",
}
"""A value other than the default for every option that takes one (switches are flipped)."""


def argv_of(mode: str, model: Path) -> list[str]:
    """Every option of ``mode`` on one command line: its non-default value, or the switch."""
    from survey.run.arguments import cli_options

    argv = [mode, "--model", str(model)]
    for name, spec in cli_options(mode):
        if name == "model":
            continue
        if spec.type is None:
            argv.append(spec.flags[-1])
        elif name in NON_DEFAULT_VALUES:
            argv += [spec.flags[-1], str(NON_DEFAULT_VALUES[name])]
    return argv


@pytest.mark.parametrize("mode", ["scan", "targets"])
def test_every_option_on_the_command_line_reaches_its_field(model, mode):
    """Built from the fields, parsed back by ``from_cli``: no option is lost or mapped to another."""
    from survey.cli import build_parser
    from survey.run.arguments import cli_options

    argv = argv_of(mode, model)
    argv = [a for a in argv if a not in ("--resume", "--overwrite")] + ["--resume"]  # not both
    args = SurveyArguments.from_cli(build_parser().parse_args(argv), mode=mode)
    for name, spec in cli_options(mode):
        value = getattr(args, name)
        if name == "model":
            assert value == model
        elif spec.type is None:
            flipped = not spec.negate if name != "overwrite" else False
            assert value is flipped, name
        elif name in ("catalogs", "match_catalogs"):
            assert value == tuple(NON_DEFAULT_VALUES[name].split(",")), name
        elif name == "output":
            assert str(value) == NON_DEFAULT_VALUES[name]
        else:
            assert value == NON_DEFAULT_VALUES[name], name
    assert args.mode == mode


def test_the_catalogue_option_belongs_to_targets_only(model):
    from survey.cli import build_parser

    assert build_parser().parse_args(["targets", "--catalog", "psz2"]).catalog == "psz2"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["scan", "--catalog", "psz2"])


def test_the_help_shows_each_default_the_run_uses(model):
    from survey.cli import build_parser

    parsed = build_parser().parse_args(["scan"])
    args = SurveyArguments.from_cli(parsed, mode="scan")
    plain = SurveyArguments(mode="scan")
    for name in ("tile_order", "window_order", "batch_size", "stages", "providers", "store_cutouts", "progress"):
        assert getattr(args, name) == getattr(plain, name), name
    assert args.model == plain.model and args.match_catalogs == plain.match_catalogs


def test_the_manifest_records_the_settings_that_change_results_and_the_layout_that_ran(model, tmp_path):
    record = survey_args(model, tmp_path, stages="split", read_concurrency=2).record()
    assert record["stages"] == "split" and record["read_concurrency"] == "2" and record["online"] == "False"
    assert {"resume", "overwrite", "progress", "run_id"}.isdisjoint(record)
    assert survey_args(model, tmp_path).record()["stages"] == "fused"  # auto, resolved
