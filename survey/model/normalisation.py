"""The classifier's input scaling: fitted once on training cut-outs, stored in the card, applied unchanged.

Three kinds. Two are the paper's (appendix A): the classifier's global min-max to [0, 1],
and the generative models' signed-log scaling, min-max, then [-1, 1] (also used by
classifiers trained with ``--normalisation log``). The third, ``snr-log-sym``, first divides
each band by that band's own noise sigma in the field it was cut from, then applies the
signed log in units of the clip level: the GLEAM fields' noise differs by up to ten times
between fields (the northern ones are noisiest), so in Jy/beam the clipped noise of one
field looks like emission in another, while in noise units the clip sits at 3 in every
field and band. The builder knows each band's sigma (``survey.model.noise``) and passes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

ArrayF = npt.NDArray[np.floating]

NormKind = Literal["minmax", "log-minmax-sym", "snr-log-sym"]

KINDS: tuple[str, ...] = ("minmax", "log-minmax-sym", "snr-log-sym")
"""The normalisation kinds a card may name."""

SNR_LOG_SCALE = 3.0
"""``snr-log-sym``'s log scale in noise sigmas: the clip level, so a surviving noise pixel maps near log10(2)."""


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
        if self.kind not in KINDS:
            raise ValueError(f"normalisation kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.max > self.min:
            raise ValueError(f"normalisation needs max > min, got min={self.min}, max={self.max}")
        if self.kind != "minmax" and not (self.log_scale and self.log_scale > 0):
            raise ValueError(f"{self.kind} normalisation needs a positive log_scale")

    @property
    def needs_noise(self) -> bool:
        """Whether ``apply`` and ``invert`` need each band's noise sigma (``snr-log-sym``)."""
        return self.kind == "snr-log-sym"

    @staticmethod
    def _noise(noise: ArrayF | float | None) -> np.ndarray:
        if noise is None:
            raise ValueError("snr-log-sym normalisation needs each band's noise sigma (noise=...)")
        return np.asarray(noise, dtype=np.float32)

    def _in_noise_units(self, x: ArrayF, noise: ArrayF | float | None) -> np.ndarray:
        return np.asarray(x, dtype=np.float32) / self._noise(noise)

    @cached_property  # a hash of the parameters, asked for every batch: computed once (the instance is frozen)
    def id(self) -> str:
        """Short content hash: a model card and an ONNX file agree on it."""
        payload = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    def apply(self, x: ArrayF, *, noise: ArrayF | float | None = None) -> np.ndarray:
        """Normalise clipped pixels (any shape) with the stored parameters.

        Parameters
        ----------
        x : array_like
            Clipped pixels, Jy/beam.
        noise : array_like or float, optional
            ``snr-log-sym`` only: each pixel's band noise sigma (Jy/beam), broadcast against
            ``x`` (a scalar for one band's field, (N, 1, 1, 4) for channels-last cut-outs).

        Returns
        -------
        numpy.ndarray
            float32, the model's input scale.
        """
        if self.kind == "log-minmax-sym":
            x = log_scale(x, scale=self.log_scale)
        elif self.kind == "snr-log-sym":
            x = log_scale(self._in_noise_units(x, noise), scale=self.log_scale)
        unit = (np.asarray(x, dtype=np.float32) - np.float32(self.min)) / np.float32(self.max - self.min)
        return unit if self.kind == "minmax" else 2.0 * unit - 1.0

    @cached_property
    def zero_level(self) -> np.float32:
        """What a zero pixel (clipped away, or outside the image) becomes: ``apply(0)``, whatever the noise."""
        return np.float32(self.apply(np.zeros(1, np.float32), noise=1.0)[0])

    def invert(self, y: ArrayF, *, noise: ArrayF | float | None = None) -> np.ndarray:
        """Map normalised values back to Jy/beam (generated images, survey cut-outs and peaks).

        Exact zeros survive the round trip: ``zero_level`` maps back to 0 exactly, every
        other value to within float32 round-off. ``noise`` as for ``apply``.
        """
        y = np.asarray(y, dtype=np.float32)
        unit = y if self.kind == "minmax" else (y + 1.0) / 2.0
        x = unit * np.float32(self.max - self.min) + np.float32(self.min)
        x = x if self.kind == "minmax" else inverse_log_scale(x, scale=self.log_scale)
        if self.kind == "snr-log-sym":
            x = x * self._noise(noise)
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
    def fit(cls, cutouts: ArrayF, *, kind: NormKind = "minmax", log_scale_value: float | None = None,
            noise: ArrayF | None = None):
        """Fit the global min and max over all training cut-outs (all images, all bands).

        Parameters
        ----------
        cutouts : numpy.ndarray
            Clipped training cut-outs in Jy/beam, any shape; every value counts.
        kind : {"minmax", "log-minmax-sym", "snr-log-sym"}
            Min-max to [0, 1]; signed-log scaling then min-max to [-1, 1]; the same in units
            of each band's noise.
        log_scale_value : float, optional
            The ``scale`` of ``log_scale``: Jy/beam for ``"log-minmax-sym"`` (needed, positive),
            noise sigmas for ``"snr-log-sym"`` (default ``SNR_LOG_SCALE``); ``"minmax"``
            stores it (it enters ``id``) but does not apply it.
        noise : numpy.ndarray, optional
            ``"snr-log-sym"`` only: each cut-out's band noise, broadcast against ``cutouts``.

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
        if kind == "snr-log-sym":
            log_scale_value = SNR_LOG_SCALE if log_scale_value is None else log_scale_value
            x = log_scale(x / cls._noise(noise), scale=log_scale_value)
        elif kind == "log-minmax-sym":
            if not (log_scale_value and log_scale_value > 0):
                raise ValueError(f"log-minmax-sym normalisation needs a positive log_scale_value, got {log_scale_value!r}")
            x = log_scale(x, scale=log_scale_value)
        return cls(kind, float(np.min(x)), float(np.max(x)), log_scale_value)
