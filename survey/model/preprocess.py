"""The model input, built in one place: four band images in, normalised band planes out.

Every image a classifier sees goes through these two calls, whether it comes from a survey
tile, a target, a training file, an injected halo or a generated sample:

1. ``clip_field`` - estimate each band's noise and clip it at 3 sigma (``survey.model.noise``),
   so raw survey images and the paper's already-clipped files end up in the same state.
2. ``cut_windows`` - cut a 64x64 window per band at each position, at the band's native
   pixel scale (``survey.model.cutouts``), normalised with the model card's
   ``Normalisation`` (``survey.model.normalisation``) when one is given.

The result is ``image``: (N, 4, 64, 64) float32 band planes, bands in ``BAND_NAMES`` order,
which is the layout of the classifier's ONNX input (``INPUT_LAYOUT``, the card's
``input_spec.layout``). Cutting each band as one contiguous plane is the cheap way (an
interleaved NHWC stack cost the survey about 17 us a window to write); the Keras models
are channels-last, so training moves the band axis last at its own boundary
(``training.data``) and the exported graph starts with the transpose back
(``training.export``), which ONNX Runtime cancels against the CNN's own.

The normalisation acts pixel by pixel, so normalising a band's field once before cutting
gives the same pixels as normalising every cut-out, and neighbouring survey windows overlap
so much that a field has ~30 times fewer pixels than its cut-outs: the signed-log scaling
was the largest CPU cost per window when it was applied to cut-outs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from survey.exceptions import BadInputError
from survey.images.base import BandImage, world_to_pixel
from survey.model.cutouts import cutouts_at_pixels
from survey.model.noise import ClippedBand, clip_band
from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE, band_column

IMAGE_COLUMN = "image"
"""The cut-outs ``cut_windows`` returns: (N, 4, 64, 64) band planes, clipped Jy/beam, or the
model's input when the card's normalisation is given."""

INPUT_LAYOUT = "NCHW"
"""Axis order of a batch of model inputs: (batch, band, y, x)."""


def channels_last(planes: np.ndarray) -> np.ndarray:
    """(N, 4, H, W) band planes as a contiguous (N, H, W, 4) stack: the Keras models' and the catalogue's layout."""
    return np.ascontiguousarray(np.moveaxis(planes, 1, -1))


@dataclass(frozen=True, eq=False)
class ClippedField:
    """The four clipped band images of one field, with their no-data masks and noise.

    Attributes
    ----------
    images : dict[str, BandImage]
        The band images as read, by band name (their WCS places the cut-outs).
    clipped : dict[str, ClippedBand]
        Each band after ``clip_band``: clipped pixels, noise estimate, no-data mask.
    """

    images: dict[str, BandImage]
    clipped: dict[str, ClippedBand]
    _normalised: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    def band_pixels(self, band: str, normalisation: Normalisation | None) -> tuple[np.ndarray, float]:
        """One band's pixels as cut-outs take them, and the value of pixels outside the image.

        The normalised field is kept, so cutting a tile's windows part by part normalises once.
        """
        clipped = self.clipped[band]
        if normalisation is None:
            return clipped.pixels, 0.0
        key = (band, normalisation.id)
        if key not in self._normalised:
            self._normalised[key] = normalisation.apply(clipped.pixels, noise=clipped.noise.sigma)
        return self._normalised[key], normalisation.zero_level


def clip_field(images: Mapping[str, BandImage], *, key: str) -> ClippedField:
    """Clip every band of a field with the shared ``clip_band``; name the band file on failure.

    Raises
    ------
    BadInputError
        A band is missing, or has no finite, non-zero pixels to estimate its noise from;
        the message names ``key`` (the tile, target or source) and the band's file.
    """
    missing = [b for b in BAND_NAMES if b not in images]
    if missing:
        raise BadInputError(key, f"the image source returned no {', '.join(missing)} MHz image")
    clipped = {}
    for band in BAND_NAMES:
        image = images[band]
        try:
            clipped[band] = clip_band(image.data)
        except ValueError as exc:  # no finite, non-zero pixels to estimate the noise from
            raise BadInputError(f"{key} ({image.origin})", f"unusable {band} MHz image: {exc}") from exc
    return ClippedField(dict(images), clipped)


def cut_windows(
    field: ClippedField, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *, normalisation: Normalisation | None = None
) -> dict[str, np.ndarray]:
    """Cut-outs of all windows from one clipped field, with their per-band statistics.

    With ``normalisation`` each band is normalised once, before cutting (module docstring),
    and pixels outside the image read its ``zero_level``, as a zero would after normalising.

    Parameters
    ----------
    field : ClippedField
        The field the windows lie in (``clip_field``).
    ra_deg, dec_deg : array_like
        Window centres (ICRS degrees); scalars or 1-D arrays of one length.
    normalisation : Normalisation, optional
        The model card's: the ``image`` column is then the model's input.

    Returns
    -------
    dict
        ``image`` (N, 4, 64, 64) float32 band planes: clipped Jy/beam, or normalised with
        ``normalisation``; ``outside_fraction`` and ``zero_fraction`` (N,) float32, the worst
        band; ``noise_<band>`` and ``peak_<band>`` (N,) float32 Jy/beam (noise sigma of the
        band image, brightest pixel of the cut-out).
    """
    ra = np.atleast_1d(np.asarray(ra_deg, float))
    dec = np.atleast_1d(np.asarray(dec_deg, float))
    n = ra.size
    planes = np.empty((n, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE), np.float32)
    outside = np.zeros((n, len(BAND_NAMES)), np.float32)
    zero = np.zeros((n, len(BAND_NAMES)), np.float32)
    columns: dict[str, np.ndarray] = {}
    for channel, band in enumerate(BAND_NAMES):
        clipped = field.clipped[band]
        # One WCS call and one gather per band: no per-window Python work.
        x, y = world_to_pixel(field.images[band].wcs, ra, dec)
        pixels, fill = field.band_pixels(band, normalisation)
        pieces = cutouts_at_pixels(pixels, x, y, zero_mask=clipped.no_data, fill=fill)
        planes[:, channel] = pieces.pixels
        outside[:, channel], zero[:, channel] = pieces.outside_fraction, pieces.zero_fraction
        columns[band_column("noise", band)] = np.full(n, clipped.noise.sigma, np.float32)
        # The normalisation rises monotonically, so the brightest normalised pixel is the brightest one.
        peak = pieces.pixels.reshape(n, -1).max(axis=1) if n else np.zeros(0, np.float32)
        columns[band_column("peak", band)] = (peak if normalisation is None
                                              else normalisation.invert(peak, noise=clipped.noise.sigma))
    return {IMAGE_COLUMN: planes, "outside_fraction": outside.max(axis=1), "zero_fraction": zero.max(axis=1), **columns}
