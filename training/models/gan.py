"""The paper's conditional WGAN-GP generator and critic (appendix tables A2 and A1), built from a config.

Generator (table A2, 22,079,633 parameters for one band and 10 labels):

====  ==========  ======  ======  =====  =====  ==========  ==========
 #    layer       kernel  stride  in     out    activation  parameters
====  ==========  ======  ======  =====  =====  ==========  ==========
 1    Embedding   -       -       1      64     -           640
 2    Dense 1     -       -       64     16     -           1,040
 3    Dense 2     -       -       128    4096   -           528,384
 4    ConvT1      8       2       257    256    ReLU        4,210,944
 5    ConvT2      1       2       256    128    ReLU        32,896
 6    ConvT3      8       2       128    64     ReLU        524,352
 7    ConvT4      1       2       64     1      ReLU        65
 8    Dense 3     -       -       4096   4096   Tanh        16,781,312
====  ==========  ======  ======  =====  =====  ==========  ==========

The label embedding goes through Dense 1 to a 4x4 plane; the 128-dim latent through
Dense 2 to 4x4x256; concatenated (257 channels) they are upsampled 4 -> 64 px by the
transposed convolutions, and Dense 3 (tanh) maps the flattened 64x64 plane to the image.
For four bands, ConvT4 has 4 output channels and Dense 3 is applied to each band's plane
with shared weights: the table's 16.8 M parameters, not the 268 M of a 16384 x 16384 layer.

Critic (table A1, 6,365,793 parameters for one band and 10 labels once conv 4 is 1x1):

====  ==========  ======  ======  =====  =====  ==========  ==========
 #    layer       kernel  stride  in     out    activation  parameters
====  ==========  ======  ======  =====  =====  ==========  ==========
 1    Embedding   -       -       1      64     -           640
 2    Dense 1     -       -       64     512    -           33,280
 3    Conv1       8       2       1      32     LeakyReLU   2,080
 4    Conv2       1       2       32     64     LeakyReLU   2,112
 5    Conv3       8       2       64     128    LeakyReLU   524,416
 6    Conv4       1       2       128    256    LeakyReLU   33,024
 7    Dense 2     -       -       4096   1024   (see below) 4,195,328
 8    Dense 3     -       -       1536   1024   (see below) 1,573,888
 9    Dense 4     -       -       1024   1      linear      1,025
====  ==========  ======  ======  =====  =====  ==========  ==========

Deviations from the table, each for a reason:

- Conv4: the table prints 524,416 parameters (Conv3's count again) for a layer it gives a
  1x1 kernel; a 1x1 conv has 33,024, and only that gives the table's total 6,365,793.
- Dense 4: the table says sigmoid. A Wasserstein critic's score is unbounded (the paper
  says so itself, section 2.2); a sigmoid would saturate and starve the gradient penalty,
  so the output is linear.
- Dense 2 and Dense 3 get LeakyReLU(0.2). With the table's linear Dense 2 -> Dense 3 ->
  Dense 4, the score would be f(image) + g(label): the label would add a constant that
  cancels between real and generated images of one label, so the critic could not use
  the conditioning at all. Parameter counts are unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers

from survey.sky.bands import BANDS, CUTOUT_SIZE


@dataclass(frozen=True)
class GANConfig:
    """Shape of the generator and critic; ``GAN_CONFIGS`` holds the named ones.

    Attributes
    ----------
    image_size : int
        Side of the images; the four stride-2 layers need ``16 * base`` with base 4 (64 px).
    channels : int
        Bands (4; the paper's single-frequency study had 1).
    n_labels : int
        Size of the label vocabulary (paper: 10 sources; ours: halo types or sources).
    latent_dim : int
        Size of the latent vector z (table A2: 128).
    embed_dim : int
        Label embedding width (64).
    gen_widths : tuple of int
        Channels of the generator's seed plane and its first three transposed convolutions
        (table A2: 256, 256, 128, 64).
    gen_kernels : tuple of int
        Kernels of ConvT1..ConvT4 (table A2: 8, 1, 8, 1).
    final_dense : bool
        Table A2's Dense 3 (tanh over each band's whole plane). Without it (``smoke``) the
        last transposed convolution has tanh itself.
    critic_widths : tuple of int
        Channels of Conv1..Conv4 (table A1: 32, 64, 128, 256).
    critic_kernels : tuple of int
        Kernels of Conv1..Conv4 (table A1: 8, 1, 8, 1).
    critic_dense : int
        Width of Dense 2 and Dense 3 (1024); Dense 1 (label) is half of it (512).
    """

    image_size: int = CUTOUT_SIZE
    channels: int = len(BANDS)
    n_labels: int = 1
    latent_dim: int = 128
    embed_dim: int = 64
    gen_widths: tuple[int, ...] = (256, 256, 128, 64)
    gen_kernels: tuple[int, ...] = (8, 1, 8, 1)
    final_dense: bool = True
    critic_widths: tuple[int, ...] = (32, 64, 128, 256)
    critic_kernels: tuple[int, ...] = (8, 1, 8, 1)
    critic_dense: int = 1024

    def __post_init__(self):
        for name in ("gen_widths", "gen_kernels", "critic_widths", "critic_kernels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (four stride-2 layers), got {self.image_size}")
        if len(self.gen_widths) != 4 or len(self.gen_kernels) != 4 or len(self.critic_widths) != 4 or len(self.critic_kernels) != 4:
            raise ValueError("gen_widths, gen_kernels, critic_widths and critic_kernels need four entries each")
        if min(self.channels, self.n_labels, self.latent_dim, self.embed_dim, self.critic_dense,
               *self.gen_widths, *self.gen_kernels, *self.critic_widths, *self.critic_kernels) < 1:
            raise ValueError("every size in a GANConfig must be >= 1")

    @property
    def seed_size(self) -> int:
        """Side of the generator's first plane (4 for 64-px images)."""
        return self.image_size // 16

    def to_dict(self) -> dict:
        """JSON-ready fields (``GANConfig(**d)`` rebuilds it)."""
        return asdict(self)


