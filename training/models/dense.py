"""Classifier D: the paper's fully connected network (appendix A, table A5).

Layers (ours, input 64x64x4)::

    image (64, 64, 4)
    Flatten                         -> 16,384
    Dense1  64, ReLU                   1,048,640 params
    Dense2  32, ReLU                       2,080 params
    Dense3  16, ReLU                         528 params
    Dense4  2, softmax ("probs")              34 params
    total                              1,051,282 params

Where this differs from table A5, and why: the table's Dense1 has 4,096 = 64*64*1 inputs
(262,208 params), i.e. one band. The classifiers are trained on (64, 64, 4) cut-outs
(paper table 3 footnote), so ours flattens 64*64*4 = 16,384 inputs: Dense1 has
16,384*64 + 64 = 1,048,640 params (786,432 more). Dense2-4 match the table exactly.

The table's stated total, 264,580, is not the sum of its rows, 264,850 (two digits
swapped); every row follows the layer formulas, so the rows are right and our total is
264,850 + 786,432 = 1,051,282.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import layers

from survey.model.modelcard import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from training.models import ClassifierConfig

HIDDEN_UNITS = (64, 32, 16)
"""Widths of the hidden ReLU layers (table A5)."""


def build_dense(config: ClassifierConfig) -> keras.Model:
    """Build classifier D (table A5) for ``config.input_shape`` cut-outs, seeded by ``config.seed``."""
    keras.utils.set_random_seed(config.seed)
    image = keras.Input(shape=config.input_shape, dtype="float32", name=INPUT_NAME)
    x = layers.Flatten(name="flatten")(image)
    for index, units in enumerate(HIDDEN_UNITS, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{index}")(x)
    probs = layers.Dense(config.n_classes, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(image, probs, name="dense")
