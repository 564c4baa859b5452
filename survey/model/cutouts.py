"""Square cut-outs at each band's native pixel scale, one window or many at once.

The paper stacks the central 64x64 pixels of each band without regridding, so each band's
cut-out covers a different sky area; a survey tile cuts hundreds of overlapping windows
from one image. ``cutout_at_pixel`` is the reference for one window, ``cutouts_at_pixels``
the vectorised gather the input builder uses, equal to it value for value (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from survey.model import kernels
from survey.sky.bands import CUTOUT_SIZE

ArrayF = npt.NDArray[np.floating]


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


def cutout_at_pixel(
    pixels: ArrayF, x: float, y: float, *, size: int = CUTOUT_SIZE, zero_mask: np.ndarray | None = None
) -> Cutout:
    """Cut a size x size square whose centre (size-1)/2 lands on pixel (x, y).

    For the 300x300 training files centred on CRPIX 150.5 (x = y = 149.5 zero-based) this
    is exactly the paper's central cut-out ``data[118:182, 118:182]``.

    Parameters
    ----------
    pixels : numpy.ndarray
        2-D band image (ny, nx) in Jy/beam; non-finite pixels are cut as 0.
    x, y : float
        Centre as a 0-based column and row (``world_to_pixel``); must be finite.
    size : int
        Side of the cut-out in pixels (64, the classifiers' input).
    zero_mask : numpy.ndarray, optional
        bool, shaped like ``pixels``: True where the image was zero-filled for lack of data;
        those pixels count towards ``zero_fraction``.

    Returns
    -------
    Cutout
        The (size, size) float32 pixels (0 outside the image) and the fractions outside
        the image and without data.

    Raises
    ------
    ValueError
        ``x`` or ``y`` is not finite.
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


@dataclass(frozen=True, eq=False)
class CutoutBatch:
    """Many square cut-outs of one band image, as ``cutout_at_pixel`` would cut them one by one.

    Attributes
    ----------
    pixels : numpy.ndarray
        (N, size, size) float32; pixels outside the image (or non-finite) read ``fill`` (0 unless given).
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

    Parameters
    ----------
    x, y : array_like
        Centres as 0-based columns and rows, broadcast together.
    size : int
        Side of the cut-outs in pixels.

    Returns
    -------
    x0, y0 : numpy.ndarray
        int64 0-based column and row of each cut-out's first pixel; may be negative or
        beyond the image when the cut-out crosses its edge.

    Raises
    ------
    ValueError
        A centre is not finite (a position off the WCS projection).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("cut-out centres must be finite pixel positions (a position off the WCS projection?)")
    x0 = np.floor(x - (size - 1) / 2 + 0.5).astype(np.int64)
    y0 = np.floor(y - (size - 1) / 2 + 0.5).astype(np.int64)
    return x0, y0


def _overlap(start: np.ndarray, *, size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped [lo, hi) of the intervals [start, start + size) inside [0, length); hi >= lo."""
    # np.minimum/np.maximum, not np.clip: the same integers without np.clip's per-call overhead (a batch calls this 8 times).
    lo = np.minimum(np.maximum(start, 0), length)
    return lo, np.maximum(np.minimum(np.maximum(start + size, 0), length), lo)


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

    Parameters
    ----------
    pixels : numpy.ndarray
        2-D band image (ny, nx), Jy/beam or already normalised; non-finite pixels read as
        ``fill``.
    x, y : array_like
        Centres as 0-based columns and rows, 1-D and of one length N.
    size : int
        Side of the cut-outs in pixels.
    zero_mask : numpy.ndarray, optional
        bool, shaped like ``pixels``: True where the image was zero-filled for lack of data.
    fill : float
        Value of pixels outside the image and of non-finite ones.

    Returns
    -------
    CutoutBatch
        (N, size, size) float32 pixels and the (N,) outside and no-data fractions.

    Raises
    ------
    ValueError
        A centre is not finite.
    """
    image = finite_image(pixels, fill)
    x0, y0 = cutout_corners(x, y, size=size)
    outside, zero = cutout_fractions(image.shape, x0, y0, size=size, zero_mask=zero_mask)
    return CutoutBatch(_gather(image, x0, y0, size=size, fill=fill), outside, zero)


def gather_into(planes: np.ndarray, channel: int, image: np.ndarray, x0: np.ndarray, y0: np.ndarray, *,
                fill: float) -> np.ndarray:
    """Cut-outs at corners (x0, y0) of a finite float32 ``image`` into band ``channel`` of ``planes``; their peaks.

    The compiled ``kernels.gather`` where it runs (numpy's gather, a copy and a maximum
    otherwise): the one copy every survey window pays.

    Parameters
    ----------
    planes : numpy.ndarray
        (N, bands, size, size) float32 batch, written in band ``channel``.
    channel : int
        The band's index in ``planes``.
    image : numpy.ndarray
        2-D float32 image, every pixel finite (``finite_image``).
    x0, y0 : numpy.ndarray
        int64 corners (``cutout_corners``), N of each.
    fill : float
        Value of pixels outside the image.

    Returns
    -------
    numpy.ndarray
        (N,) float32 brightest pixel of each cut-out (``fill`` counts where it reaches outside).
    """
    n = x0.size
    if kernels.enabled() and planes.flags.c_contiguous and planes.dtype == np.float32:
        peaks = np.empty(n, np.float32)
        kernels.gather(image, x0, y0, np.float32(fill), planes, channel, peaks)
        return peaks
    planes[:, channel] = _gather(image, x0, y0, size=planes.shape[-1], fill=fill)
    return planes[:, channel].reshape(n, -1).max(axis=1) if n else np.zeros(0, np.float32)


def finite_image(pixels: ArrayF, fill: float) -> np.ndarray:
    """The image as float32 with non-finite pixels read as ``fill`` (itself, unchecked twice, when it already is)."""
    image = np.asarray(pixels, dtype=np.float32)
    if not np.isfinite(image).all():
        image = np.where(np.isfinite(image), image, np.float32(fill))
    return image


def cutout_fractions(shape: tuple[int, int], x0: np.ndarray, y0: np.ndarray, *, size: int,
                     zero_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact outside and no-data fractions of the cut-outs at corners (x0, y0) of an image of ``shape``.

    Parameters
    ----------
    shape : tuple of int
        (rows, columns) of the image.
    x0, y0 : numpy.ndarray
        int64 corners (``cutout_corners``).
    size : int
        Side of the cut-outs in pixels.
    zero_mask : numpy.ndarray or None
        bool, shaped like the image: True where it holds no data.

    Returns
    -------
    outside, zero : numpy.ndarray
        (N,) float64: the share of each cut-out outside the image, and outside or in no-data.
    """
    ny, nx = shape
    xs, ys = _overlap(x0, size=size, length=nx), _overlap(y0, size=size, length=ny)
    inside = (xs[1] - xs[0]) * (ys[1] - ys[0])
    missing = size * size - inside
    if zero_mask is not None and np.any(zero_mask):
        missing = missing + _box_counts(np.asarray(zero_mask, bool), x=xs, y=ys)
    return 1 - inside / (size * size), missing / (size * size)


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