GAN_CONFIGS: dict[str, GANConfig] = {
    "paper": GANConfig(),
    # For CPUs: table A1/A2's layers and kernels at half the widths, without Dense 3 (a
    # 4096 x 4096 map, 16.8 M of the generator's weights), a quarter of the critic's dense width.
    "compact": GANConfig(gen_widths=(128, 128, 64, 32), final_dense=False, critic_widths=(16, 32, 64, 128),
                         critic_dense=256),
    # Seconds, for tests: narrow layers, 4x4 kernels, no 4096 x 4096 dense.
    "smoke": GANConfig(latent_dim=16, embed_dim=8, gen_widths=(16, 16, 8, 8), gen_kernels=(4, 4, 4, 4), final_dense=False,
                       critic_widths=(8, 8, 16, 16), critic_kernels=(4, 4, 4, 4), critic_dense=32),
}
"""The named GAN shapes (``halo-train wgan --config NAME``)."""


def _resolve(config: GANConfig | str, n_labels: int | None) -> GANConfig:
    if isinstance(config, str):
        if config not in GAN_CONFIGS:
            raise ValueError(f"unknown GAN config {config!r}; choose one of {', '.join(GAN_CONFIGS)}")
        config = GAN_CONFIGS[config]
    if n_labels is not None:
        config = GANConfig(**{**config.to_dict(), "n_labels": n_labels})
    return config


