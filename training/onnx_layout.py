"""The ONNX input layout: band planes in front of a channels-last graph, and upgrading older files.

The survey feeds (N, 4, 64, 64) band planes (``survey.model.preprocess``), the layout every
model card since version 2 describes. Keras convolutions are channels-last, so an exported
graph takes its (N, 64, 64, 4) tensor from one Transpose placed in front
(``planes_input``); ONNX Runtime cancels it against the NCHW transpose tf2onnx puts before
a CNN's first convolution. Files exported before that (card version 1) take NHWC;
``upgrade_model`` rewrites them and their card, weights untouched. ``add_reference`` adds the
reference check (``survey.model.reference``) to the card of any version-2 model.

Needs the ``onnx`` package but not TensorFlow, so ``halo-train upgrade-model`` starts at once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import onnx

from survey.exceptions import ModelCardError
from survey.model.infer import reference_of
from survey.model.modelcard import (
    CARD_VERSION,
    INPUT_NAME,
    ModelCard,
    card_path_for,
    load_model_card,
    read_card,
    sha256_file,
    survey_input_spec,
    write_card,
)

CHANNELS_LAST_SUFFIX = "_channels_last"
"""Appended to the input name for the Keras model's own (N, 64, 64, 4) tensor inside the graph."""

LAYOUT_METADATA_KEY = "input_layout"
"""ONNX metadata key recording the input layout the file takes."""


def planes_input(proto: onnx.ModelProto, *, input_name: str = INPUT_NAME) -> onnx.ModelProto:
    """``proto`` taking (N, C, H, W) band planes as ``input_name``: a Transpose to its (N, H, W, C) input goes first.

    The channels-last input is renamed ``input_name + CHANNELS_LAST_SUFFIX`` inside the graph
    and fed by the new Transpose; every node that read it reads the renamed tensor, so the
    weights and the rest of the graph are untouched. Modifies and returns ``proto``.
    """
    graph = proto.graph
    (original,) = [value for value in graph.input if value.name == input_name]
    inner = input_name + CHANNELS_LAST_SUFFIX
    for node in graph.node:
        node.input[:] = [inner if name == input_name else name for name in node.input]
    batch, height, width, channels = (d.dim_param or d.dim_value for d in original.type.tensor_type.shape.dim)
    planes = onnx.helper.make_tensor_value_info(input_name, original.type.tensor_type.elem_type,
                                                [batch or "N", channels, height, width])
    graph.node.insert(0, onnx.helper.make_node("Transpose", [input_name], [inner], perm=[0, 2, 3, 1],
                                               name=f"{input_name}_planes_to_channels_last"))
    graph.input.remove(original)
    graph.input.insert(0, planes)
    return proto


def upgrade_model(onnx_path: str | Path, *, out_path: str | Path | None = None) -> ModelCard:
    """Rewrite a card-version-1 model (NHWC input) as version 2 (band planes), weights untouched.

    The ONNX file gets ``planes_input`` in front of its graph and a fresh sha256; the card
    keeps its training record, normalisation, metrics and threshold and gets the survey's
    input spec. Scores are those of the old file up to the order of float32 sums.

    Parameters
    ----------
    onnx_path : str or Path
        ``NAME.onnx`` with its version-1 card ``NAME.card.json`` beside it.
    out_path : str or Path, optional
        Where to write the upgraded ``.onnx`` (its card goes beside it); default: in place.

    Returns
    -------
    ModelCard
        The version-2 card, as written.

    Raises
    ------
    ModelCardError
        The card is missing, is not version 1, or describes another file.
    """
    onnx_path = Path(onnx_path)
    out_path = Path(out_path) if out_path is not None else onnx_path
    card_file = card_path_for(onnx_path)
    if not card_file.is_file():
        raise ModelCardError(f"model {onnx_path} has no card {card_file}; nothing to upgrade")
    data = json.loads(card_file.read_text(encoding="utf-8"))
    if data.get("card_version") != 1:
        raise ModelCardError(f"{card_file}: card_version {data.get('card_version')!r}; only version 1 is upgraded "
                             f"(this package writes version {CARD_VERSION})")
    if data.get("onnx_sha256") != sha256_file(onnx_path):
        raise ModelCardError(f"{card_file} describes another file than {onnx_path} (sha256 differs)")
    proto = planes_input(onnx.load(str(onnx_path)))
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props},
                                        LAYOUT_METADATA_KEY: survey_input_spec().layout})
    onnx.checker.check_model(proto)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temp = out_path.with_name(out_path.name + ".tmp")
    onnx.save(proto, str(temp))
    shutil.move(temp, out_path)
    spec = json.loads(json.dumps(asdict(survey_input_spec())))
    data.update(card_version=CARD_VERSION, name=out_path.stem, onnx_sha256=sha256_file(out_path), input_spec=spec)
    card = ModelCard.from_dict(data, where=f"upgraded card of {out_path}")
    card = replace(card, reference=reference_of(out_path, normalisation=card.normalisation))
    write_card(card, card_path_for(out_path))
    return read_card(card_path_for(out_path))


def add_reference(onnx_path: str | Path, *, force: bool = False) -> ModelCard:
    """Add the reference check (``survey.model.reference``) to the card of an existing model.

    The model's probabilities on the reference inputs are computed now, from the file as it
    is, and stored in its card; from then on the survey refuses the file if its weights
    change. Run it only on a model known to be good (the one that was evaluated). The ONNX
    file is not touched, so its sha256 stays.

    Parameters
    ----------
    onnx_path : str or Path
        ``NAME.onnx`` with its (version 2) card beside it.
    force : bool
        Replace a reference the card already has.

    Returns
    -------
    ModelCard
        The card, as written.

    Raises
    ------
    ModelCardError
        The card is missing, invalid or describes another file, or already has a reference
        and ``force`` is False.
    """
    onnx_path = Path(onnx_path)
    card = load_model_card(onnx_path)
    if card.reference is not None and not force:
        raise ModelCardError(
            f"{card_path_for(onnx_path)} already has reference outputs (inputs {list(card.reference.indices)}); "
            "pass --force to replace them, only for a model known to be good"
        )
    card = replace(card, reference=reference_of(onnx_path, normalisation=card.normalisation))
    write_card(ModelCard.from_dict(json.loads(card.to_json()), where=f"card of {onnx_path}"), card_path_for(onnx_path))
    return read_card(card_path_for(onnx_path))

