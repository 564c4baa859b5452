"""Noise and the 3-sigma clip: the first step of the model input, the same for training and survey.

1. ``estimate_noise`` - sigma by a Gaussian fit to the lower part of the pixel histogram
   (the paper's method, section 3), or, for an image that is already clipped, the clip
   threshold T read off the data instead of fitting the zeros.
2. ``clip_symmetric`` - what the training files actually contain: pixels with |x| < 3 sigma
   are set to 0 and both tails survive (pixels <= -T are kept).
3. ``clip_band`` - both, per band image, plus the mask of zero-filled (truncated) regions:
   the single entry point that makes raw survey images and the clipped training files alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

from survey.model import kernels

CLIP_NSIGMA = 3.0
"""Pixels with |x| < CLIP_NSIGMA * sigma are set to zero (paper section 3)."""

CLIPPED_MIN_ZERO_FRACTION = 0.01
"""An already-clipped image has at least this fraction of exact zeros (raw noise has none)."""

CLIPPED_GAP_RATIO = 0.5
"""Clipped iff the smallest non-zero |x| is at least this fraction of the 1st percentile of |x|.

Clipping leaves an empty gap (-T, T): the smallest surviving |x| sits just below the 1st
percentile. In raw noise whose zeros are missing data, the smallest |x| is ~1e-4 of it.
"""

BADLY_CLIPPED_NONZERO = 0.4
"""A clipped image with more non-zero pixels than this was clipped badly (or carries an offset).

Measured on the 184 real files: well-clipped bands keep 2-26 % of their pixels, the
data README's badly clipped ones 47-100 % (mostly negative: a background offset below zero).
"""

CLIPPED_TRUNCATION_BLOCK_PX = 128
"""In an already-clipped image, zeros count as 'no data' only inside an all-zero square this big.