def build_generator(config: GANConfig | str = "paper", *, n_labels: int | None = None, seed: int = 0) -> keras.Model:
    """The conditional generator of table A2.

    Parameters
    ----------
    config : GANConfig or str
        A config or the name of one in ``GAN_CONFIGS``.
    n_labels : int, optional
        Overrides ``config.n_labels``.
    seed : int
        Seeds the weight initialisation.

    Returns
    -------
    keras.Model
        Inputs ``[z (N, latent_dim), label (N,) int32]``; output (N, S, S, C) in (-1, 1).
    """
    config = _resolve(config, n_labels)
    keras.utils.set_random_seed(seed)
    s, c = config.seed_size, config.channels
    z = keras.Input((config.latent_dim,), name="z")
    label = keras.Input((), dtype="int32", name="label")
    # 1-2. The label as one extra s x s plane.
    plane = layers.Embedding(config.n_labels, config.embed_dim, name="label_embedding")(label)
    plane = layers.Reshape((s, s, 1), name="label_plane")(layers.Dense(s * s, name="label_dense")(plane))
    # 3. The latent as s x s x width.
    x = layers.Reshape((s, s, config.gen_widths[0]), name="seed_plane")(
        layers.Dense(s * s * config.gen_widths[0], name="latent_dense")(z))
    x = layers.Concatenate(name="with_label")([x, plane])
    # 4-7. Four transposed convolutions, stride 2: s -> 16 s.
    outs = (*config.gen_widths[1:], c)
    for k, (width, kernel) in enumerate(zip(outs, config.gen_kernels), start=1):
        last = k == 4
        activation = "tanh" if last and not config.final_dense else "relu"
        x = layers.Conv2DTranspose(width, kernel, strides=2, padding="same", activation=activation, name=f"convt{k}")(x)
    if config.final_dense:
        # 8. Dense 3 over each band's flattened plane, weights shared between bands.
        size = config.image_size
        x = layers.Permute((3, 1, 2), name="bands_first")(x)
        x = layers.Reshape((c, size * size), name="flatten_planes")(x)
        x = layers.Dense(size * size, activation="tanh", name="plane_dense")(x)
        x = layers.Reshape((c, size, size), name="planes")(x)
        x = layers.Permute((2, 3, 1), name="image")(x)
    return keras.Model([z, label], x, name="generator")


def build_critic(config: GANConfig | str = "paper", *, n_labels: int | None = None, seed: int = 0) -> keras.Model:
    """The conditional critic of table A1 (with the deviations of the module docstring).

    Parameters
    ----------
    config : GANConfig or str
        A config or the name of one in ``GAN_CONFIGS``.
    n_labels : int, optional
        Overrides ``config.n_labels``.
    seed : int
        Seeds the weight initialisation.

    Returns
    -------
    keras.Model
        Inputs ``[image (N, S, S, C), label (N,) int32]``; output (N, 1) unbounded scores.
    """
    config = _resolve(config, n_labels)
    keras.utils.set_random_seed(seed)
    image = keras.Input((config.image_size, config.image_size, config.channels), name="image")
    label = keras.Input((), dtype="int32", name="label")
    # 1-2. Label features.
    label_features = layers.Dense(config.critic_dense // 2, name="label_dense")(
        layers.Embedding(config.n_labels, config.embed_dim, name="label_embedding")(label))
    # 3-6. Four stride-2 convolutions, LeakyReLU; no normalisation (the gradient penalty is per sample).
    x = image
    for k, (width, kernel) in enumerate(zip(config.critic_widths, config.critic_kernels), start=1):
        x = layers.Conv2D(width, kernel, strides=2, padding="same", name=f"conv{k}")(x)
        x = layers.LeakyReLU(0.2, name=f"conv{k}_act")(x)
    x = layers.Dense(config.critic_dense, name="image_dense")(layers.Flatten(name="flatten")(x))
    x = layers.LeakyReLU(0.2, name="image_dense_act")(x)
    # 7-9. Joint head.
    x = layers.Concatenate(name="with_label")([x, label_features])
    x = layers.LeakyReLU(0.2, name="joint_dense_act")(layers.Dense(config.critic_dense, name="joint_dense")(x))
    score = layers.Dense(1, name="score")(x)
    return keras.Model([image, label], score, name="critic")


__all__ = ["GANConfig", "GAN_CONFIGS", "build_generator", "build_critic"]
