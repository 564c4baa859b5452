"""Model faults: damaged weights behind a regenerated sha256, broken files and cards, the reference check.

The stand-in classifier (``tests.survey.survey_helpers``) is given reference outputs with
``halo-train add-reference`` (``training.onnx_layout.add_reference``, no TensorFlow). Every
fault is refused before Ray starts, by ``halo-survey scan`` in one line naming the file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from survey.exceptions import ModelCardError
from survey.model.infer import OnnxClassifier
from survey.model.modelcard import card_path_for, read_card, sha256_file
from survey.model.reference import REFERENCE_RECIPE, reference_inputs
from tests.survey.reliability.conftest import Snapshot, run_cli, scan_argv
from tests.survey.survey_helpers import NORMALISATION, standin_graph, write_standin

onnx = pytest.importorskip("onnx")
add_reference = pytest.importorskip("training.onnx_layout").add_reference


@pytest.fixture
def checked(tmp_path) -> Path:
    """The stand-in, with reference outputs in its card."""
    path = write_standin(tmp_path / "model")
    add_reference(path)
    return path


def _regenerate_sha(path: Path) -> None:
    """What someone who 'fixed' a card after changing the file would do."""
    card = card_path_for(path)
    data = json.loads(card.read_text())
    data["onnx_sha256"] = sha256_file(path)
    card.write_text(json.dumps(data))


def _edit_card(path: Path, edit) -> None:
    card = card_path_for(path)
    data = json.loads(card.read_text())
    edit(data)
    card.write_text(json.dumps(data))


def _refused(model: Path, tmp_path: Path, *messages: str) -> None:
    snapshot = Snapshot(tmp_path)
    result = run_cli(scan_argv(model, tmp_path / "out"))
    assert result.rc == 2 and result.err.startswith("halo-survey scan: error:") and "Traceback" not in result.text
    for message in messages:
        assert message in result.err
    snapshot.assert_unchanged()
    assert not (tmp_path / "out").exists()


def test_damaged_weights_with_a_regenerated_sha_are_refused(checked, tmp_path):
    onnx.save(standin_graph(gain=25.0), str(checked))  # other weights, same graph
    _regenerate_sha(checked)
    _refused(checked, tmp_path, str(checked), "reference inputs", "damaged or replaced file")


def test_weights_that_make_nan_are_refused(checked, tmp_path):
    onnx.save(standin_graph(offset_jy=float("nan")), str(checked))
    _regenerate_sha(checked)
    _refused(checked, tmp_path, str(checked), "reference inputs")


def test_a_truncated_model_file_with_a_regenerated_sha_is_named(checked, tmp_path):
    checked.write_bytes(checked.read_bytes()[:200])
    _regenerate_sha(checked)
    _refused(checked, tmp_path, f"onnxruntime could not load {checked}")


def test_a_model_file_that_is_not_onnx_is_named(checked, tmp_path):
    checked.write_text("not a model\n")
    _regenerate_sha(checked)
    _refused(checked, tmp_path, f"onnxruntime could not load {checked}")


def test_a_card_cut_short_is_named(checked, tmp_path):
    card = card_path_for(checked)
    card.write_text(card.read_text()[:300])
    _refused(checked, tmp_path, str(card), "not valid JSON")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["reference"].update(probabilities=[2.0] * len(d["reference"]["indices"])), "probabilities in [0, 1]"),
    (lambda d: d["reference"].update(indices=[]), "integer indices"),
    (lambda d: d["reference"].update(atol=0), "atol 0.0 must lie"),
    (lambda d: d["reference"].update(extra=1), "unknown keys ['extra']"),
])
def test_a_damaged_reference_in_the_card_is_named(checked, tmp_path, edit, message):
    _edit_card(checked, edit)
    _refused(checked, tmp_path, str(card_path_for(checked)), message)


def test_a_card_without_reference_still_loads(tmp_path, caplog):
    path = write_standin(tmp_path)  # as cards made before the check existed
    assert "reference" not in json.loads(card_path_for(path).read_text())
    with caplog.at_level(logging.INFO, logger="survey.model.infer"):
        classifier = OnnxClassifier(path, providers="cpu")
    assert classifier.card.reference is None and "weights are not checked" in caplog.text


def test_a_reference_of_an_unknown_recipe_is_skipped_with_a_warning(checked, caplog):
    _edit_card(checked, lambda d: d["reference"].update(recipe="from-the-future"))
    with caplog.at_level(logging.WARNING, logger="survey.model.infer"):
        OnnxClassifier(checked, providers="cpu")
    assert "from-the-future" in caplog.text and "weights not checked" in caplog.text


def test_the_reference_is_what_the_model_answers(checked):
    reference = read_card(card_path_for(checked)).reference
    assert reference.recipe == REFERENCE_RECIPE and len(reference.indices) == 6
    classifier = OnnxClassifier(checked, providers="cpu")
    got = classifier.predict(reference_inputs(reference.indices, NORMALISATION))
    np.testing.assert_allclose(got, reference.probabilities, atol=1e-6)


def test_add_reference_refuses_to_replace_one_without_force(checked, capsys):
    from training.cli import main as train_main

    before = card_path_for(checked).read_text()
    assert train_main(["add-reference", str(checked)]) == 2
    assert "already has reference outputs" in capsys.readouterr().err
    assert card_path_for(checked).read_text() == before
    assert train_main(["add-reference", str(checked), "--force"]) == 0
    assert "halo probabilities" in capsys.readouterr().out


def test_add_reference_refuses_a_card_of_another_model(checked, capsys):
    from training.cli import main as train_main

    onnx.save(standin_graph(gain=25.0), str(checked))  # the card still names the old sha
    assert train_main(["add-reference", str(checked)]) == 2
    assert "describes another model" in capsys.readouterr().err
    with pytest.raises(ModelCardError):
        OnnxClassifier(checked, providers="cpu")