Clipping alone empties large areas: the largest all-zero square in the 184 real clipped
files is 96 px (A2254, 139-170 MHz; tests/survey/test_preprocess.py re-measures it). In a raw
(unclipped) image any exact zero or NaN is missing data.
"""

NOISE_HISTOGRAM_BINS = 200
"""Bins of the pixel histogram whose lower side ``fit_noise`` fits."""

ArrayF = npt.NDArray[np.floating]


@dataclass(frozen=True)
class NoiseEstimate:
    """What ``estimate_noise`` found in one band image.

    Attributes
    ----------
    sigma : float
        Noise standard deviation (Jy/beam). For an already-clipped image, T / CLIP_NSIGMA.
    clip_threshold : float
        The threshold T that ``clip_symmetric`` uses (or the one already applied).
    already_clipped : bool
        The input had been clipped before: T was read off the data, not fitted.
    nonzero_fraction : float
        Fraction of finite pixels that are not exactly zero.
    method : str
        ``"gaussian-fit"`` or ``"clip-threshold"``.
    background : float
        Mean of the fitted Gaussian (Jy/beam); NaN for already-clipped images. A value far
        from zero in units of sigma means a background offset that a clip about zero keeps.
    """

    sigma: float
    clip_threshold: float
    already_clipped: bool
    nonzero_fraction: float
    method: str
    background: float = float("nan")

    @property
    def badly_clipped(self) -> bool:
        """Clipped, but far more pixels survive than in a 3-sigma clip of noise."""
        return self.already_clipped and self.nonzero_fraction > BADLY_CLIPPED_NONZERO

    @property
    def flags(self) -> list[str]:
        """Human-readable state: ``clipped``/``unclipped``, ``badly-clipped``, ``offset``."""
        flags = ["clipped" if self.already_clipped else "unclipped"]
        if self.badly_clipped:
            flags.append("badly-clipped")
        if np.isfinite(self.background) and abs(self.background) > self.sigma:
            flags.append("offset")
        return flags


def _gaussian(x: ArrayF, amplitude: float, mu: float, sigma: float) -> ArrayF:
    return amplitude * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def fit_noise(values: ArrayF, *, bins: int = NOISE_HISTOGRAM_BINS) -> tuple[float, float]:
    """(sigma, mean) of the noise by a Gaussian fit to the lower part of the histogram.

    Real sources only add positive flux, so the part of the histogram below the mode is
    noise alone; fitting a Gaussian there (mean, width and height free) ignores the
    sources. The robust MAD width seeds the fit and bounds the histogram range.
    """
    values = np.asarray(values, dtype=np.float64)
    return _fit_finite(values[np.isfinite(values)], bins=bins, compiled=False)


def _fit_finite(values: np.ndarray, *, bins: int, compiled: bool) -> tuple[float, float]:
    """``fit_noise`` of finite ``values``: float64, or with ``compiled`` also float32 pixels, fitted as their float64 copies.

    ``compiled`` takes each median with one partition (``median_by_partition``), the
    absolute deviations in one pass (``kernels.absolute_deviations``) and the histogram with
    ``kernels.histogram``: the same numbers as numpy's, in fewer passes. It reorders
    ``values`` in place (nothing after the median depends on their order), and float32
    pixels stay float32, half the bytes: each step widens them exactly, as numpy's
    ``asarray(values, float64)`` does once.
    """
    if values.size < 50:
        raise ValueError(f"too few pixels ({values.size}) to fit the noise")
    if compiled:
        median = median_by_partition(values)
        deviations = np.empty(values.size, np.float64)
        kernels.absolute_deviations(values, median, deviations)  # |values - median| in float64, as numpy computes it
        mad_sigma = 1.4826 * median_by_partition(deviations)
    else:
        median = float(np.median(values))
        mad_sigma = 1.4826 * float(np.median(np.abs(values - median)))
    if mad_sigma <= 0:
        raise ValueError("pixel values have no spread: cannot fit the noise")
    span = (median - 6 * mad_sigma, median + 2 * mad_sigma)
    if compiled:  # numpy's edges for this range (its linspace), then its binning rule, compiled
        edges = np.histogram_bin_edges(np.zeros(1), bins=bins, range=span)  # float64 edges, whatever the values
        counts = np.zeros(bins, np.intp)
        kernels.histogram(values, edges, counts)
    else:
        counts, edges = np.histogram(values, bins=bins, range=span)
    centres = 0.5 * (edges[:-1] + edges[1:])
    peak = int(np.argmax(counts))
    # The lower side of the histogram up to a little past its peak.
    lower = slice(0, min(peak + max(3, bins // 40), bins))
    guess = (float(counts[peak]), float(centres[peak]), mad_sigma)
    params = _fit_gaussian(centres[lower], counts[lower], guess, covariance=not compiled)
    if params is None:
        return mad_sigma, median
    sigma = abs(float(params[2]))
    # A fit that wandered off (e.g. a histogram with no lower tail) falls back to the MAD.
    if not 0.2 * mad_sigma < sigma < 5 * mad_sigma:
        return mad_sigma, median
    return sigma, float(params[1])


def _fit_gaussian(x: np.ndarray, y: np.ndarray, guess: tuple[float, float, float], *,
                  covariance: bool) -> np.ndarray | None:
    """Least-squares (amplitude, mean, sigma) of ``_gaussian`` through (x, y), or None where MINPACK found none.

    ``covariance`` runs ``scipy.optimize.curve_fit`` (the reference). Without it, the same
    MINPACK call (``leastsq``) on the same residuals, without the checks and covariance
    matrix ``curve_fit`` adds and ``fit_noise`` never reads: the same parameters, bit for
    bit, in about two thirds of the time (a fit per band per survey tile).
    """
    if covariance:
        try:
            return optimize.curve_fit(_gaussian, x, y, p0=guess, maxfev=5000)[0]
        except (RuntimeError, optimize.OptimizeWarning):
            return None
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    # full_output, as curve_fit asks: a fit that fails then says so in ``status`` rather than in a warning.
    params, _, _, _, status = optimize.leastsq(lambda p: _gaussian(x, *p) - y, guess, maxfev=5000, full_output=True)
    return params if status in (1, 2, 3, 4) else None  # curve_fit's test of success


def _may_be_clipped(finite: int, zeros: int) -> bool:
    """Whether an image with ``finite`` finite pixels, ``zeros`` of them exactly zero, can be an already-clipped one."""
    return finite > 0 and zeros / finite >= CLIPPED_MIN_ZERO_FRACTION and zeros != finite


def clip_threshold_of(pixels: ArrayF) -> float | None:
    """The threshold T of an already-clipped image, or None if it does not look clipped.

    A clipped image has exact zeros and an empty gap around zero: no non-zero value with
    |x| < T, where T is the smallest non-zero |x|.
    """
    finite = pixels[np.isfinite(pixels)]
    zero = finite == 0
    if not _may_be_clipped(finite.size, int(np.count_nonzero(zero))):
        return None
    magnitudes = np.abs(finite[~zero])
    threshold = float(magnitudes.min())
    return threshold if threshold >= CLIPPED_GAP_RATIO * float(np.percentile(magnitudes, 1)) else None


def estimate_noise(pixels: ArrayF) -> NoiseEstimate:
    """Noise sigma and clip threshold of one band image, robust to already-clipped input.

    >>> rng = np.random.default_rng(1)
    >>> est = estimate_noise(rng.normal(0, 0.01, (200, 200)))
    >>> est.already_clipped, round(est.sigma, 3)
    (False, 0.01)
    >>> again = estimate_noise(clip_symmetric(rng.normal(0, 0.01, (200, 200)), est.clip_threshold))
    >>> again.already_clipped, round(again.sigma, 3)
    (True, 0.01)
    """
    pixels = np.asarray(pixels)
    finite = pixels[np.isfinite(pixels)]
    nonzero_fraction = float(np.count_nonzero(finite) / max(finite.size, 1))
    threshold = clip_threshold_of(pixels)
    if threshold is not None:
        return NoiseEstimate(threshold / CLIP_NSIGMA, threshold, True, nonzero_fraction, "clip-threshold")
    sigma, background = fit_noise(finite[finite != 0])
    return NoiseEstimate(sigma, CLIP_NSIGMA * sigma, False, nonzero_fraction, "gaussian-fit", background)


def clip_symmetric(pixels: ArrayF, threshold: float) -> np.ndarray:
    """Set pixels with |x| < threshold to zero, keeping both tails (as the training files do).

    Non-finite pixels (no data) become zero too. Idempotent: clipping a clipped image at
    the same or a lower threshold changes nothing.
    """
    out = np.array(pixels, dtype=np.float32, copy=True)
    out[~np.isfinite(out)] = 0.0
    out[np.abs(out) < threshold] = 0.0
    return out


@dataclass(frozen=True, eq=False)
class ClippedBand:
    """A band image after the shared clipping step.

    Attributes
    ----------
    pixels : numpy.ndarray
        Clipped float32 pixels (no-data pixels are zero).
    noise : NoiseEstimate
        What ``estimate_noise`` found on the input.
    no_data : numpy.ndarray
        Boolean mask of zero-filled / non-finite (truncated) regions of the input.
    """

    pixels: np.ndarray
    noise: NoiseEstimate
    no_data: np.ndarray


def clip_band(pixels: ArrayF) -> ClippedBand:
    """Estimate the noise of one band image and clip it at 3 sigma (or leave it, if clipped).

    The single entry point both training and survey call per band image, so raw survey
    images and the clipped training files end up in the same state. Applying it to its
    own output changes nothing. Runs the compiled kernels (``survey.model.kernels``) where
    numba is available, with results equal to ``clip_band_numpy``'s, the reference.
    """
    pixels = np.asarray(pixels)
    if kernels.enabled() and pixels.dtype.kind == "f" and pixels.ndim == 2:
        return _clip_band_compiled(pixels)
    return clip_band_numpy(pixels)


def clip_band_numpy(pixels: ArrayF) -> ClippedBand:
    """``clip_band`` in numpy alone: the reference the compiled path is tested against, and the path without numba."""
    pixels = np.asarray(pixels)
    estimate = estimate_noise(pixels)
    return ClippedBand(
        clip_symmetric(pixels, estimate.clip_threshold), estimate, no_data_mask(pixels, already_clipped=estimate.already_clipped)
    )


def no_data_mask(pixels: ArrayF, *, already_clipped: bool) -> np.ndarray:
    """True where a pixel holds no data (zero-filled or non-finite: a truncated image).

    Raw images have noise everywhere, so any exact zero or NaN is missing data. Clipped
    images are mostly zeros, so there only zeros inside an all-zero square of side
    ``CLIPPED_TRUNCATION_BLOCK_PX`` count.
    """
    if not already_clipped:
        return ~np.isfinite(pixels) | (pixels == 0)
    return zero_filled_mask(pixels, block_px=CLIPPED_TRUNCATION_BLOCK_PX)


def zero_filled_mask(pixels: ArrayF, *, block_px: int) -> np.ndarray:
    """True where a zero or non-finite pixel lies inside an all-zero square of side ``block_px``."""
    empty = ~np.isfinite(pixels) | (pixels == 0)
    if min(empty.shape) < block_px:
        return empty & empty.all()
    # Mean of the 'empty' indicator over each block: 1 exactly where the block is all empty.
    full = ndimage.uniform_filter(empty.astype(np.float32), size=block_px, mode="constant") > 1 - 1e-6
    # Grow each all-empty block centre back to the whole block it certifies.
    return empty & ndimage.maximum_filter(full, size=block_px, mode="constant")


def _clip_band_compiled(pixels: np.ndarray) -> ClippedBand:
    """``clip_band_numpy`` in the compiled kernels: the same estimate, pixels and mask, in fewer passes.

    Already-clipped images (the training files) take numpy's threshold reading and
    truncation mask, which have no compiled twin; raw survey images run wholly compiled.
    """
    flat = kernels.native(pixels).reshape(-1)
    values = np.empty(flat.size, np.float32 if flat.dtype == np.float32 else np.float64)
    n, finite, zeros = kernels.nonzero_finite(flat, values)
    values = values[:n]
    nonzero_fraction = float((finite - zeros) / max(finite, 1))
    threshold = clip_threshold_of(pixels) if _may_be_clipped(finite, zeros) else None
    if threshold is not None:
        estimate = NoiseEstimate(threshold / CLIP_NSIGMA, threshold, True, nonzero_fraction, "clip-threshold")
    else:
        sigma, background = _fit_finite(values, bins=NOISE_HISTOGRAM_BINS, compiled=True)
        estimate = NoiseEstimate(sigma, CLIP_NSIGMA * sigma, False, nonzero_fraction, "gaussian-fit", background)
    out = np.empty(flat.size, np.float32)
    if estimate.already_clipped:
        kernels.clip(flat, np.float32(estimate.clip_threshold), out)
        no_data = no_data_mask(pixels, already_clipped=True)
    else:
        no_data = np.empty(flat.size, bool)
        kernels.clip_and_mask(flat, np.float32(estimate.clip_threshold), out, no_data)
        no_data = no_data.reshape(pixels.shape)
    return ClippedBand(out.reshape(pixels.shape), estimate, no_data)


def median_by_partition(values: np.ndarray) -> float:
    """``float(np.median(values))`` of finite 1-D float values, reordering ``values`` in place; several times faster.

    ``np.median`` partitions at two middle ranks and the last (its NaN check), which
    numpy does in a slow general loop; one partition at the upper middle rank takes its
    SIMD path, and the lower middle of an even count is the largest value below it. The
    result is numpy's of the values as float64: the middle value, or (lower + upper) / 2
    computed in float64 (so float32 values give the median of their float64 copies).
    """
    n = values.size
    k = n // 2
    values.partition(k)
    if n % 2:
        return float(values[k])
    return (float(values[:k].max()) + float(values[k])) / 2.0
