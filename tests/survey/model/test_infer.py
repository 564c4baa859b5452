"""The onnxruntime shim: card checks, provider choice, predict on any batch, pickling.

The ONNX graphs here are built with ``onnx.helper`` (no TensorFlow on the survey side): a
tiny classifier whose halo probability is a known numpy function of the input, so
``predict`` is checked against independent arithmetic. The exported Keras classifiers are
run through ``OnnxClassifier`` in ``tests/training/test_export.py``.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from survey.exceptions import BadInputError, HaloSurveyError, ModelCardError
from survey.model.infer import CPU, CUDA, OnnxClassifier, requested_providers
from survey.model.modelcard import TrainingRecord, build_card, card_path_for, write_card
from survey.model.normalisation import Normalisation

onnx = pytest.importorskip("onnx", reason="building test graphs needs the onnx package")
from onnx import TensorProto, helper  # noqa: E402

NORMALISATION = Normalisation("minmax", -0.1, 2.0)
WEIGHTS = np.array([[1.0, -1.0], [2.0, -0.5], [-1.5, 1.0], [0.5, 3.0]], dtype=np.float32)
BIAS = np.array([0.1, -0.2], dtype=np.float32)


def tiny_classifier(*, input_name: str = "image", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """probs = softmax(mean over pixels of each band @ WEIGHTS + BIAS), input (N, 4, 64, 64) band planes."""
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["band_means"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["band_means", "weights"], ["logits_nobias"]),
        helper.make_node("Add", ["logits_nobias", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 4, 64, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])],
        initializer=[onnx.numpy_helper.from_array(WEIGHTS, "weights"), onnx.numpy_helper.from_array(BIAS, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support
    helper.set_model_props(model, metadata or {"normalisation_id": NORMALISATION.id})
    onnx.checker.check_model(model)
    return model


def expected_halo_probability(batch: np.ndarray) -> np.ndarray:
    logits = batch.mean(axis=(2, 3)) @ WEIGHTS + BIAS
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True))[:, 1]


def save_with_card(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    record = TrainingRecord(sources=(), protocol="paper", seed=0, epochs=1)
    card = build_card(path, architecture="cnn", training=record, normalisation=NORMALISATION)
    write_card(card, card_path_for(path))
    return path


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return save_with_card(tiny_classifier(), tmp_path / "tiny.onnx")


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(3).random((7, 4, 64, 64), dtype=np.float32)


def test_predict_returns_the_halo_column(model_path, batch):
    classifier = OnnxClassifier(model_path, providers="cpu")
    probs = classifier.predict(batch)
    assert probs.shape == (7,) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected_halo_probability(batch), atol=1e-6)
    assert np.ptp(probs) > 1e-3  # the check above is not passing on a constant


@pytest.mark.parametrize("n", [0, 1, 7])
def test_predict_takes_any_batch_size(model_path, batch, n):
    probs = OnnxClassifier(model_path).predict(np.ascontiguousarray(batch[:n]))
    assert probs.shape == (n,)
    np.testing.assert_allclose(probs, expected_halo_probability(batch[:n]), atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 3, 64, 64), np.float32), r"expected shape \(N, 4, 64, 64\) \(NCHW\), got \(2, 3, 64, 64\)"),
        (np.zeros((4, 64, 64), np.float32), r"expected shape .* got \(4, 64, 64\)"),
        (np.zeros((2, 64, 64, 4), np.float32), r"got \(2, 64, 64, 4\)"),  # channels-last: not the card's layout
        (np.zeros((2, 4, 64, 64), np.float64), r"expected float32 normalised cut-outs, got float64"),
        ([[0.0]], r"expected a numpy array, got list"),
    ],
)
def test_predict_refuses_wrong_shape_or_dtype(model_path, bad, message):
    with pytest.raises(BadInputError, match=r"OnnxClassifier\(tiny\.onnx\)\.predict: .*" + message):
        OnnxClassifier(model_path).predict(bad)


def test_exposes_card_normalisation_and_threshold(model_path):
    classifier = OnnxClassifier(model_path)
    assert classifier.card.architecture == "cnn"
    assert classifier.normalisation == NORMALISATION
    assert classifier.threshold == 0.95


def test_reports_the_provider_that_runs(model_path, caplog):
    with caplog.at_level(logging.INFO, logger="survey.model.infer"):
        classifier = OnnxClassifier(model_path, providers="cpu", intra_op_threads=1)
    assert classifier.provider == CPU
    assert "tiny.onnx (cnn) runs on CPUExecutionProvider" in caplog.text


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime build offers CUDA")
def test_auto_runs_on_the_cpu_without_cuda(model_path):
    assert OnnxClassifier(model_path, providers="auto").provider == CPU
    with pytest.raises(HaloSurveyError, match=r"providers='cuda' asked for, but this onnxruntime offers only"):
        OnnxClassifier(model_path, providers="cuda")


def test_silent_cuda_fallback_is_detected(model_path, monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA without a GPU and falls back: read what actually runs."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    assert requested_providers("auto") == [CUDA, CPU]
    real_session = ort.InferenceSession

    def cpu_only_session(path, options, providers):
        assert providers == [CUDA, CPU]
        return real_session(path, options, providers=[CPU])

    monkeypatch.setattr(ort, "InferenceSession", cpu_only_session)
    with caplog.at_level(logging.WARNING, logger="survey.model.infer"):
        assert OnnxClassifier(model_path, providers="auto").provider == CPU
    assert "CUDA was requested for tiny.onnx but CPUExecutionProvider runs it" in caplog.text
    with pytest.raises(HaloSurveyError, match=r"onnxruntime fell back to CPUExecutionProvider .*tiny\.onnx"):
        OnnxClassifier(model_path, providers="cuda")


def test_rejects_unknown_provider_choice_and_thread_count(model_path):
    with pytest.raises(ValueError, match=r"providers must be None, 'auto', 'cpu' or 'cuda', got 'tpu'"):
        OnnxClassifier(model_path, providers="tpu")
    with pytest.raises(ValueError, match=r"intra_op_threads must be >= 1, got 0"):
        OnnxClassifier(model_path, intra_op_threads=0)


def test_refuses_a_graph_that_disagrees_with_its_card(tmp_path):
    path = save_with_card(tiny_classifier(input_name="x"), tmp_path / "renamed.onnx")
    with pytest.raises(ModelCardError, match=r"renamed\.onnx: the ONNX graph disagrees with its card: inputs \['x'\]"):
        OnnxClassifier(path)


def test_refuses_a_graph_exported_with_another_normalisation(tmp_path):
    other = Normalisation("minmax", 0.0, 1.0).id
    path = save_with_card(tiny_classifier(metadata={"normalisation_id": other}), tmp_path / "other.onnx")
    message = rf"exported with normalisation {other} but its card says {NORMALISATION.id}"
    with pytest.raises(ModelCardError, match=message):
        OnnxClassifier(path)


def test_refuses_a_model_without_card(tmp_path):
    path = tmp_path / "bare.onnx"
    onnx.save(tiny_classifier(), str(path))
    with pytest.raises(ModelCardError, match=r"bare\.onnx has no card"):
        OnnxClassifier(path)


def test_pickles_by_arguments_for_ray_actors(model_path, batch):
    classifier = OnnxClassifier(model_path, providers="cpu", intra_op_threads=1)
    clone = pickle.loads(pickle.dumps(classifier))
    assert clone.provider == CPU and clone.card == classifier.card
    np.testing.assert_array_equal(clone.predict(batch), classifier.predict(batch))


def test_the_shipped_model_takes_band_planes_and_scores_faint_central_diffuse_emission_above_empty_noise():
    """The shipped card says NCHW and the file takes exactly that: no graph is rewritten at load.

    The emission is halo-like (6 px, about 3', across; brighter at low frequency; near the
    clip level). Bright or compact central sources are what the model learned to reject
    (docs/classifiers.md), so only faint diffuse emission is expected to score high.
    """
    from survey.defaults import DEFAULT_MODEL

    classifier = OnnxClassifier(DEFAULT_MODEL, providers="cpu")
    assert classifier.card.input_spec.layout == "NCHW" and classifier.card.input_spec.shape == (4, 64, 64)
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((xx - 31.5) ** 2 + (yy - 31.5) ** 2) / (2 * 6.0**2))
    spectrum = np.array([1.6, 1.3, 1.0, 0.8])[None, :, None, None]
    noise = 0.02 * np.random.default_rng(5).standard_normal((2, 4, 64, 64))
    jy = (noise + np.array([0.0, 0.1])[:, None, None, None] * spectrum * blob[None]).astype(np.float32)
    jy[np.abs(jy) < 0.06] = 0
    empty, diffuse = classifier.predict(classifier.normalisation.apply(jy).astype(np.float32))
    assert diffuse > empty + 0.3


def test_survey_side_never_imports_tensorflow():
    code = (
        "import sys, survey.model.modelcard, survey.model.infer; "
        "bad = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
