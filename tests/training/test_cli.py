"""`halo-train` errors are clear: missing data, empty class, corrupt checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest

from training.cli import main

from .training_helpers import write_generated

pytestmark = pytest.mark.training


def test_missing_data_directory(tmp_path, capsys):
    with pytest.raises(SystemExit, match="data directory .*nope does not exist"):
        main(["classifier", "--arch", "cnn", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])


def test_empty_class_is_named(gleam_dir, tmp_path, capsys):
    shutil.copytree(gleam_dir / "TEST_DATA_1", tmp_path / "data" / "TEST_DATA_1")
    assert main(["classifier", "--arch", "cnn", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 2
    assert "class 0 is empty" in capsys.readouterr().err


def test_corrupt_checkpoint_is_refused_on_export(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"protocol": "final", "arch": "cnn", "data": str(tmp_path)}))
    (run / "normalisation.json").write_text(json.dumps({"kind": "minmax", "min": 0.0, "max": 1.0, "log_scale": None}))
    (run / "model.keras").write_bytes(b"not a zip")
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "corrupt checkpoint" in capsys.readouterr().err


def test_protocol_run_cannot_be_exported(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"protocol": "grouped"}))
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "has no single model to export" in capsys.readouterr().err


def test_protocol_runs_and_report_name_each_run_and_its_settings(gleam_dir, tmp_path, capsys):
    """Two tiny real runs (one per protocol) through the CLI, then the report over both."""
    tiny = ["--arch", "dense", "--epochs", "1", "--steps", "1", "--batch-size", "8", "--data", str(gleam_dir)]
    grouped, paper = tmp_path / "grouped-dense-log", tmp_path / "paper-dense"
    assert main(["classifier", *tiny, "--protocol", "grouped", "--folds", "2", "--repeats", "1", "--normalisation", "log",
                 "--learning-rate", "5e-4", "--out", str(grouped)]) == 0
    assert main(["classifier", *tiny, "--protocol", "paper", "--runs", "1", "--out", str(paper)]) == 0
    report = tmp_path / "docs" / "results.md"
    assert main(["report", str(paper), str(grouped), "--out", str(report)]) == 0
    text = report.read_text()
    assert "| paper Table 5 | dense | the paper's | 84.68 ± 1.03" in text
    assert "| paper-dense | dense | minmax, Adam 0.001, 1x1 steps, patience 5 |" in text
    assert "| grouped-dense-log | dense | log, Adam 0.0005, 1x1 steps, patience 5 | random forest (same folds) |" in text
    # One repeat (grouped) or run (paper) has no spread: the tables say so instead of a misleading "± 0.000".
    paper_row = next(line for line in text.splitlines() if line.startswith("| paper-dense |"))
    grouped_row = next(line for line in text.splitlines() if line.startswith("| grouped-dense-log |"))
    assert "(1 run, no spread)" in paper_row and "repeat" not in paper_row
    assert "(1 repeat, no spread)" in grouped_row and "± 0.000" not in text
    assert "--normalisation log" in text  # the exact command of each run is quoted
    assert (report.parent / "grouped-dense-log.png").stat().st_size > 0


def test_generated_halos_from_a_generator_that_saw_a_test_source_are_refused(gleam_dir, tmp_path, capsys):
    leaky = str(write_generated(tmp_path / "leaky", sources=["A2744", "A3404"]))  # A2744 is a paper test source
    assert main(["classifier", "--arch", "dense", "--protocol", "paper", "--augment", "ddpm", "--generated", leaky,
                 "--data", str(gleam_dir), "--out", str(tmp_path / "run")]) == 2
    assert "paper test split: no generated set comes from a generator that never saw" in capsys.readouterr().err
    assert not (tmp_path / "run" / "results.json").exists()


def test_augment_ddpm_without_generated_sets_or_with_uniform_draws_is_refused(gleam_dir, tmp_path):
    with pytest.raises(SystemExit, match="--augment ddpm needs --generated DIR"):
        main(["classifier", "--arch", "dense", "--protocol", "paper", "--augment", "ddpm", "--out", str(tmp_path / "r")])
    clean = str(write_generated(tmp_path / "clean", sources=[]))
    with pytest.raises(SystemExit, match="drawn by weight"):
        main(["classifier", "--arch", "dense", "--protocol", "paper", "--augment", "ddpm", "--generated", clean,
              "--draws", "uniform", "--out", str(tmp_path / "r")])


def test_a_grouped_run_with_generated_halos_records_the_set_each_fold_used(gleam_dir, tmp_path):
    clean = str(write_generated(tmp_path / "clean", sources=[]))
    out = tmp_path / "grouped-ddpm"
    assert main(["classifier", "--arch", "dense", "--epochs", "1", "--steps", "1", "--batch-size", "8",
                 "--protocol", "grouped", "--folds", "2", "--repeats", "1", "--augment", "ddpm", "--generated", clean,
                 "--data", str(gleam_dir), "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert [h["generated"]["directory"] for h in result["histories"]] == [clean, clean]
    assert dict(result["config"]["kind_shares"])["1:generated"] > 0


def test_card_metrics_refuses_a_card_without_a_recipe_and_leaves_it_as_it_was(tmp_path):
    from pathlib import Path

    models = Path(__file__).resolve().parents[2] / "models"
    for name in ("halo-classifier.onnx", "halo-classifier.card.json"):
        shutil.copy(models / name, tmp_path / name)
    card = json.loads((tmp_path / "halo-classifier.card.json").read_text())
    card["training"]["augment"].pop("recipe", None)  # as cards written before recipes were recorded
    (tmp_path / "halo-classifier.card.json").write_text(json.dumps(card))
    before = (tmp_path / "halo-classifier.card.json").read_text()
    with pytest.raises(SystemExit, match="records no recipe to check .*run against; ship the model again"):
        main(["card-metrics", str(tmp_path / "halo-classifier.onnx"), "--metrics", str(tmp_path / "run")])
    assert (tmp_path / "halo-classifier.card.json").read_text() == before
