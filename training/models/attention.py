"""Classifier A: the paper's CNN with multi-head self-attention (appendix A, table A4).

Layers (input 64x64x4)::

    image (64, 64, 4)
    GaussianNoise (training only; paper section 5.5.2)
    Conv1   3x3, 64 filters, ReLU, 'same'    -> (64, 64, 64)      2,368 params
    MaxPool 2                                 -> (32, 32, 64)
    Conv2   3x3, 128 filters, ReLU, 'same'   -> (32, 32, 128)    73,856 params
    MaxPool 2                                 -> (16, 16, 128)
    Conv3   3x3, 192 filters, ReLU, 'same'   -> (16, 16, 192)   221,376 params
    Reshape: 256 spatial positions as tokens -> (256, 192)
    MultiHeadAttention, self-attention        -> (256, 32)      117,344 params
    LayerNormalization over the 32 features                         64 params
    Flatten                                   -> 8,192
    Dense1  64, ReLU                                             524,352 params
    Dense2  2, softmax ("probs")                                     130 params
    total                                                        939,490 params

This reproduces every row of table A4 and its total exactly. What the table leaves open:

- **Attention shape.** Keras' ``MultiHeadAttention`` on 192 features with ``num_heads`` H,
  ``key_dim`` = ``value_dim`` = K and ``output_shape`` 32 has 3*(192*H*K + H*K) parameters in
  the query, key and value projections and H*K*32 + 32 in the output projection:
  611*H*K + 32 = 117,344 gives H*K = 192 exactly. The table fixes only the product; we
  use H = 4 heads of K = 48 (``ClassifierConfig.num_heads``/``key_dim``).
- **Padding and tokens.** Flatten has 8,192 = 16*16*32 inputs, so the attention sees a
  16x16 map: all three convolutions use 'same' padding and there is no pooling after Conv3.
  Each of the 256 positions is a token, so any position can attend to any other (the
  paper's reason for attention, section 4.1). There is no residual connection (192 features
  in, 32 out) and LayerNormalization has 2*32 = 64 parameters, as in the table.
- **Noise width.** Section 5.5.2 adds a Gaussian-noise layer but gives no width; see
  ``ClassifierConfig.noise_stddev``. It has no parameters and is the identity at inference,
  so the ONNX graph contains no random op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import layers

from survey.model.modelcard import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from training.models import ClassifierConfig

CONV_FILTERS = (64, 128, 192)
"""Filters of Conv1-Conv3 (table A4); max-pooling follows the first two."""

DENSE_UNITS = 64
"""Width of the hidden dense layer (table A4, Dense1)."""


def build_attention(config: ClassifierConfig) -> keras.Model:
    """Build classifier A (table A4) for ``config.input_shape`` cut-outs, seeded by ``config.seed``.

    Seeding sets Keras' global seed rather than one seed per initializer: Keras'
    ``MultiHeadAttention`` clones one kernel initializer for its query, key and value
    projections, so a seeded initializer would start all three with identical weights.
    """
    keras.utils.set_random_seed(config.seed)
    image = keras.Input(shape=config.input_shape, dtype="float32", name=INPUT_NAME)
    x = layers.GaussianNoise(config.noise_stddev, seed=config.seed, name="noise")(image)
    for index, filters in enumerate(CONV_FILTERS, start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{index}")(x)
        if index < len(CONV_FILTERS):
            x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    _, height, width, channels = x.shape
    tokens = layers.Reshape((height * width, channels), name="tokens")(x)
    attention = layers.MultiHeadAttention(
        num_heads=config.num_heads,
        key_dim=config.key_dim,
        output_shape=config.attention_dim,
        name="attention",
    )
    x = attention(tokens, tokens)
    x = layers.LayerNormalization(name="layer_norm")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(DENSE_UNITS, activation="relu", name="dense1")(x)
    probs = layers.Dense(config.n_classes, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(image, probs, name="attention")
