"""Pixels that are neither data nor blank: +inf and -inf, counted per window so a candidate can be flagged.

FITS marks missing data with NaN (the blank value), and the survey reads NaN blocks as
"no data" (``truncated``, when they cover enough of a cut-out). Nothing writes infinities
for missing data: an infinite pixel is a corrupt value (an overflow in the software that
made the image, a bad conversion). The input builder zero-fills it like a blank, so a
window touching one would otherwise be scored with flags ``ok`` although part of its
input is garbage, while ``halo-survey inspect`` rejects the same file. ``infinite_pixels``
counts, for each window, the infinite pixels its cut-outs hold in all bands, and the
candidates built from it carry the flag ``bad_pixels`` (``survey.run.candidates``).

The images are read once per tile; this costs one ``isinf`` pass over each band's field
and, only when a band holds infinities, one summed-area table of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from survey.images.base import BandImage, world_to_pixel
from survey.model.cutouts import cutout_corners
from survey.sky.bands import CUTOUT_SIZE

INF_PIXELS_COLUMN = "inf_pixels"
"""Per-window column: the +inf / -inf pixels of its cut-outs, all bands together."""


def infinite_masks(images: Mapping[str, BandImage]) -> dict[str, np.ndarray]:
    """``{band: True where the pixel is +inf or -inf}`` for the bands that hold any (usually none)."""
    masks = {}
    for band, image in images.items():
        mask = np.isinf(np.asarray(image.data))
        if mask.any():
            masks[band] = mask
    return masks


def _summed_area(mask: np.ndarray) -> np.ndarray:
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
    return table


def infinite_pixels(
    images: Mapping[str, BandImage], ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *,
    masks: Mapping[str, np.ndarray] | None = None, size: int = CUTOUT_SIZE,
) -> np.ndarray:
    """How many +inf / -inf pixels each window's cut-outs hold, summed over the bands.

    The cut-outs are placed exactly as ``survey.model.cutouts`` places them
    (``cutout_corners`` of each band's pixel position).

    Parameters
    ----------
    images : mapping of str to BandImage
        The field's band images as read (before clipping, which zero-fills infinities).
    ra_deg, dec_deg : array_like
        Window centres, ICRS degrees, 1-D and of one length N (or scalars).
    masks : mapping of str to numpy.ndarray, optional
        ``infinite_masks(images)``, when the caller cuts a field in parts and computed it once.
    size : int
        Side of the cut-outs in pixels.

    Returns
    -------
    numpy.ndarray
        (N,) int32 counts; all zero when no band holds an infinity.
    """
    ra = np.atleast_1d(np.asarray(ra_deg, float))
    dec = np.atleast_1d(np.asarray(dec_deg, float))
    masks = infinite_masks(images) if masks is None else masks
    counts = np.zeros(ra.size, np.int64)
    for band, mask in masks.items():
        if ra.size == 0:
            break
        x, y = world_to_pixel(images[band].wcs, ra, dec)
        x0, y0 = cutout_corners(x, y, size=size)
        ny, nx = mask.shape
        xa, xb = np.clip(x0, 0, nx), np.clip(x0 + size, 0, nx)
        ya, yb = np.clip(y0, 0, ny), np.clip(y0 + size, 0, ny)
        table = _summed_area(mask)
        counts += table[yb, xb] - table[ya, xb] - table[yb, xa] + table[ya, xa]
    return counts.astype(np.int32)
