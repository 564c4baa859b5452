"""Reference inputs and the probabilities a model gave them when it was exported: a check on its weights.

The card's sha256 proves that an ONNX file is the one the card describes, but not that the
weights in it are the trained ones: a file whose weights were damaged (or replaced) and
whose card was then regenerated with the new sha256 passes every other check and scores the
whole sky with garbage. So the card also stores what the model answered, at export, on a
few deterministic inputs (``ReferenceOutputs``), and ``survey.model.infer`` checks the
answers again whenever it loads the model.

The inputs are synthetic clipped cut-outs built from a counter-based hash (SplitMix64),
not from numpy's random generators, whose streams may change between numpy versions: a
noise field at each band's nominal GLEAM rms, point sources, and on every other input a
steep-spectrum diffuse blob, clipped at 3 sigma and normalised with the card's own
normalisation. The pool holds ``REFERENCE_POOL`` such inputs and the card keeps the
``REFERENCE_COUNT`` whose probabilities are least saturated (closest to 0.5), where a
change of the weights shows most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from survey.model.normalisation import Normalisation
from survey.sky.bands import BANDS, CUTOUT_SIZE

REFERENCE_RECIPE = "splitmix64-gleam-v1"
"""Name of the recipe that builds the inputs (``reference_inputs``); a card naming another is not checked."""

REFERENCE_POOL = 32
"""Candidate inputs built when a reference is made."""

REFERENCE_COUNT = 6
"""Inputs the card keeps: the least saturated of the pool."""

REFERENCE_ATOL = 1e-2
"""Largest |probability now - probability at export| accepted. Far above float32 round-off and
the differences between ONNX Runtime's CPU and CUDA kernels (TF32 included) on these
unsaturated inputs, far below what damaged weights change."""

NOMINAL_RMS_JY_AT_200MHZ = 0.010
"""GLEAM rms at 200 MHz (data README), scaled as 1/nu for the other bands."""

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(counter: np.ndarray) -> np.ndarray:
    """SplitMix64 of each uint64 counter: a fixed, platform-independent hash."""
    with np.errstate(over="ignore"):
        z = (counter + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _uniform(stream: int, count: int) -> np.ndarray:
    """``count`` doubles in (0, 1) from stream ``stream`` (53 bits of each hash)."""
    counter = (np.uint64(stream) << np.uint64(32)) + np.arange(count, dtype=np.uint64)
    return ((_splitmix64(counter) >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _normal(stream: int, count: int) -> np.ndarray:
    """``count`` standard normal values (Box-Muller on two uniform streams)."""
    u1, u2 = _uniform(2 * stream, count), _uniform(2 * stream + 1, count)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def nominal_rms_jy() -> dict[str, float]:
    """Each band's nominal GLEAM rms in Jy/beam (10 mJy/beam at 200 MHz, scaled as 1/nu)."""
    return {b.name: NOMINAL_RMS_JY_AT_200MHZ * 200.0 / b.centre_mhz for b in BANDS}


