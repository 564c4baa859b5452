"""The model card: schema round trip and every refusal ``load_model_card`` promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from survey.exceptions import ModelCardError
from survey.model.modelcard import (
    CARD_VERSION,
    DEFAULT_THRESHOLD,
    ModelCard,
    TrainingFile,
    TrainingRecord,
    TrainingSource,
    build_card,
    card_path_for,
    load_model_card,
    read_card,
    sha256_file,
    survey_input_spec,
    write_card,
)
from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES


@pytest.fixture
def training_record() -> TrainingRecord:
    files = tuple(TrainingFile(f"TRAIN_DATA_1/abell_0122_Gleam{b}_clipped.fits", "ab" * 32) for b in BAND_NAMES)
    return TrainingRecord(
        sources=(
            TrainingSource("A0122", 1, "train", files),
            TrainingSource("A0013", 0, "test", files[:1]),
        ),
        protocol="paper",
        seed=7,
        epochs=20,
        augment={"rotation_step_deg": 45, "flips": True, "scale": [0.9, 1.4]},
    )


@pytest.fixture
def model_files(tmp_path: Path, training_record: TrainingRecord) -> tuple[Path, Path, ModelCard]:
    """A stand-in model file (the card only hashes it) and its card."""
    onnx_path = tmp_path / "attention.onnx"
    onnx_path.write_bytes(b"stand-in bytes for an ONNX graph")
    card = build_card(
        onnx_path,
        architecture="attention",
        training=training_record,
        normalisation=Normalisation("minmax", -0.25, 3.5),
        metrics={"paper_protocol": {"accuracy": {"mean": 0.9, "std": 0.02}}, "grouped_protocol": {}},
    )
    return onnx_path, write_card(card, card_path_for(onnx_path)), card


def _edit_card(card_path: Path, edit) -> None:
    data = json.loads(card_path.read_text())
    edit(data)
    card_path.write_text(json.dumps(data))


def test_survey_input_spec_follows_the_bands_and_the_data_readme():
    spec = survey_input_spec()
    assert spec.bands == ("72-103", "103-134", "139-170", "170-231")
    # Native pixel scales from the data README (56", 44", 34", 28"), rounded to 0.1".
    assert spec.pixel_arcsec == (56.0, 44.0, 34.0, 28.0)
    assert (spec.shape, spec.layout, spec.dtype) == ((4, 64, 64), "NCHW", "float32")
    assert (spec.input_name, spec.output_name, spec.clip) == ("image", "probs", "symmetric_3sigma")


def test_card_path_sits_beside_the_model(tmp_path: Path):
    assert card_path_for(tmp_path / "m.v2.onnx") == tmp_path / "m.v2.card.json"


def test_card_round_trips_through_json_and_disk(model_files):
    onnx_path, card_path, card = model_files
    assert ModelCard.from_json(card.to_json()) == card
    assert read_card(card_path) == card
    loaded = load_model_card(onnx_path)
    assert loaded == card
    assert loaded.onnx_sha256 == sha256_file(onnx_path)
    assert loaded.threshold == DEFAULT_THRESHOLD
    assert loaded.training.sources[0].files[0].path.startswith("TRAIN_DATA_1/")
    assert json.loads(card_path.read_text())["card_version"] == CARD_VERSION


def test_normalisation_id_is_the_preprocess_one(model_files):
    _, card_path, card = model_files
    stored = json.loads(card_path.read_text())["normalisation"]
    assert stored["kind"] == "minmax" and stored["id"] == Normalisation("minmax", -0.25, 3.5).id


def test_refuses_a_missing_card(model_files):
    onnx_path, card_path, _ = model_files
    card_path.unlink()
    with pytest.raises(ModelCardError, match=r"has no card: expected .*attention\.card\.json"):
        load_model_card(onnx_path)


def test_refuses_a_missing_model(tmp_path: Path):
    with pytest.raises(ModelCardError, match=r"model file .*nothing\.onnx not found"):
        load_model_card(tmp_path / "nothing.onnx")


def test_refuses_a_card_of_another_model(model_files):
    onnx_path, _, _ = model_files
    onnx_path.write_bytes(b"a retrained model")
    with pytest.raises(ModelCardError, match=r"describes another model: its onnx_sha256 .* differs .*re-export"):
        load_model_card(onnx_path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bands", ["170-231", "139-170", "103-134", "72-103"], r"bands: .*170-231.* != .*72-103"),
        ("pixel_arcsec", [28.0, 28.0, 28.0, 28.0], r"pixel_arcsec: \(28\.0"),
        ("cutout_size", 128, r"cutout_size: 128 != 64"),
        ("layout", "NHWC", r"layout: 'NHWC' != 'NCHW'"),
    ],
)
def test_refuses_a_card_whose_input_spec_differs_from_the_survey(model_files, key, value, message):
    onnx_path, card_path, _ = model_files
    _edit_card(card_path, lambda data: data["input_spec"].__setitem__(key, value))
    with pytest.raises(ModelCardError, match=r"expects another input than this survey produces \(.*" + message):
        load_model_card(onnx_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("onnx_sha256"), r"missing key 'onnx_sha256'"),
        (lambda d: d.__setitem__("card_version", 3), r"card_version 3 is not supported"),
        (lambda d: d.__setitem__("card_version", 1), r"card_version 1 describes an \(N, 64, 64, 4\) input.*"
                                                     r"`halo-train upgrade-model MODEL\.onnx`"),
        (lambda d: d.__setitem__("colour", "blue"), r"unknown keys \['colour'\]"),
        (lambda d: d.__setitem__("architecture", "vit"), r"architecture 'vit' is not one of"),
        (lambda d: d.__setitem__("threshold", 1.5), r"threshold 1\.5 must lie strictly between 0 and 1"),
        (lambda d: d.__setitem__("threshold", True), r"'threshold' must be int or float, got True"),
        (lambda d: d["training"].__setitem__("seed", "7"), r"training: 'seed' must be int"),
        (lambda d: d["training"]["sources"][0].pop("files"), r"training\.sources: missing key 'files'"),
        (lambda d: d["normalisation"].__setitem__("max", 9.0), r"normalisation: normalisation id .* does not match"),
        (lambda d: d["input_spec"].pop("clip"), r"input_spec: missing key 'clip'"),
        (lambda d: d.__setitem__("created", "yesterday"), r"created 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_refuses_a_card_that_breaks_the_schema(model_files, edit, message):
    onnx_path, card_path, _ = model_files
    _edit_card(card_path, edit)
    with pytest.raises(ModelCardError, match=r"attention\.card\.json.*" + message):
        load_model_card(onnx_path)


def test_refuses_a_card_that_is_not_json(model_files):
    onnx_path, card_path, _ = model_files
    card_path.write_text("{not json")
    with pytest.raises(ModelCardError, match=r"attention\.card\.json: not valid JSON"):
        load_model_card(onnx_path)
