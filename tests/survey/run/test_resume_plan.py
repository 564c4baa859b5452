"""Restart state (survey.run.resume_plan): what an output directory holds decides what a run may do.

No Ray: the catalogues are written with the store's writer, as a run would leave them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from survey.exceptions import BadInputError
from survey.output import paths
from survey.output.schema import synthetic_table
from survey.output.store import CatalogWriter
from survey.run.manifest import RunManifest, write_manifest
from survey.run.resume_plan import ResumePlan
from tests.survey.run.helpers import survey_args

PROVENANCE = {"model_sha256": "abc", "region": "cone:339.6,-39.6,1.2", "run_id": "first"}


def leave_interrupted_run(output: Path, *, tiles=(11583,)) -> None:
    """A work catalogue with some tiles done and no finish: what a killed run leaves."""
    writer = CatalogWriter(paths.work_dir(output), order=5, provenance=PROVENANCE, with_cutout=True)
    for tile in tiles:
        writer.write_tile(tile, synthetic_table(order=5, tile=tile, n_rows=2, seed=tile, with_cutout=True))


def leave_finished_run(output: Path, *, provenance=PROVENANCE) -> None:
    writer = CatalogWriter(paths.catalog_dir(output, kind="candidates"), order=5, provenance=provenance)
    writer.write_tile(11583, synthetic_table(order=5, tile=11583, n_rows=2, seed=1))
    writer.finish()
    write_manifest(RunManifest(run_id="first", mode="scan", arguments={}, provenance=dict(provenance), tiles_planned=1,
                               run_ids=["first"], status="complete", candidates=2), output)


def test_a_fresh_output_has_nothing_to_resume(model, tmp_path):
    plan = ResumePlan.prepare(survey_args(model, tmp_path / "out"), provenance=PROVENANCE)
    assert plan.finished is None and plan.previous_run_ids == [] and plan.run_ids == [plan.args.run_id]
    assert (tmp_path / "out").is_dir()  # proven writable


def test_an_output_holding_another_run_is_refused_unless_resumed_or_overwritten(model, tmp_path):
    leave_interrupted_run(tmp_path)
    with pytest.raises(BadInputError, match=r"holds the catalogue of an earlier run; .* --overwrite or --resume"):
        ResumePlan.prepare(survey_args(model, tmp_path), provenance=PROVENANCE)
    ResumePlan.prepare(survey_args(model, tmp_path, resume=True), provenance=PROVENANCE)
    ResumePlan.prepare(survey_args(model, tmp_path, overwrite=True), provenance=PROVENANCE)


def test_overwrite_refuses_a_directory_that_is_not_ours_and_deletes_nothing(model, tmp_path):
    foreign = paths.catalog_dir(tmp_path, kind="scores")
    foreign.mkdir(parents=True)
    (Path(foreign.path) / "thesis.tex").write_text("precious")
    with pytest.raises(BadInputError, match=r"overwrite refused: this directory holds files but no halo-survey"):
        ResumePlan.prepare(survey_args(model, tmp_path, overwrite=True), provenance=PROVENANCE)
    assert (Path(foreign.path) / "thesis.tex").read_text() == "precious"


def test_overwrite_deletes_our_catalogues_only_when_the_run_opens_them(model, tmp_path):
    leave_interrupted_run(tmp_path)
    plan = ResumePlan.prepare(survey_args(model, tmp_path, overwrite=True), provenance=PROVENANCE)
    assert paths.run_state_file(paths.work_dir(tmp_path)).exists()  # prepare changes nothing
    outputs = plan.open(provenance=PROVENANCE)
    assert outputs.done_tiles() == set()


def test_resume_keeps_the_finished_tiles_and_the_earlier_run_ids(model, tmp_path):
    leave_interrupted_run(tmp_path, tiles=(11583, 11584))
    write_manifest(RunManifest(run_id="first", mode="scan", arguments={}, provenance=PROVENANCE, tiles_planned=6,
                               run_ids=["first"]), tmp_path)
    args = survey_args(model, tmp_path, resume=True, run_id="second")
    plan = ResumePlan.prepare(args, provenance=PROVENANCE)
    outputs = plan.open(provenance={**PROVENANCE, "run_id": "second"})
    from survey.run.plan import plan_scan

    work = plan_scan(args)
    done, pending = plan.pending(work, outputs)
    assert done == {11583, 11584} & set(work.rows_per_tile)
    assert set(pending) == set(work.rows_per_tile) - done
    assert plan.run_ids == ["first", "second"]


def test_a_finished_run_with_the_same_settings_has_nothing_to_do(model, tmp_path):
    leave_finished_run(tmp_path)
    plan = ResumePlan.prepare(survey_args(model, tmp_path, resume=True), provenance={**PROVENANCE, "run_id": "new"})
    assert plan.finished is not None and plan.finished.candidates == 2


def test_a_finished_run_with_other_settings_names_the_setting_and_the_fix(model, tmp_path):
    leave_finished_run(tmp_path)
    with pytest.raises(BadInputError, match=r"the finished run there had model_sha256='abc' but this run has "
                                            r"model_sha256='def'; pass --overwrite"):
        ResumePlan.prepare(survey_args(model, tmp_path, resume=True), provenance={**PROVENANCE, "model_sha256": "def"})


def test_a_finished_catalogue_without_its_manifest_cannot_be_resumed(model, tmp_path):
    leave_finished_run(tmp_path)
    paths.manifest_file(tmp_path).unlink()
    with pytest.raises(BadInputError, match=r"holds a finished catalogue but no manifest\.json"):
        ResumePlan.prepare(survey_args(model, tmp_path, resume=True), provenance=PROVENANCE)


def test_clean_up_removes_the_work_directory_and_nothing_else(model, tmp_path):
    leave_finished_run(tmp_path)
    leave_interrupted_run(tmp_path)
    plan = ResumePlan.prepare(survey_args(model, tmp_path, overwrite=True), provenance=PROVENANCE)
    plan.clean_up()
    assert not paths.work_root(tmp_path).exists()
    assert paths.properties_file(paths.catalog_dir(tmp_path, kind="candidates")).exists()
