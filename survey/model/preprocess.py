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
from survey.model import kernels
from survey.model.cutouts import cutout_corners, cutout_fractions, finite_image, gather_into
from survey.model.noise import ClippedBand, clip_band
from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE, band_column

IMAGE_COLUMN = "image"
"""The cut-outs ``cut_windows`` returns: (N, 4, 64, 64) band planes, clipped Jy/beam, or the
model's input when the card's normalisation is given."""

NOISE_COLUMNS = tuple(band_column("noise", b) for b in BAND_NAMES)
"""``cut_windows``'s per-band noise sigma columns, in band order."""

PEAK_COLUMNS = tuple(band_column("peak", b) for b in BAND_NAMES)
"""``cut_windows``'s per-band peak columns (brightest pixel of each cut-out, Jy/beam), in band order."""

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
    _any_no_data: dict[str, bool] = field(default_factory=dict, repr=False)

    def band_pixels(self, band: str, normalisation: Normalisation | None) -> tuple[np.ndarray, float]:
        """One band's pixels as cut-outs take them (float32, finite), and the value of pixels outside the image.

        Kept, so cutting a tile's windows part by part normalises (and checks) each band once.
        """
        clipped = self.clipped[band]
        if normalisation is None:
            return clipped.pixels, 0.0  # clip_band's output: float32, every pixel finite
        key = (band, normalisation.id)
        if key not in self._normalised:
            self._normalised[key] = normalise_field(normalisation, clipped.pixels, noise=clipped.noise.sigma)
        return self._normalised[key], normalisation.zero_level

    def no_data(self, band: str) -> np.ndarray | None:
        """The band's no-data mask, or None when it marks nothing (asked once per band, not per batch)."""
        if band not in self._any_no_data:
            self._any_no_data[band] = bool(np.any(self.clipped[band].no_data))
        return self.clipped[band].no_data if self._any_no_data[band] else None


def normalise_field(normalisation: Normalisation, pixels: np.ndarray, *, noise: float) -> np.ndarray:
    """``normalisation.apply(pixels, noise=noise)`` of a clipped field, as cut-outs read it, through its non-zero pixels.

    A clipped field is mostly exact zeros, which all map to one value, and the scaling acts
    pixel by pixel: so one compiled pass fills the field with that value and collects the
    surviving pixels (``kernels.split_zeros``), the scaling runs on those alone, and a second
    pass writes them back (numpy's ``apply`` on the whole field makes about six passes over
    it). A pixel the scaling makes non-finite reads ``zero_level``, as ``cutouts.finite_image``
    makes it. Equal to ``finite_image(apply(...))`` value for value, which is what it runs
    with ``HALO_SURVEY_NUMBA=0`` (the builder's reference path).

    Parameters
    ----------
    normalisation : Normalisation
        The model card's scaling.
    pixels : numpy.ndarray
        A clipped band field (``clip_band``), Jy/beam.
    noise : float
        The band's noise sigma (``snr-log-sym`` divides by it).

    Returns
    -------
    numpy.ndarray
        float32, shaped like ``pixels``, every pixel finite: the model's input scale.
    """
    fill = normalisation.zero_level  # apply(0), whatever the noise
    if not kernels.enabled():
        return finite_image(normalisation.apply(pixels, noise=noise), fill)
    flat = np.ascontiguousarray(pixels, np.float32).reshape(-1)
    out = np.empty(flat.size, np.float32)
    indices = np.empty(flat.size, np.int64)
    values = np.empty(flat.size, np.float32)
    kept = kernels.split_zeros(flat, fill, out, indices, values)
    kernels.scatter_finite(out, indices[:kept], normalisation.apply(values[:kept], noise=noise), fill)
    return out.reshape(np.shape(pixels))


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


def batch_buffer(windows: int) -> np.ndarray:
    """A float32 buffer for ``cut_windows(..., out=)`` of up to ``windows`` windows."""
    return np.empty((windows, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE), np.float32)


