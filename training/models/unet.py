"""The DDPM noise-prediction U-Net (Ho et al. 2020, appendix B), built from a config.

The network maps a noisy cut-out x_t (N, 64, 64, 4) in [-1, 1], its time step t (N,) and,
for a conditional model, a label (N,) to the predicted noise eps (N, 64, 64, 4). Layout,
as in Ho et al. and the paper (section 2.1, "the sole modification being the number of
groups in the GroupNormalization layer"):

- a 3x3 stem convolution to ``base_width`` channels;
- one level per entry of ``channel_mult`` (width ``base_width * mult``), each with
  ``num_res_blocks`` residual blocks (GroupNorm, swish, 3x3 conv, plus the projected time
  embedding, GroupNorm, swish, dropout, 3x3 conv), self-attention after each block whose
  resolution is in ``attention_resolutions``, and a stride-2 convolution down to the next
  level (none after the last);
- a middle of residual block, attention, residual block at the coarsest resolution;
- the mirrored up path with ``num_res_blocks + 1`` blocks per level over the concatenated
  skip connections, nearest-neighbour upsampling plus 3x3 conv between levels;
- GroupNorm, swish and a zero-initialised 3x3 conv to the image's channels, so an
  untrained network predicts eps = 0 and the initial loss is E[eps^2] = 1.

The time step enters through a sinusoidal embedding and two dense layers (swish between);
a label, when the config has ``n_labels``, through an embedding added to it.

========  =====  =================  ====  ===========  ======  ======================
config    width  channel_mult       res.  attention    groups  parameters (4 bands)
========  =====  =================  ====  ===========  ======  ======================
paper     64     (1, 2, 4, 8)       2     16, 8 px     8       63,201,540
compact   16     (1, 2, 4, 8)       1     8 px         8       3,002,196
smoke     8      (1, 2, 2)          1     (middle)     4       tests only
========  =====  =================  ====  ===========  ======  ======================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from survey.sky.bands import BANDS, CUTOUT_SIZE


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a U-Net; ``UNET_CONFIGS`` holds the named ones.

    Attributes
    ----------
    image_size : int
        Side of the square input in pixels (64: the model-input cut-out).
    channels : int
        Bands of the input and of the predicted noise (4 GLEAM bands).
    base_width : int
        Channels of the first level (Ho et al.: 128 on CIFAR-10; the paper's 64).
    channel_mult : tuple of int
        Width multiplier of each level; ``len - 1`` stride-2 steps, so ``image_size`` must
        divide by ``2 ** (len - 1)``.
    num_res_blocks : int
        Residual blocks per level on the way down (one more on the way up).
    attention_resolutions : tuple of int
        Resolutions (pixels) at which self-attention follows each residual block; the
        middle block always has attention.
    norm_groups : int
        GroupNorm groups; must divide every level's width.
    time_embedding_dim : int
        Width of the sinusoidal embedding and of both dense layers after it.
    dropout : float
        Dropout in each residual block (Ho et al.: 0.1 on CIFAR-10); the 18 training halos
        make regularisation welcome.
    n_labels : int
        0 for an unconditional network; otherwise the size of the label vocabulary (paper
        halo types or training sources) whose embedding is added to the time embedding.
    """

    image_size: int = CUTOUT_SIZE
    channels: int = len(BANDS)
    base_width: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16, 8)
    norm_groups: int = 8
    time_embedding_dim: int = 256
    dropout: float = 0.1
    n_labels: int = 0

    def __post_init__(self):
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        object.__setattr__(self, "attention_resolutions", tuple(int(r) for r in self.attention_resolutions))
        if min(self.image_size, self.channels, self.base_width, self.num_res_blocks, self.norm_groups) < 1:
            raise ValueError("image_size, channels, base_width, num_res_blocks and norm_groups must be >= 1")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult must be a non-empty tuple of positive ints, got {self.channel_mult}")
        if self.image_size % 2 ** (len(self.channel_mult) - 1):
            raise ValueError(f"image_size {self.image_size} does not halve {len(self.channel_mult) - 1} times; "
                             f"use fewer channel_mult levels")
        bad = [self.base_width * m for m in self.channel_mult if (self.base_width * m) % self.norm_groups]
        if bad:
            raise ValueError(f"norm_groups {self.norm_groups} must divide every level's width, not {bad}")
        if self.time_embedding_dim < 2 or self.time_embedding_dim % 2:
            raise ValueError(f"time_embedding_dim must be even and >= 2, got {self.time_embedding_dim}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_labels < 0:
            raise ValueError(f"n_labels must be >= 0, got {self.n_labels}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Resolution (pixels) of each level."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mult)))

    def to_dict(self) -> dict:
        """JSON-ready fields (``UNetConfig(**d)`` rebuilds it)."""
        return asdict(self)


