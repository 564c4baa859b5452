"""Helpers of the survey-run tests: a stand-in classifier and a local Ray for one test module.

The stand-in is built with ``onnx.helper`` (no TensorFlow). It is NOT a trained model: its
"halo probability" is a fixed function of the brightest pixel of the 170-231 MHz cut-out,
``sigmoid(GAIN * (max - OFFSET_JY))`` after the card's normalisation (the identity min-max [0, 1] Jy/beam), so a window near a source brighter
than ``OFFSET_JY`` scores high. That makes detections frequent and spatially coherent on the
mock sky (patches of neighbouring windows around bright sources, some across tile
boundaries), which is what the plumbing tests need; the score means nothing astronomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from survey.model.modelcard import TrainingRecord, build_card, card_path_for, write_card
from survey.model.normalisation import Normalisation

onnx = pytest.importorskip("onnx", reason="building the stand-in model needs the onnx package")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

NORMALISATION = Normalisation("minmax", 0.0, 1.0)
"""Identity on Jy/beam: the stand-in thresholds pixel values directly."""

GAIN = 40.0
OFFSET_JY = 0.3


def standin_graph(*, gain: float = GAIN, offset_jy: float = OFFSET_JY, input_name: str = "image",
                  normalisation: Normalisation = NORMALISATION):
    """``probs = [1 - p, p]``, ``p = sigmoid(gain * (max over the 170-231 MHz cut-out - offset))``."""
    constants = {
        "starts": np.array([3], np.int64), "ends": np.array([4], np.int64), "axes": np.array([1], np.int64),
        "gain": np.array(gain, np.float32), "offset": np.array(offset_jy, np.float32),
        "one": np.array(1.0, np.float32), "unsqueeze_axes": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Slice", [input_name, "starts", "ends", "axes"], ["band4"]),
        helper.make_node("ReduceMax", ["band4"], ["peak"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["peak", "offset"], ["excess"]),
        helper.make_node("Mul", ["excess", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p"]),
        helper.make_node("Unsqueeze", ["p", "unsqueeze_axes"], ["p1"]),
        helper.make_node("Sub", ["one", "p1"], ["p0"]),
        helper.make_node("Concat", ["p0", "p1"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "standin",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 4, 64, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"normalisation_id": normalisation.id})
    onnx.checker.check_model(model)
    return model


def expected_score(planes: np.ndarray, *, gain: float = GAIN, offset_jy: float = OFFSET_JY) -> np.ndarray:
    """The stand-in's halo probability computed with numpy, for (N, 4, 64, 64) clipped band planes."""
    peak = planes[:, 3].reshape(len(planes), -1).max(axis=1)
    return 1.0 / (1.0 + np.exp(-gain * (peak - offset_jy)))


def write_standin(
    directory: Path, *, name: str = "standin", threshold: float = 0.95, normalisation: Normalisation = NORMALISATION,
    **graph_kwargs,
) -> Path:
    """Write ``NAME.onnx`` and its card into ``directory``; returns the ONNX path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    onnx.save(standin_graph(normalisation=normalisation, **graph_kwargs), str(path))
    record = TrainingRecord(sources=(), protocol="paper", seed=0, epochs=0, augment={"stand-in": "not trained"})
    card = build_card(path, architecture="cnn", training=record, normalisation=normalisation, threshold=threshold)
    write_card(card, card_path_for(path))
    return path


def local_ray() -> Iterator[object]:
    """Start a 2-CPU local Ray for one test module and shut it down after (use as a fixture body).

    Ray's socket paths must stay short, so its temporary directory is ``/tmp/ray-<pid>``,
    not pytest's long ``tmp_path``.
    """
    ray = pytest.importorskip("ray")
    import ray.data

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    context = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=f"/tmp/ray-{os.getpid()}",
                       logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield context
    finally:
        ray.shutdown()


def free_cpus_within(expected: float, *, seconds: float = 30.0) -> float:
    """Ray's free CPUs once they reach ``expected``, or what is free after ``seconds`` (actors end asynchronously)."""
    import time

    import ray

    deadline = time.monotonic() + seconds
    while (free := ray.available_resources().get("CPU", 0.0)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return free
