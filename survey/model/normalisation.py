"""The classifier's input scaling: fitted once on training cut-outs, stored in the card, applied unchanged.

Two kinds (paper appendix A): the classifier's global min-max to [0, 1], and the
generative models' signed-log scaling, min-max, then [-1, 1] (also used by classifiers
trained with ``--normalisation log``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

ArrayF = npt.NDArray[np.floating]

NormKind = Literal["minmax", "log-minmax-sym"]


def log_scale(x: ArrayF, *, scale: float) -> np.ndarray:
    """Signed log scaling (generative models, log-scaled classifiers): sign(x) * log10(1 + |x| / scale).

    The paper's formula did not survive in our copy of appendix A; this form keeps the
    zeros of clipped images at zero and both signs of the surviving pixels, and compresses
    bright point sources the way the paper's log-scaled plots show. ``scale`` is fitted
    once on training data (the median clip threshold) and stored with the model.
    """
    x = np.asarray(x, dtype=np.float32)
    # The classifier applies this to every survey window; clipped images are mostly exact
    # zeros, which map to zero, so only the surviving pixels pay for the logarithm.
    out = np.zeros_like(x)
    kept = x != 0
    values = x[kept]
    out[kept] = np.copysign(np.log1p(np.abs(values) / np.float32(scale)) * np.float32(1 / np.log(10)), values)
    return out


def inverse_log_scale(y: ArrayF, *, scale: float) -> np.ndarray:
    """Inverse of ``log_scale`` (generated samples back to Jy/beam)."""
    y = np.asarray(y, dtype=np.float64)
    return (np.sign(y) * (10.0 ** np.abs(y) - 1.0) * scale).astype(np.float32)


@dataclass(frozen=True)
class Normalisation:
    """Global min-max normalisation, fitted once on training cut-outs and stored with a model.

    ``kind="minmax"`` maps [min, max] to [0, 1] (the paper's classifier input);
    ``kind="log-minmax-sym"`` applies ``log_scale`` first and maps to [-1, 1] (the
    generative models, and classifiers trained with ``--normalisation log``). ``min`` and
    ``max`` are single numbers over all training images and bands (paper appendix A), and are
    never refitted per image: a survey image brighter than anything in training maps above 1.
    """

    kind: NormKind
    min: float
    max: float
    log_scale: float | None = None

    def __post_init__(self):
        if not self.max > self.min:
            raise ValueError(f"normalisation needs max > min, got min={self.min}, max={self.max}")
        if self.kind == "log-minmax-sym" and not (self.log_scale and self.log_scale > 0):
            raise ValueError("log-minmax-sym normalisation needs a positive log_scale")

    @property
    def id(self) -> str:
        """Short content hash: a model card and an ONNX file agree on it."""
        payload = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    def apply(self, x: ArrayF) -> np.ndarray:
        """Normalise clipped pixels (any shape) with the stored parameters."""
        if self.kind == "log-minmax-sym":
            x = log_scale(x, scale=self.log_scale)
        unit = (np.asarray(x, dtype=np.float32) - np.float32(self.min)) / np.float32(self.max - self.min)
        return unit if self.kind == "minmax" else 2.0 * unit - 1.0

    @property
    def zero_level(self) -> np.float32:
        """What a zero pixel (clipped away, or outside the image) becomes: ``apply(0)``."""
        return np.float32(self.apply(np.zeros(1, np.float32))[0])

    def invert(self, y: ArrayF) -> np.ndarray:
        """Map normalised values back to Jy/beam (generated images, survey cut-outs and peaks).

        Exact zeros survive the round trip: ``zero_level`` maps back to 0 exactly, every
        other value to within float32 round-off.
        """
        y = np.asarray(y, dtype=np.float32)
        unit = y if self.kind == "minmax" else (y + 1.0) / 2.0
        x = unit * np.float32(self.max - self.min) + np.float32(self.min)
        x = x if self.kind == "minmax" else inverse_log_scale(x, scale=self.log_scale)
        return np.where(y == self.zero_level, np.float32(0.0), x).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-ready parameters, with the id, for model cards."""
        return {**asdict(self), "id": self.id}

    @classmethod
    def from_dict(cls, data: dict) -> "Normalisation":
        """Rebuild from ``to_dict`` output, checking the stored id."""
        norm = cls(data["kind"], float(data["min"]), float(data["max"]), data.get("log_scale"))
        if "id" in data and data["id"] != norm.id:
            raise ValueError(f"normalisation id {data['id']} does not match its parameters ({norm.id})")
        return norm

    @classmethod
    def fit(cls, cutouts: ArrayF, *, kind: NormKind = "minmax", log_scale_value: float | None = None):
        """Fit the global min and max over all training cut-outs (all images, all bands).

        Parameters
        ----------
        cutouts : numpy.ndarray
            Clipped training cut-outs in Jy/beam, any shape; every value counts.
        kind : {"minmax", "log-minmax-sym"}
            Min-max to [0, 1], or signed-log scaling then min-max to [-1, 1].
        log_scale_value : float, optional
            The ``scale`` of ``log_scale`` in Jy/beam; needed (positive) for
            ``"log-minmax-sym"``; ``"minmax"`` stores it (it enters ``id``) but does not apply it.

        Returns
        -------
        Normalisation
            The fitted parameters.

        Raises
        ------
        ValueError
            All values are equal (max must exceed min), or ``"log-minmax-sym"`` without a
            positive ``log_scale_value``.
        """
        x = np.asarray(cutouts, dtype=np.float32)
        if kind == "log-minmax-sym":
            if not (log_scale_value and log_scale_value > 0):
                raise ValueError(f"log-minmax-sym normalisation needs a positive log_scale_value, got {log_scale_value!r}")
            x = log_scale(x, scale=log_scale_value)
        return cls(kind, float(np.min(x)), float(np.max(x)), log_scale_value)