UNET_CONFIGS: dict[str, UNetConfig] = {
    # Ho et al.'s CIFAR-10 layout at the paper's base width 64 and 64-px levels 64-32-16-8.
    "paper": UNetConfig(),
    # Sized for about an hour of training on two shared CPU cores: the paper's levels at a
    # quarter of the width, one block per level, attention only at 8 px and in the middle.
    # The 64-px level dominates the cost: base width 32 with multipliers (1, 2, 2, 4) took
    # 1.65 s per batch-16 training step on one core of this machine, this one 0.99 s.
    "compact": UNetConfig(base_width=16, channel_mult=(1, 2, 4, 8), num_res_blocks=1, attention_resolutions=(8,)),
    # Seconds, for tests: three levels of 8-16 channels, attention only in the 16-px middle.
    "smoke": UNetConfig(base_width=8, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(),
                        norm_groups=4, time_embedding_dim=32, dropout=0.0),
}
"""The named U-Net shapes (``halo-train ddpm --config NAME``)."""


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="halo_unet")
class SinusoidalEmbedding(layers.Layer):
    """Transformer-style embedding of integer time steps: [sin(t w_k), cos(t w_k)], w_k geometric from 1 to 1e-4."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        half = self.dim // 2
        self._frequencies = [math.exp(-math.log(10000.0) * k / max(half - 1, 1)) for k in range(half)]

    def call(self, t):
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * ops.convert_to_tensor([self._frequencies], "float32")
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="halo_unet")
class SelfAttention2D(layers.Layer):
    """Single-head self-attention over the pixels of a feature map, with a residual connection.

    GroupNorm, 1x1 query/key/value projections, softmax(q k^T / sqrt(C)) v over all H*W
    positions, and a zero-initialised output projection (Ho et al.), so a new block starts
    as the identity.
    """

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.norm = layers.GroupNormalization(self.groups, epsilon=1e-5, name="norm")
        self.qkv = layers.Dense(3 * channels, name="qkv")
        self.proj = layers.Dense(channels, kernel_initializer="zeros", name="proj")
        self.norm.build(input_shape)
        self.qkv.build(input_shape)
        self.proj.build(input_shape)
        self.built = True

    def call(self, x):
        shape = ops.shape(x)
        channels = x.shape[-1]
        q, k, v = ops.split(self.qkv(self.norm(x)), 3, axis=-1)
        q, k, v = (ops.reshape(a, (shape[0], -1, channels)) for a in (q, k, v))
        weights = ops.softmax(ops.einsum("bic,bjc->bij", q, k) * (channels**-0.5), axis=-1)
        out = ops.reshape(ops.einsum("bij,bjc->bic", weights, v), shape)
        return x + self.proj(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups}


def _residual_block(x, temb, width: int, config: UNetConfig, name: str):
    """Ho et al.'s residual block; the time (and label) embedding is added after the first conv."""
    h = layers.GroupNormalization(config.norm_groups, epsilon=1e-5, name=f"{name}_norm1")(x)
    h = layers.Activation("swish", name=f"{name}_act1")(h)
    h = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    t = layers.Dense(width, name=f"{name}_temb")(layers.Activation("swish", name=f"{name}_act_t")(temb))
    h = layers.Add(name=f"{name}_add_t")([h, layers.Reshape((1, 1, width), name=f"{name}_temb_2d")(t)])
    h = layers.GroupNormalization(config.norm_groups, epsilon=1e-5, name=f"{name}_norm2")(h)
    h = layers.Activation("swish", name=f"{name}_act2")(h)
    if config.dropout:
        h = layers.Dropout(config.dropout, name=f"{name}_dropout")(h)
    h = layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2")(h)
    if x.shape[-1] != width:
        x = layers.Conv2D(width, 1, name=f"{name}_shortcut")(x)
    return layers.Add(name=f"{name}_out")([x, h])


