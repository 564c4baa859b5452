"""Band planes in front of a channels-last graph, and upgrading a version-1 (NHWC) model in place.

The graphs are built with ``onnx.helper`` (no TensorFlow): a tiny channels-last classifier
whose scores are known, saved with a version-1 card as models exported before the planes
input were.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from survey.exceptions import ModelCardError
from survey.model.infer import OnnxClassifier
from survey.model.modelcard import CARD_VERSION, TrainingRecord, build_card, card_path_for, load_model_card
from survey.model.normalisation import Normalisation

onnx = pytest.importorskip("onnx", reason="the ONNX layout tools need the onnx package (extra `train`)")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from training.onnx_layout import CHANNELS_LAST_SUFFIX, planes_input, upgrade_model  # noqa: E402

NORMALISATION = Normalisation("minmax", 0.0, 1.0)
WEIGHTS = np.array([[1.0, -1.0], [2.0, -0.5], [-1.5, 1.0], [0.5, 3.0]], np.float32)


def channels_last_classifier() -> onnx.ModelProto:
    """probs = softmax(mean over pixels of each band @ WEIGHTS), input (N, 64, 64, 4) as Keras exports had."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["means"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["means", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "nhwc", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 64, 64, 4])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])],
                              initializer=[onnx.numpy_helper.from_array(WEIGHTS, "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"normalisation_id": NORMALISATION.id, "architecture": "cnn"})
    return model


def write_version_1(path: Path) -> Path:
    """The tiny NHWC model with the card an older export wrote (version 1, layout NHWC)."""
    onnx.save(channels_last_classifier(), str(path))
    record = TrainingRecord(sources=(), protocol="final", seed=3, epochs=7, augment={"kind": "classic"})
    card = build_card(path, architecture="cnn", training=record, normalisation=NORMALISATION, threshold=0.9,
                      metrics={"grouped_protocol": {"roc_auc": 0.5}})
    data = card.to_dict()
    data["card_version"] = 1
    data["input_spec"] = {**data["input_spec"], "layout": "NHWC"}
    card_path_for(path).write_text(json.dumps(data))
    return path


def nhwc_scores(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"image": x})[0][:, 1]


def test_planes_input_feeds_the_channels_last_graph_through_one_transpose():
    proto = planes_input(channels_last_classifier())
    (image,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and dims == ["N", 4, 64, 64]
    first = proto.graph.node[0]
    assert first.op_type == "Transpose" and list(first.output) == ["image" + CHANNELS_LAST_SUFFIX]
    assert all("image" not in node.input for node in proto.graph.node[1:])
    onnx.checker.check_model(proto)


def test_the_survey_refuses_a_version_1_model_and_upgrade_model_makes_it_run_with_the_same_scores(tmp_path):
    path = write_version_1(tmp_path / "old.onnx")
    x = np.random.default_rng(1).random((6, 64, 64, 4), dtype=np.float32)
    before = nhwc_scores(path, x)
    with pytest.raises(ModelCardError, match=r"card_version 1 .*`halo-train upgrade-model"):
        load_model_card(path)
    card = upgrade_model(path)
    assert card.card_version == CARD_VERSION and card.input_spec.layout == "NCHW"
    assert (card.training.seed, card.threshold, card.metrics) == (3, 0.9, {"grouped_protocol": {"roc_auc": 0.5}})
    after = OnnxClassifier(path, providers="cpu").predict(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    # The same arithmetic up to the order of float32 sums.
    np.testing.assert_allclose(after, before, rtol=0, atol=2e-6)
    assert np.ptp(before) > 1e-3
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["input_layout"] == "NCHW" and props["normalisation_id"] == NORMALISATION.id


def test_upgrade_model_writes_elsewhere_and_refuses_what_it_cannot_upgrade(tmp_path):
    path = write_version_1(tmp_path / "old.onnx")
    upgrade_model(path, out_path=tmp_path / "new" / "planes.onnx")
    assert load_model_card(tmp_path / "new" / "planes.onnx").name == "planes"
    with pytest.raises(ModelCardError, match=r"card_version 2; only version 1 is upgraded"):
        upgrade_model(tmp_path / "new" / "planes.onnx")
    onnx.save(channels_last_classifier(), str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelCardError, match=r"has no card"):
        upgrade_model(tmp_path / "bare.onnx")
    (tmp_path / "old.onnx").write_bytes(b"changed")
    with pytest.raises(ModelCardError, match=r"describes another file"):
        upgrade_model(path)