def batch_view(buffer: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The first ``shape[0]`` windows of a ``batch_buffer``; ValueError if it is too small or shaped otherwise."""
    if buffer.dtype != np.float32 or buffer.shape[1:] != shape[1:] or buffer.shape[0] < shape[0]:
        raise ValueError(f"a buffer of {buffer.shape} {buffer.dtype} cannot hold {shape} float32 cut-outs")
    return buffer[: shape[0]]


@dataclass(frozen=True)
class WindowGeometry:
    """Where each band's cut-outs of some windows start, and how much of each lies outside its image or in no-data.

    Everything a cut needs besides the pixels. A survey actor cuts its tile 64 windows at a
    time; the WCS transforms, corners and fractions cost about as much for 64 windows as for
    a thousand, so the tile computes them once (``window_geometry``) and each part takes its
    slice (``part``).

    Attributes
    ----------
    corners : dict of str to (numpy.ndarray, numpy.ndarray)
        By band: int64 column and row of each cut-out's first pixel (``cutout_corners``).
    outside_fraction, zero_fraction : numpy.ndarray
        (N,) float32, the worst band's.
    """

    corners: dict[str, tuple[np.ndarray, np.ndarray]]
    outside_fraction: np.ndarray
    zero_fraction: np.ndarray

    def __len__(self) -> int:
        return len(self.outside_fraction)

    def part(self, index: slice) -> "WindowGeometry":
        """The geometry of the windows ``index`` selects."""
        return WindowGeometry({band: (x0[index], y0[index]) for band, (x0, y0) in self.corners.items()},
                              self.outside_fraction[index], self.zero_fraction[index])


def window_geometry(field: ClippedField, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> WindowGeometry:
    """The ``WindowGeometry`` of windows centred on the given sky positions: one WCS transform per band.

    Parameters
    ----------
    field : ClippedField
        The field the windows lie in.
    ra_deg, dec_deg : array_like
        Window centres, ICRS degrees; scalars or 1-D arrays of one length.

    Returns
    -------
    WindowGeometry
    """
    ra = np.atleast_1d(np.asarray(ra_deg, float))
    dec = np.atleast_1d(np.asarray(dec_deg, float))
    corners = {}
    outside = np.zeros((ra.size, len(BAND_NAMES)), np.float32)
    zero = np.zeros((ra.size, len(BAND_NAMES)), np.float32)
    for channel, band in enumerate(BAND_NAMES):
        x0, y0 = cutout_corners(*world_to_pixel(field.images[band].wcs, ra, dec), size=CUTOUT_SIZE)
        corners[band] = (x0, y0)
        outside[:, channel], zero[:, channel] = cutout_fractions(field.clipped[band].pixels.shape, x0, y0,
                                                                 size=CUTOUT_SIZE, zero_mask=field.no_data(band))
    return WindowGeometry(corners, outside.max(axis=1), zero.max(axis=1))


def cut_windows(
    field: ClippedField, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *, normalisation: Normalisation | None = None,
    out: np.ndarray | None = None, geometry: WindowGeometry | None = None,
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
    out : numpy.ndarray, optional
        float32 array of at least (N, 4, 64, 64) to cut into: a survey actor reuses one
        batch's buffer for every batch (fresh pages cost about as much as the cut itself).
        ``image`` is then a view of it, valid until the caller cuts the next batch.
    geometry : WindowGeometry, optional
        ``window_geometry`` of these windows, when the caller has it already (a tile cut in parts).

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
    if geometry is None:
        geometry = window_geometry(field, ra, dec)
    elif len(geometry) != n:
        raise ValueError(f"the geometry of {len(geometry)} windows was given for {n}")
    shape = (n, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE)
    planes = np.empty(shape, np.float32) if out is None else batch_view(out, shape)
    peaks = np.empty((len(BAND_NAMES), n), np.float32)
    sigmas = np.array([field.clipped[band].noise.sigma for band in BAND_NAMES], np.float32)
    for channel, band in enumerate(BAND_NAMES):
        pixels, fill = field.band_pixels(band, normalisation)
        # One gather per band: no per-window Python work.
        peaks[channel] = gather_into(planes, channel, pixels, *geometry.corners[band], fill=fill)
    if normalisation is not None:
        # The normalisation rises monotonically, so the brightest normalised pixel is the
        # brightest one; all bands in one call (a survey actor cuts 64 windows at a time).
        peaks = normalisation.invert(peaks, noise=sigmas[:, None])
    columns = {}
    for channel in range(len(BAND_NAMES)):
        columns[NOISE_COLUMNS[channel]] = np.full(n, sigmas[channel])
        columns[PEAK_COLUMNS[channel]] = peaks[channel]
    return {IMAGE_COLUMN: planes, "outside_fraction": geometry.outside_fraction,
            "zero_fraction": geometry.zero_fraction, **columns}