def build_unet(config: UNetConfig | str = "paper", *, seed: int = 0) -> keras.Model:
    """Build the noise-prediction U-Net.

    Parameters
    ----------
    config : UNetConfig or str
        A config, or the name of one in ``UNET_CONFIGS``.
    seed : int
        Seeds the weight initialisation: two builds with one seed have equal weights.

    Returns
    -------
    keras.Model
        Inputs ``[image (N, S, S, C) float32, time (N,) int32]`` plus ``label (N,) int32``
        when ``config.n_labels``; output the predicted noise, shape of ``image``.
    """
    if isinstance(config, str):
        if config not in UNET_CONFIGS:
            raise ValueError(f"unknown U-Net config {config!r}; choose one of {', '.join(UNET_CONFIGS)}")
        config = UNET_CONFIGS[config]
    keras.utils.set_random_seed(seed)
    image = keras.Input((config.image_size, config.image_size, config.channels), name="image")
    time = keras.Input((), dtype="int32", name="time")
    inputs = [image, time]

    # Time (and label) embedding: sinusoid -> dense -> swish -> dense.
    temb = SinusoidalEmbedding(config.time_embedding_dim, name="time_sinusoid")(time)
    temb = layers.Dense(config.time_embedding_dim, activation="swish", name="time_dense1")(temb)
    temb = layers.Dense(config.time_embedding_dim, name="time_dense2")(temb)
    if config.n_labels:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        temb = layers.Add(name="time_plus_label")(
            [temb, layers.Embedding(config.n_labels, config.time_embedding_dim, name="label_embedding")(label)])

    # Down path: every output is kept for the skip connections.
    x = layers.Conv2D(config.base_width, 3, padding="same", name="stem")(image)
    skips = [x]
    levels = list(zip(config.channel_mult, config.resolutions))
    for level, (mult, resolution) in enumerate(levels):
        for block in range(config.num_res_blocks):
            x = _residual_block(x, temb, config.base_width * mult, config, name=f"down{level}_res{block}")
            if resolution in config.attention_resolutions:
                x = SelfAttention2D(config.norm_groups, name=f"down{level}_attn{block}")(x)
            skips.append(x)
        if level < len(levels) - 1:
            x = layers.Conv2D(x.shape[-1], 3, strides=2, padding="same", name=f"down{level}_downsample")(x)
            skips.append(x)

    # Middle, at the coarsest resolution.
    width = x.shape[-1]
    x = _residual_block(x, temb, width, config, name="mid_res0")
    x = SelfAttention2D(config.norm_groups, name="mid_attn")(x)
    x = _residual_block(x, temb, width, config, name="mid_res1")

    # Up path: one more block per level than on the way down, each over a skip.
    for level, (mult, resolution) in reversed(list(enumerate(levels))):
        for block in range(config.num_res_blocks + 1):
            x = layers.Concatenate(name=f"up{level}_skip{block}")([x, skips.pop()])
            x = _residual_block(x, temb, config.base_width * mult, config, name=f"up{level}_res{block}")
            if resolution in config.attention_resolutions:
                x = SelfAttention2D(config.norm_groups, name=f"up{level}_attn{block}")(x)
        if level > 0:
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_upsample")(x)
            x = layers.Conv2D(x.shape[-1], 3, padding="same", name=f"up{level}_upsample_conv")(x)

    x = layers.GroupNormalization(config.norm_groups, epsilon=1e-5, name="out_norm")(x)
    x = layers.Activation("swish", name="out_act")(x)
    eps = layers.Conv2D(config.channels, 3, padding="same", kernel_initializer="zeros", name="eps")(x)
    return keras.Model(inputs, eps, name="unet")


def parameter_count(config: UNetConfig | str) -> int:
    """Trainable parameters of ``build_unet(config)`` (builds the model)."""
    return int(sum(math.prod(w.shape) for w in build_unet(config).trainable_weights))


__all__ = ["UNetConfig", "UNET_CONFIGS", "build_unet", "parameter_count", "SinusoidalEmbedding", "SelfAttention2D"]
