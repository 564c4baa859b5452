"""Classifier I: the paper's LeNet-style CNN (appendix A, table A3).

Layers (ours, input 64x64x4)::

    image (64, 64, 4)
    Conv1   3x3, 8 filters, ReLU, padding 'same'   -> (64, 64, 8)    296 params
    MaxPool 2                                        -> (32, 32, 8)
    Conv2   3x3, 16 filters, ReLU, padding 'valid' -> (30, 30, 16)  1,168 params
    MaxPool 2                                        -> (15, 15, 16)
    Flatten                                          -> 3,600
    Dense1  16, ReLU                                                57,616 params
    Dense2  2, softmax ("probs")                                        34 params
    total                                                           59,114 params

Where this differs from table A3, and why:

- **Input channels.** Table A3 lists 1 input channel for Conv1 (80 = 3*3*1*8 + 8 params),
  but the classifiers are trained on (64, 64, 4) cut-outs (paper table 3 footnote), as table
  A4's Conv1 (2,368 = 3*3*4*64 + 64) shows for the attention model. We use the 4 bands:
  Conv1 has 3*3*4*8 + 8 = 296 params, 216 more than the table, so the total is 59,114
  instead of 58,898. Every other layer matches the table exactly.
- **Padding.** The table gives no padding, but Dense1 has 3,600 = 15*15*16 inputs. From a
  64x64 input, 'same' padding in Conv1 and 'valid' in Conv2 gives exactly 15x15 (64 -> pool
  32 -> conv 30 -> pool 15); 'valid' in both would give 14x14 (3,136). We use that choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import layers

from survey.model.modelcard import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from training.models import ClassifierConfig


def build_cnn(config: ClassifierConfig) -> keras.Model:
    """Build classifier I (table A3) for ``config.input_shape`` cut-outs.

    Weights are initialised from ``config.seed`` (Keras' global seed is set, so the
    build is reproducible).
    """
    keras.utils.set_random_seed(config.seed)
    image = keras.Input(shape=config.input_shape, dtype="float32", name=INPUT_NAME)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(image)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="valid", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16, activation="relu", name="dense1")(x)
    probs = layers.Dense(config.n_classes, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(image, probs, name="cnn")
