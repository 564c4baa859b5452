"""The paper's three halo classifiers (appendix A) as Keras 3 functional models.

Every model takes a batch of normalised cut-outs named ``"image"``, shape (N, 64, 64, 4)
float32 (bands in ``survey.sky.bands.BANDS`` order), and returns softmax probabilities over two
classes named ``"probs"`` (column 1 = halo). Those names are the ONNX contract the survey
checks (``survey.model.modelcard.INPUT_NAME`` / ``OUTPUT_NAME``).

=========  ==========  =================================  ==========================
``arch``   paper name  module                             paper table
=========  ==========  =================================  ==========================
cnn        I           ``training.models.cnn``            A3 (LeNet-style CNN)
attention  A           ``training.models.attention``      A4 (CNN + self-attention)
dense      D           ``training.models.dense``          A5 (fully connected)
=========  ==========  =================================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from survey.sky.bands import BANDS, CUTOUT_SIZE

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters of a classifier build; the defaults are the paper's (appendix A).

    Attributes
    ----------
    input_shape : tuple of int
        (height, width, bands) of one cut-out.
    n_classes : int
        Softmax outputs; 2 (0 = non-halo, 1 = halo).
    seed : int
        Seeds the weight initialisation (and the attention model's noise layer), so two
        builds with the same seed have identical weights.
    noise_stddev : float
        Standard deviation of the Gaussian-noise layer at the attention model's input, in
        normalised units ([0, 1] after min-max). The paper (section 5.5.2) names the layer
        but not its width; 0.01 is our choice: about 1 % of the full range. Active only in
        training; the exported graph has no noise.
    num_heads, key_dim : int
        Multi-head attention shape; num_heads * key_dim = 192 reproduces table A4's
        117,344 parameters (see ``training.models.attention``).
    attention_dim : int
        Output features per token of the attention layer (table A4: 32).
    """

    input_shape: tuple[int, int, int] = (CUTOUT_SIZE, CUTOUT_SIZE, len(BANDS))
    n_classes: int = 2
    seed: int = 0
    noise_stddev: float = 0.01
    num_heads: int = 4
    key_dim: int = 48
    attention_dim: int = 32

    def __post_init__(self):
        if len(self.input_shape) != 3 or any(int(n) < 1 for n in self.input_shape):
            raise ValueError(f"input_shape must be (height, width, bands) > 0, got {self.input_shape}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        if self.noise_stddev < 0:
            raise ValueError(f"noise_stddev must be >= 0, got {self.noise_stddev}")
        if min(self.num_heads, self.key_dim, self.attention_dim) < 1:
            raise ValueError("num_heads, key_dim and attention_dim must be >= 1")


# Imported after ClassifierConfig is defined: the builders only use it for annotations.
from training.models.attention import build_attention  # noqa: E402
from training.models.cnn import build_cnn  # noqa: E402
from training.models.dense import build_dense  # noqa: E402

BUILDERS: dict[str, Callable[[ClassifierConfig], "keras.Model"]] = {
    "cnn": build_cnn,
    "attention": build_attention,
    "dense": build_dense,
}
"""Builder of each architecture; its keys are ``survey.model.modelcard.ARCHITECTURES`` (a test checks)."""


def build_classifier(arch: str, config: ClassifierConfig | None = None) -> "keras.Model":
    """Build the classifier ``arch`` (``"cnn"``, ``"attention"`` or ``"dense"``).

    The returned model is uncompiled; ``model.name`` is ``arch``.
    """
    if arch not in BUILDERS:  # same names as survey.model.modelcard.ARCHITECTURES
        raise ValueError(f"unknown classifier architecture {arch!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[arch](config or ClassifierConfig())


__all__ = ["ClassifierConfig", "build_classifier", "build_cnn", "build_attention", "build_dense", "BUILDERS"]
