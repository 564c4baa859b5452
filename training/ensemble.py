"""Seed ensembles: several classifiers trained alike but for their seed, averaged into one model.

Why: with 46 real fields the blind protocol's numbers move a lot with the training's
randomness alone (``results/blind-cnn-log-seed1``, ``-seed2``: ROC-AUC 0.846-0.868, false
candidates 0.11-0.24 per deg2 at thresholds chosen alike). Averaging the class
probabilities of members that differ only in their seed removes part of that variance
from the scores, and so from the threshold a few validation candidates pick.

The average is itself a Keras model with the members' input and output names, so it
exports to one ONNX graph (``training.export``) and the survey runs it like any other
classifier: one input path, one file, one threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from survey.model.modelcard import INPUT_NAME, OUTPUT_NAME


def member_seed(seed: int, member: int) -> int:
    """The training seed of ensemble member ``member``: the run's seed plus the member's index.

    Member k is thus the very model a run with ``--training-seed`` k (everything else alike)
    trains, so an ensemble can be paired with those runs.
    """
    return seed + member


def average_of(models: Sequence[keras.Model]) -> keras.Model:
    """One model whose class probabilities are the mean of ``models``' (a lone model is returned as it is).

    Parameters
    ----------
    models : sequence of keras.Model
        Classifiers of one input shape (input ``"image"``, softmax output ``"probs"``).

    Returns
    -------
    keras.Model
        Input ``"image"``, output ``"probs"``, named after the members' architecture so the
        export can tell it (``training.export``); members keep their weights, nested under
        ``member_<k>``.
    """
    if not models:
        raise ValueError("an ensemble needs at least one member")
    if len(models) == 1:
        return models[0]
    shapes = {tuple(m.input_shape[1:]) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members take different inputs: {sorted(shapes)}")
    image = keras.Input(shape=shapes.pop(), dtype="float32", name=INPUT_NAME)
    # Each member nested under its own name: the members share layer names ("probs", ...).
    outputs = [keras.Sequential([m], name=f"member_{k}")(image) for k, m in enumerate(models)]
    probs = keras.layers.Average(name=OUTPUT_NAME)(outputs)
    return keras.Model(image, probs, name=models[0].name)