def reference_cutout(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Input ``index`` of the pool as clipped Jy/beam band planes, and each band's noise sigma.

    Parameters
    ----------
    index : int
        Which input, 0 or more; the same index gives the same pixels on every machine
        (up to the last bit of ``log`` and ``cos``).

    Returns
    -------
    planes : numpy.ndarray
        (4, 64, 64) float32, bands in ``BANDS`` order, clipped at 3 sigma.
    sigma : numpy.ndarray
        (4,) float32 noise sigma of each band, Jy/beam.
    """
    size = CUTOUT_SIZE
    base = 1000 * (index + 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    rms = nominal_rms_jy()
    u = _uniform(base, 16)
    planes, sigmas = [], []
    for b, band in enumerate(BANDS):
        sigma = rms[band.name]
        image = _normal(base + 1 + b, size * size).reshape(size, size) * sigma
        beam_px = (2.0 * 200.0 / band.centre_mhz) / (band.pixel_arcsec / 60.0) / 2.3548  # ~2' at 200 MHz
        for k in range(1 + index % 3):  # point sources, spectral index -0.8
            x0, y0 = 8 + 48 * u[2 * k], 8 + 48 * u[2 * k + 1]
            flux = rms["170-231"] * (5.0 + 60.0 * u[8 + k]) * (band.centre_mhz / 200.0) ** -0.8
            image += flux * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / beam_px**2)
        if index % 2 == 0:  # a diffuse, steep-spectrum blob near the centre, 3-6' in radius
            radius_px = (3.0 + 3.0 * u[12]) / (band.pixel_arcsec / 60.0)
            amplitude = rms["170-231"] * (2.0 + 6.0 * u[13]) * (band.centre_mhz / 200.0) ** -1.3
            cx, cy = 31.5 + 6 * (u[14] - 0.5), 31.5 + 6 * (u[15] - 0.5)
            image += amplitude * np.exp(-np.hypot(xx - cx, yy - cy) / radius_px)
        image[np.abs(image) < 3.0 * sigma] = 0.0
        planes.append(image)
        sigmas.append(sigma)
    return np.asarray(planes, np.float32), np.asarray(sigmas, np.float32)


def reference_inputs(indices: Sequence[int], normalisation: Normalisation) -> np.ndarray:
    """The model inputs of ``indices``: ``reference_cutout`` normalised with ``normalisation``.

    Parameters
    ----------
    indices : sequence of int
        Inputs of the pool.
    normalisation : Normalisation
        The card's; ``snr-log-sym`` gets each band's sigma.

    Returns
    -------
    numpy.ndarray
        (N, 4, 64, 64) float32 band planes, the card's input layout.
    """
    out = np.empty((len(indices), len(BANDS), CUTOUT_SIZE, CUTOUT_SIZE), np.float32)
    for row, index in enumerate(indices):
        planes, sigma = reference_cutout(int(index))
        out[row] = normalisation.apply(planes, noise=sigma[:, None, None])
    return out


@dataclass(frozen=True)
class ReferenceOutputs:
    """What a model answered at export on a few reference inputs (stored in its card).

    Attributes
    ----------
    recipe : str
        How the inputs are built (``REFERENCE_RECIPE``).
    indices : tuple of int
        The inputs of the pool (``reference_inputs``).
    probabilities : tuple of float
        The halo probability the model gave each of them.
    atol : float
        Largest difference accepted when the model is loaded again.
    """

    recipe: str
    indices: tuple[int, ...]
    probabilities: tuple[float, ...]
    atol: float = REFERENCE_ATOL

    def differences(self, predict: Callable[[np.ndarray], np.ndarray], normalisation: Normalisation) -> np.ndarray:
        """|probability now - stored probability| of each reference input, ``predict`` being the model."""
        now = np.asarray(predict(reference_inputs(self.indices, normalisation)), np.float64)
        return np.abs(now - np.asarray(self.probabilities, np.float64))


def make_reference(predict: Callable[[np.ndarray], np.ndarray], normalisation: Normalisation, *,
                   pool: int = REFERENCE_POOL, count: int = REFERENCE_COUNT) -> ReferenceOutputs:
    """The reference of a model: its probabilities on the ``count`` least saturated inputs of the pool.

    Parameters
    ----------
    predict : callable
        The model: (N, 4, 64, 64) float32 inputs to (N,) halo probabilities.
    normalisation : Normalisation
        The card's normalisation, which builds the inputs.
    pool : int
        Inputs to choose from.
    count : int
        Inputs to keep.

    Returns
    -------
    ReferenceOutputs
        Indices in ascending order and their probabilities (rounded to 1e-7).
    """
    probabilities = np.asarray(predict(reference_inputs(range(pool), normalisation)), np.float64)
    chosen = sorted(int(i) for i in np.argsort(np.abs(probabilities - 0.5), kind="stable")[:count])
    return ReferenceOutputs(REFERENCE_RECIPE, tuple(chosen), tuple(round(float(probabilities[i]), 7) for i in chosen))
