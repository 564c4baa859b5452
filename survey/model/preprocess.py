"""The one preprocessing shared by training and survey: noise, clipping, cut-outs, normalisation.

Pure numpy (plus an astropy WCS for cut-outs): the training code imports this module so
that a survey image and a training file go through exactly the same steps:

1. ``estimate_noise`` - sigma by a Gaussian fit to the lower part of the pixel histogram
   (the paper's method, section 3), or, for an image that is already clipped, the clip
   threshold T read off the data instead of fitting the zeros.
2. ``clip_symmetric`` - what the training files actually contain: pixels with |x| < 3 sigma
   are set to 0 and both tails survive (pixels <= -T are kept).
3. ``cutout`` - a 64x64 cut-out per band through that band's own WCS at its native pixel
   scale, with the fraction that fell outside the image or in a zero-filled region
   (``cutouts_at_pixels``: the same cut-outs for many centres at once, for survey tiles).
4. ``Normalisation`` - the classifier's global min-max to [0, 1] and the generative models'
   log-scaling, min-max, then [-1, 1] (paper appendix A). Fitted once on training data,
   stored with a model, applied unchanged at inference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

from survey.sky.bands import BANDS, CUTOUT_SIZE

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

ArrayF = npt.NDArray[np.floating]


# --------------------------------------------------------------------------------------
# 1. Noise
# --------------------------------------------------------------------------------------


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


def fit_noise(values: ArrayF, *, bins: int = 200) -> tuple[float, float]:
    """(sigma, mean) of the noise by a Gaussian fit to the lower part of the histogram.

    Real sources only add positive flux, so the part of the histogram below the mode is
    noise alone; fitting a Gaussian there (mean, width and height free) ignores the
    sources. The robust MAD width seeds the fit and bounds the histogram range.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 50:
        raise ValueError(f"too few pixels ({values.size}) to fit the noise")
    median = float(np.median(values))
    mad_sigma = 1.4826 * float(np.median(np.abs(values - median)))
    if mad_sigma <= 0:
        raise ValueError("pixel values have no spread: cannot fit the noise")
    counts, edges = np.histogram(values, bins=bins, range=(median - 6 * mad_sigma, median + 2 * mad_sigma))
    centres = 0.5 * (edges[:-1] + edges[1:])
    peak = int(np.argmax(counts))
    # The lower side of the histogram up to a little past its peak.
    lower = slice(0, min(peak + max(3, bins // 40), bins))
    guess = (float(counts[peak]), float(centres[peak]), mad_sigma)
    try:
        params, _ = optimize.curve_fit(_gaussian, centres[lower], counts[lower], p0=guess, maxfev=5000)
    except (RuntimeError, optimize.OptimizeWarning):
        return mad_sigma, median
    sigma = abs(float(params[2]))
    # A fit that wandered off (e.g. a histogram with no lower tail) falls back to the MAD.
    if not 0.2 * mad_sigma < sigma < 5 * mad_sigma:
        return mad_sigma, median
    return sigma, float(params[1])


def clip_threshold_of(pixels: ArrayF) -> float | None:
    """The threshold T of an already-clipped image, or None if it does not look clipped.

    A clipped image has exact zeros and an empty gap around zero: no non-zero value with
    |x| < T, where T is the smallest non-zero |x|.
    """
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return None
    zero = finite == 0
    if zero.mean() < CLIPPED_MIN_ZERO_FRACTION or zero.all():
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


# --------------------------------------------------------------------------------------
# 2. Clipping
# --------------------------------------------------------------------------------------


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
    own output changes nothing.
    """
    pixels = np.asarray(pixels)
    estimate = estimate_noise(pixels)
    return ClippedBand(
        clip_symmetric(pixels, estimate.clip_threshold), estimate, no_data_mask(pixels, already_clipped=estimate.already_clipped)
    )


# --------------------------------------------------------------------------------------
# 3. Cut-outs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Cutout:
    """A square cut-out of one band and how much of it holds real data.

    Attributes
    ----------
    pixels : numpy.ndarray
        (size, size) float32; pixels outside the image are zero.
    outside_fraction : float
        Fraction of the cut-out that fell outside the image.
    zero_fraction : float
        Fraction outside the image or inside a zero-filled (no data) region.
    """

    pixels: np.ndarray
    outside_fraction: float
    zero_fraction: float


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


def pixel_of(wcs, ra_deg: float, dec_deg: float) -> tuple[float, float]:
    """0-based (x, y) pixel coordinates of a sky position in a 2-D celestial WCS."""
    x, y = wcs.all_world2pix([[ra_deg, dec_deg]], 0)[0]
    return float(x), float(y)


def cutout_at_pixel(
    pixels: ArrayF, x: float, y: float, *, size: int = CUTOUT_SIZE, zero_mask: np.ndarray | None = None
) -> Cutout:
    """Cut a size x size square whose centre (size-1)/2 lands on pixel (x, y).

    For the 300x300 training files centred on CRPIX 150.5 (x = y = 149.5 zero-based) this
    is exactly the paper's central cut-out ``data[118:182, 118:182]``.
    """
    corner_x, corner_y = cutout_corners(x, y, size=size)
    x0, y0 = int(corner_x), int(corner_y)
    ny, nx = pixels.shape
    out = np.zeros((size, size), dtype=np.float32)
    inside = np.zeros((size, size), dtype=bool)
    ys, xs = slice(max(y0, 0), min(y0 + size, ny)), slice(max(x0, 0), min(x0 + size, nx))
    if ys.start < ys.stop and xs.start < xs.stop:
        target = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        block = np.asarray(pixels[ys, xs], dtype=np.float32)
        out[target] = np.where(np.isfinite(block), block, 0.0)
        inside[target] = True
    missing = ~inside
    if zero_mask is not None and inside.any():
        missing[target] |= zero_mask[ys, xs]
    return Cutout(out, float(1 - inside.mean()), float(missing.mean()))


def cutout(image, ra_deg: float, dec_deg: float, *, size: int = CUTOUT_SIZE, zero_mask=None) -> Cutout:
    """Cut-out of a BandImage centred on (ra, dec) through the image's own WCS.

    The cut-out stays at the band's native pixel scale (no regridding), as in the paper.
    """
    x, y = pixel_of(image.wcs, ra_deg, dec_deg)
    return cutout_at_pixel(image.data, x, y, size=size, zero_mask=zero_mask)


@dataclass(frozen=True, eq=False)
class CutoutBatch:
    """Many square cut-outs of one band image, as ``cutout_at_pixel`` would cut them one by one.

    Attributes
    ----------
    pixels : numpy.ndarray
        (N, size, size) float32; pixels outside the image (or non-finite) are zero.
    outside_fraction : numpy.ndarray
        (N,) float64: fraction of each cut-out outside the image.
    zero_fraction : numpy.ndarray
        (N,) float64: fraction outside the image or inside the zero-filled mask.
    """

    pixels: np.ndarray
    outside_fraction: np.ndarray
    zero_fraction: np.ndarray


def cutout_corners(x: npt.ArrayLike, y: npt.ArrayLike, *, size: int = CUTOUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Integer (x0, y0) of the lower-left pixel of the cut-outs centred on (x, y).

    The one rule for where a cut-out starts, shared by ``cutout_at_pixel`` and
    ``cutouts_at_pixels``. floor(.. + 0.5), not round(): rounding halves to even would
    shift alternate positions by a pixel.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("cut-out centres must be finite pixel positions (a position off the WCS projection?)")
    x0 = np.floor(x - (size - 1) / 2 + 0.5).astype(np.int64)
    y0 = np.floor(y - (size - 1) / 2 + 0.5).astype(np.int64)
    return x0, y0


def _overlap(start: np.ndarray, *, size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped [lo, hi) of the intervals [start, start + size) inside [0, length); hi >= lo."""
    lo = np.clip(start, 0, length)
    return lo, np.maximum(np.clip(start + size, 0, length), lo)


def _box_counts(mask: np.ndarray, *, x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """True pixels of ``mask`` in each box [y0, y1) x [x0, x1), from one summed-area table."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
    (x0, x1), (y0, y1) = x, y
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]


def cutouts_at_pixels(
    pixels: ArrayF,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    size: int = CUTOUT_SIZE,
    zero_mask: np.ndarray | None = None,
    fill: float = 0.0,
) -> CutoutBatch:
    """All cut-outs of one band image in one vectorised gather: ``cutout_at_pixel`` for many centres.

    A survey tile cuts hundreds of overlapping windows from the same image; a Python loop
    over them costs more than the gather itself. Here the image is converted (float32,
    non-finite to ``fill``) once, padded only if some window crosses its edge, and read
    through a sliding-window view with one fancy index; the outside and zero-filled
    fractions are exact integer counts (box overlaps and a summed-area table of
    ``zero_mask``), so every value equals what ``cutout_at_pixel`` returns for the same
    centre. ``fill`` (default 0) is what pixels outside the image read: cutting an already
    normalised image takes the normalised zero (``Normalisation.zero_level``).
    """
    image = np.asarray(pixels, dtype=np.float32)
    if not np.isfinite(image).all():
        image = np.where(np.isfinite(image), image, np.float32(fill))
    ny, nx = image.shape
    x0, y0 = cutout_corners(x, y, size=size)
    xs, ys = _overlap(x0, size=size, length=nx), _overlap(y0, size=size, length=ny)
    inside = (xs[1] - xs[0]) * (ys[1] - ys[0])
    missing = size * size - inside
    if zero_mask is not None and np.any(zero_mask):
        missing = missing + _box_counts(np.asarray(zero_mask, bool), x=xs, y=ys)
    return CutoutBatch(_gather(image, x0, y0, size=size, fill=fill), 1 - inside / (size * size), missing / (size * size))


def _gather(image: np.ndarray, x0: np.ndarray, y0: np.ndarray, *, size: int, fill: float = 0.0) -> np.ndarray:
    """(N, size, size) copies of image[y0:y0+size, x0:x0+size], ``fill`` outside the image."""
    ny, nx = image.shape
    if x0.size == 0:
        return np.zeros((0, size, size), np.float32)
    if x0.min() < 0 or y0.min() < 0 or x0.max() + size > nx or y0.max() + size > ny:
        # Pad by a full cut-out: a corner clamped to [-size, n] still reads only the fill
        # when its window lies wholly outside, so any centre, however far off, is safe.
        image = np.pad(image, size, constant_values=np.float32(fill))
        x0, y0 = np.clip(x0, -size, nx) + size, np.clip(y0, -size, ny) + size
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size))
    return windows[y0, x0]


def stack_cutouts(cutouts: list[Cutout]) -> np.ndarray:
    """Stack per-band cut-outs (in BANDS order) into one (size, size, n_bands) float32 array."""
    if len(cutouts) != len(BANDS):
        raise ValueError(f"expected {len(BANDS)} band cut-outs, got {len(cutouts)}")
    return np.stack([c.pixels for c in cutouts], axis=-1).astype(np.float32)


# --------------------------------------------------------------------------------------
# 4. Normalisation
# --------------------------------------------------------------------------------------

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
        """Fit the global min and max over all training cut-outs (all images, all bands)."""
        x = np.asarray(cutouts, dtype=np.float32)
        if kind == "log-minmax-sym":
            x = log_scale(x, scale=log_scale_value)
        return cls(kind, float(np.min(x)), float(np.max(x)), log_scale_value)
