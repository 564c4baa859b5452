"""Keras classifier -> ONNX file the survey can run, with provenance and a parity check.

The shape follows tensorflow-onnx ``examples/getting_started.py``: convert with
``tf2onnx.convert.from_keras`` and a ``None`` batch dimension, then feed the same input to
Keras and to ONNX Runtime and compare. With the pinned versions (Keras 3.15, TensorFlow
2.21, tf2onnx 1.17) ``from_keras`` works for our functional models when it is given an
explicit ``input_signature``: tf2onnx then traces ``model(x, training=False)`` (so the
attention model's Gaussian noise is absent from the graph) and names the output after the
model's output layer, ``"probs"``. The names are checked after conversion anyway, because
the survey finds the tensors by name.

The Keras models are channels-last (N, 64, 64, 4), while the survey's input builder makes
band planes (N, 4, 64, 64) and the card says so (``survey.model.preprocess.INPUT_LAYOUT``).
``training.onnx_layout.planes_input`` therefore puts one Transpose in front of the converted graph, so the file
takes exactly what the card describes; ONNX Runtime's optimiser cancels it against the
transpose to NCHW that tf2onnx puts in front of a CNN's first convolution.

``export_with_card`` is what the CLI calls: ONNX file, parity check, then the model card,
which records the file's probabilities on a few fixed inputs (``survey.model.reference``)
so the survey can tell if the weights ever change.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from survey.exceptions import OnnxParityError
from survey.model.infer import reference_of
from survey.model.modelcard import (
    ARCHITECTURES,
    DEFAULT_THRESHOLD,
    INPUT_NAME,
    OUTPUT_NAME,
    ModelCard,
    TrainingRecord,
    build_card,
    card_path_for,
    code_version,
    survey_input_spec,
    write_card,
)
from survey.model.normalisation import Normalisation
from training.onnx_layout import LAYOUT_METADATA_KEY, planes_input

DEFAULT_OPSET = 17
"""ONNX opset: 17 has LayerNormalization and is supported by every onnxruntime >= 1.13."""

PARITY_ATOL = 1e-4
"""Largest |Keras - ONNX| softmax difference accepted at export."""


def input_signature() -> list[tf.TensorSpec]:
    """The Keras models' input, channels-last, as a TensorSpec with a dynamic (None) batch dimension."""
    bands, height, width = survey_input_spec().shape
    return [tf.TensorSpec((None, height, width, bands), tf.float32, name=INPUT_NAME)]


def provenance(*, architecture: str, normalisation_id: str | None, opset: int) -> dict[str, str]:
    """Key/value provenance stamped into the ONNX ``metadata_props``.

    The survey checks ``normalisation_id`` against the card; the rest is for people
    (``onnx.load(path).metadata_props`` or Netron) asking where a file came from.

    Parameters
    ----------
    architecture : str
        ``"cnn"``, ``"attention"`` or ``"dense"``.
    normalisation_id : str, optional
        ``Normalisation.id`` of the training data; left out when None.
    opset : int
        ONNX opset the file targets.

    Returns
    -------
    dict of str to str
        Also this package's, Keras', TensorFlow's and tf2onnx's versions and the UTC time.
    """
    stamp = {
        "halo_survey_version": code_version(),
        "architecture": architecture,
        "opset": str(opset),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "tf2onnx_version": tf2onnx.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if normalisation_id is not None:
        stamp["normalisation_id"] = normalisation_id
    return stamp


def _architecture_of(model: keras.Model, architecture: str | None) -> str:
    architecture = architecture or model.name
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"cannot tell the architecture of model {model.name!r}; pass architecture= one of {ARCHITECTURES}"
        )
    return architecture


def _check_io_names(proto: onnx.ModelProto, out_path: Path) -> None:
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise OnnxParityError(
            f"{out_path}: tf2onnx produced inputs {inputs} and outputs {outputs}, expected "
            f"[{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]; name the model's output layer {OUTPUT_NAME!r}."
        )


