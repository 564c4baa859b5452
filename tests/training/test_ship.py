"""``halo-train ship`` (training.ship): roles kept apart, and a card that carries the operating point and the command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from survey.model.modelcard import sha256_file
from training.fields import data_sources, load_fields
from training.generated import generated_shares, read_generated

from .training_helpers import write_generated

NAMES = ("A2744", "A2751", "A0013", "ORC 1", "AS1063", "A3399", "AS1099", "A2811", "AS0084", "ORC 5")


@pytest.fixture(scope="module")
def fields(gleam_dir):
    from survey.sky.groups import overlap_groups

    sources = [s for s in data_sources(gleam_dir) if s.name in NAMES]
    positions = np.array([s.centre_radec for s in sources])
    return sources, load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))


@pytest.mark.training
def test_training_early_stopping_and_calibration_fields_never_share_a_group(fields):
    from training.ship import split_roles

    _, fs = fields
    roles = split_roles(fs, seed=0)
    groups = {role: {f.group for f in members} for role, members in roles.items()}
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["calibration"]
                or groups["validation"] & groups["calibration"])
    assert sorted(f.name for members in roles.values() for f in members) == sorted(f.name for f in fs)
    assert all({f.label for f in members} == {0, 1} for members in roles.values())


@pytest.mark.training
def test_folds_ship_prints_the_fields_a_ship_generator_must_be_trained_without(fields, gleam_dir, tmp_path, capsys):
    from training.cli import main
    from training.ship import split_roles

    sources, fs = fields
    for source in sources:
        for path in dict(source.files).values():
            link = tmp_path / "data" / path.parent.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    assert main(["folds", "--ship", "--data", str(tmp_path / "data")]) == 0
    kind, role, names = capsys.readouterr().out.strip().split("\t")
    roles = split_roles(fs, seed=0)
    assert (kind, role) == ("ship", "held-out")
    assert names.split(",") == [f.name for f in [*roles["validation"], *roles["calibration"]]]


@pytest.mark.training
@pytest.mark.slow
def test_ship_exports_a_model_the_survey_runs_with_its_calibrated_threshold(fields, gleam_dir, tmp_path):
    from survey.model.infer import OnnxClassifier
    from training.blind import BlindConfig
    from training.samples import PoolSizes
    from training.ship import ship
    from training.train import TrainConfig

    sources, fs = fields
    config = BlindConfig(train=TrainConfig(arch="cnn", epochs=1, steps_per_epoch=2, batch_size=32, patience=1,
                                           normalisation="snr-log",
                                           kind_shares=generated_shares(1.0, base=BlindConfig().train.kind_shares)),
                         sizes=PoolSizes(injected=4, empty=3, compact=3), mining_rounds=1, mined_per_field=2)
    clean = read_generated(write_generated(tmp_path / "ddpm-samples", sources=[]))
    card = ship(fs, {s.name: dict(s.files) for s in sources}, tmp_path / "m.onnx", config=config, data=gleam_dir,
                command="halo-train ship --out m.onnx", log=lambda _: None, generated=[clean])
    classifier = OnnxClassifier(tmp_path / "m.onnx", providers="cpu")
    op = card.metrics["operating_point"]
    assert classifier.threshold == card.threshold == op["threshold"] and 0.5 <= card.threshold < 1.0
    assert op["calibration_false_candidates"] <= 0.1 * op["calibration_area_deg2"]
    assert card.training.command == "halo-train ship --out m.onnx" and card.training.protocol == "blind"
    assert card.normalisation.kind == "snr-log-sym"
    roles = {s.name: s.split_or_group.split(",")[0] for s in card.training.sources}
    assert set(roles.values()) == {"train", "validation", "calibration"} and len(card.training.sources) == len(fs)
    # The threshold was chosen on every field the weights never fitted.
    assert sorted(op["calibration_fields"]) == sorted(n for n, role in roles.items() if role != "train")
    # The generated halos joined the training samples and the card names them and their generator.
    assert card.training.augment["generated"]["directory"] == str(tmp_path / "ddpm-samples")
    assert card.training.augment["generated"]["generator_step"] == 1
    assert card.training.augment["rounds"][0]["samples"]["generated"] == 8
    # A protocol run of this recipe (seeds aside) can join the card later; one of another recipe cannot.
    from training.blind import config_dict
    from training.ship import attach_protocol_metrics

    summary = {"sources": {"blind_cnn": {"roc_auc": 0.5}}, "false_candidates": {"per_deg2": 1.0}}
    for name, run_config in (("same", replace(config, seed=3)), ("other", replace(config, mining_rounds=2))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"config": config_dict(run_config), "summary": summary,
                                                                   "command": f"halo-train blind {name}"}))
    before = sha256_file(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="mining_rounds: 2 in the run, 1 in the model"):
        attach_protocol_metrics(tmp_path / "m.onnx", tmp_path / "other")
    card = attach_protocol_metrics(tmp_path / "m.onnx", tmp_path / "same")
    assert card.metrics["blind_protocol"]["command"] == "halo-train blind same"
    assert card.metrics["operating_point"] == op and sha256_file(tmp_path / "m.onnx") == before


@pytest.mark.training
@pytest.mark.parametrize("role", ["validation", "calibration"])
def test_ship_refuses_generated_halos_whose_generator_saw_a_field_that_chooses_the_threshold(fields, gleam_dir,
                                                                                             tmp_path, role):
    from training.blind import BlindConfig
    from training.ship import ship, split_roles

    sources, fs = fields
    held_out = [f.name for f in split_roles(fs, seed=0)[role]]
    leaky = read_generated(write_generated(tmp_path / "leaky", sources=held_out[:1]))
    with pytest.raises(ValueError, match=f"calibration fields: .*leaky trained on {held_out[0]}"):
        ship(fs, {s.name: dict(s.files) for s in sources}, tmp_path / "m.onnx", config=BlindConfig(), data=gleam_dir,
             command="halo-train ship", log=lambda _: None, generated=[leaky])
    assert not (tmp_path / "m.onnx").exists()


def test_ship_refuses_a_protocol_run_of_another_recipe_before_any_training(tmp_path):
    from training.blind import BlindConfig, config_dict
    from training.ship import recipe_differences, recipe_of, ship

    run = config_dict(BlindConfig(ensemble=1))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps({"config": run, "summary": {}}))
    with pytest.raises(ValueError, match=r"results.json measured another recipe than the model's: ensemble: 1 in the "
                                         r"run, 3 in the model"):
        ship([], {}, tmp_path / "m.onnx", config=BlindConfig(ensemble=3), data=tmp_path, command="halo-train ship",
             metrics_dir=tmp_path / "run", log=lambda _: None)
    # A results file from before a setting existed reads as its default; seeds never count.
    del run["ensemble"]
    assert recipe_differences(recipe_of(BlindConfig(seed=4)), run) == []
    assert recipe_differences(recipe_of(BlindConfig(sizes=replace(BlindConfig().sizes, empty=7))), run) == [
        "sizes.empty: 60 in the run, 7 in the model"]