def to_onnx(
    model: keras.Model,
    out_path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    architecture: str | None = None,
    normalisation_id: str | None = None,
) -> Path:
    """Convert a Keras classifier to ONNX with a dynamic batch and provenance metadata.

    Parameters
    ----------
    model : keras.Model
        A classifier from ``training.models`` (input ``"image"``, output ``"probs"``).
    out_path : str or Path
        Destination, ending in ``.onnx`` (the card goes beside it as ``NAME.card.json``).
    opset : int
        ONNX opset to target.
    architecture : str, optional
        ``"cnn"``, ``"attention"`` or ``"dense"``; defaults to ``model.name``.
    normalisation_id : str, optional
        ``Normalisation.id`` of the training data; stamped so the survey can check the card.

    Returns
    -------
    Path
        ``out_path``.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise ValueError(f"{out_path}: the model file must end in .onnx (its card is NAME.card.json)")
    architecture = _architecture_of(model, architecture)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=input_signature(), opset=opset)
    _check_io_names(proto, out_path)
    proto = planes_input(proto)
    stamp = provenance(architecture=architecture, normalisation_id=normalisation_id, opset=opset)
    onnx.helper.set_model_props(proto, {**stamp, LAYOUT_METADATA_KEY: survey_input_spec().layout})
    onnx.checker.check_model(proto)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))
    return out_path


def verify_onnx(
    model: keras.Model,
    onnx_path: str | Path,
    inputs: npt.NDArray[np.float32],
    *,
    atol: float = PARITY_ATOL,
) -> float:
    """Largest |Keras - ONNX Runtime| difference of the softmax outputs on ``inputs``.

    Runs the ONNX file on the CPU provider (the reference implementation) and the Keras
    model in inference mode on the same batch: ``inputs`` channels-last for Keras, as band
    planes for the file.

    Parameters
    ----------
    model : keras.Model
        The model that was exported.
    onnx_path : path-like
        The exported file.
    inputs : numpy.ndarray
        Normalised cut-outs (N, 64, 64, 4), channels-last.
    atol : float
        Largest difference accepted.

    Returns
    -------
    float
        The largest absolute difference (0 for an empty batch).

    Raises
    ------
    OnnxParityError
        If the difference exceeds ``atol`` or the output shapes differ.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (onnx_probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(np.moveaxis(inputs, -1, 1))})
    keras_probs = keras.ops.convert_to_numpy(model(inputs, training=False))
    if onnx_probs.shape != keras_probs.shape:
        raise OnnxParityError(f"{onnx_path}: ONNX output shape {onnx_probs.shape} != Keras {keras_probs.shape}")
    max_abs_diff = float(np.max(np.abs(onnx_probs - keras_probs))) if inputs.shape[0] else 0.0
    if not max_abs_diff <= atol:
        raise OnnxParityError(
            f"{onnx_path}: ONNX and Keras outputs differ by {max_abs_diff:.3g} > atol {atol:g} on "
            f"{inputs.shape[0]} inputs; the conversion changed the model, do not ship this file."
        )
    return max_abs_diff


def export_with_card(
    model: keras.Model,
    out_path: str | Path,
    *,
    normalisation: Normalisation,
    training: TrainingRecord,
    check_inputs: npt.NDArray[np.float32],
    metrics: dict[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    architecture: str | None = None,
    opset: int = DEFAULT_OPSET,
) -> ModelCard:
    """Export ``model`` to ``out_path``, check parity on ``check_inputs``, write its card beside it.

    ``check_inputs`` should be real normalised cut-outs (e.g. the test split): parity on
    zeros or noise would miss differences that only real images excite.

    Parameters
    ----------
    model : keras.Model
        A classifier from ``training.models``.
    out_path : path-like
        Destination ``NAME.onnx``; the card is written beside it as ``NAME.card.json``.
    normalisation : Normalisation
        The input scaling the model was trained with; its id is stamped into the file.
    training : TrainingRecord
        Sources, protocol, seed, epochs and augmentation, for the card.
    check_inputs : numpy.ndarray
        Normalised cut-outs (N, 64, 64, 4), channels-last, for the parity check.
    metrics : dict, optional
        Evaluation results for the card.
    threshold : float
        Candidate threshold recorded in the card.
    architecture : str, optional
        ``"cnn"``, ``"attention"`` or ``"dense"``; default ``model.name``.
    opset : int
        ONNX opset to target.

    Returns
    -------
    ModelCard
        The card, as written.

    Raises
    ------
    ValueError
        ``out_path`` does not end in ``.onnx``, or the architecture cannot be told.
    OnnxParityError
        The file's tensor names are wrong, or it disagrees with Keras beyond
        ``PARITY_ATOL``.
    ModelCardError
        The card fails validation.
    """
    architecture = _architecture_of(model, architecture)
    onnx_path = to_onnx(
        model, out_path, opset=opset, architecture=architecture, normalisation_id=normalisation.id
    )
    verify_onnx(model, onnx_path, check_inputs)
    card = build_card(
        onnx_path,
        architecture=architecture,
        training=training,
        normalisation=normalisation,
        metrics=metrics,
        threshold=threshold,
        # The file's answers on fixed inputs: the survey re-checks them at every load.
        reference=reference_of(onnx_path, normalisation=normalisation),
    )
    write_card(card, card_path_for(onnx_path))
    return card
