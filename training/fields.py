"""Real GLEAM fields as backgrounds: where a window fits, where clusters are, where the bright compact sources are.

Each of the paper's 46 sources comes as four band files a few degrees wide. Besides the
source at the centre, every field is real sky: the background into which halos are
injected, from which empty and hard negatives are drawn, and over which blind scans count
false candidates. A ``Field`` holds, once:

- the clipped bands (``survey.model.preprocess.clip_field``), so every cut-out taken from it
  is the survey's own model input;
- the usable windows: HEALPix pixel centres at the survey's window order where all four
  bands give a full cut-out (the 170-231 MHz file, 2.33 deg wide, sets the limit);
- which of those lie within ``EXCLUSION_RADIUS_ARCMIN`` of a catalogued cluster (PSZ2,
  MCXC, MGCLS, COSMOS groups) or of a halo source's own centre: real or possible halos, never
  negatives and never counted as false candidates;
- the bright compact sources (peaks of the 139-170 MHz band), the hard negatives a
  classifier must learn to refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from astropy.table import Table
from scipy import ndimage

from survey.catalogs.load import load_catalog
from survey.defaults import CATALOG_NAMES, DEFAULT_WINDOW_ORDER
from survey.images.base import pixel_to_world, world_to_pixel
from survey.images.discovery import GleamSource
from survey.model.cutouts import cutout_corners
from survey.model.preprocess import ClippedField, clip_field
from survey.sky import healpix
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE
from survey.sky.geometry import angular_distance_deg

EXCLUSION_RADIUS_ARCMIN = 15.0
"""Around a catalogued cluster or a halo source, windows are neither negatives nor false candidates."""

COMPACT_BAND = "139-170"
"""Band in which compact sources are found: the middle of the range, 34" pixels and a 2.6' beam."""

COMPACT_MIN_SNR = 8.0
"""A compact source peaks at least this many noise sigmas above zero in ``COMPACT_BAND``."""

FIELD_SEARCH_RADIUS_DEG = 1.8
"""Windows are looked for within this distance of the field centre (the files are at most 4.7 deg wide)."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Field:
    """One real field as a background.

    Attributes
    ----------
    name : str
        The source's name (``"A2744"``).
    label : int
        1 = halo source, 0 = non-halo source.
    group : int
        Overlap group (``survey.sky.groups``): fields of one group share sky.
    ra_deg, dec_deg : float
        The field centre: the source.
    clipped : ClippedField
        The four bands after the shared clip (what every cut-out is taken from).
    ipix : numpy.ndarray
        int64 usable windows at ``window_order``: all four bands give a full cut-out.
    ra_win, dec_win : numpy.ndarray
        Their centres, degrees.
    excluded : numpy.ndarray
        True for windows within ``EXCLUSION_RADIUS_ARCMIN`` of a catalogued cluster, or of
        the centre of a halo source.
    compact_ra, compact_dec : numpy.ndarray
        Bright compact sources outside the exclusions (hard negatives), degrees.
    window_order : int
        HEALPix order of the windows.
    """

    name: str
    label: int
    group: int
    ra_deg: float
    dec_deg: float
    clipped: ClippedField
    ipix: npt.NDArray[np.int64]
    ra_win: FloatArray
    dec_win: FloatArray
    excluded: BoolArray
    compact_ra: FloatArray
    compact_dec: FloatArray
    window_order: int

    @property
    def background_area_deg2(self) -> float:
        """Sky area of the usable windows outside the exclusions: what a false-candidate rate divides by."""
        return float(np.count_nonzero(~self.excluded) * healpix.pixel_area_deg2(self.window_order))



def near_any(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, ra_ref: npt.ArrayLike, dec_ref: npt.ArrayLike, *,
             radius_arcmin: float) -> BoolArray:
    """True where a position lies within ``radius_arcmin`` of any reference position.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Positions to test, degrees.
    ra_ref, dec_ref : array_like
        Reference positions, degrees.
    radius_arcmin : float
        The radius.

    Returns
    -------
    numpy.ndarray
        Boolean, one per position.
    """
    ra, dec = np.atleast_1d(np.asarray(ra_deg, float)), np.atleast_1d(np.asarray(dec_deg, float))
    ra_ref, dec_ref = np.atleast_1d(np.asarray(ra_ref, float)), np.atleast_1d(np.asarray(dec_ref, float))
    if ra_ref.size == 0 or ra.size == 0:
        return np.zeros(ra.shape, bool)
    near = np.zeros(ra.shape, bool)
    for r, d in zip(ra_ref, dec_ref):
        near |= angular_distance_deg(ra, dec, r, d) * 60.0 <= radius_arcmin
    return near


def full_cutout_mask(clipped: ClippedField, ra_deg: FloatArray, dec_deg: FloatArray) -> BoolArray:
    """True where every band's 64-pixel cut-out lies wholly inside its image (the corners the builder uses).

    Parameters
    ----------
    clipped : ClippedField
        The field's bands.
    ra_deg, dec_deg : numpy.ndarray
        Window centres, degrees.

    Returns
    -------
    numpy.ndarray
        Boolean, one per window.
    """
    inside = np.ones(np.shape(ra_deg), bool)
    for band in BAND_NAMES:
        image = clipped.images[band]
        ny, nx = image.data.shape
        x, y = world_to_pixel(image.wcs, ra_deg, dec_deg)
        finite = np.isfinite(x) & np.isfinite(y)
        x0, y0 = cutout_corners(np.where(finite, x, -1e9), np.where(finite, y, -1e9))
        inside &= finite & (x0 >= 0) & (y0 >= 0) & (x0 + CUTOUT_SIZE <= nx) & (y0 + CUTOUT_SIZE <= ny)
    return inside


def compact_sources(clipped: ClippedField, *, band: str = COMPACT_BAND, min_snr: float = COMPACT_MIN_SNR
                    ) -> tuple[FloatArray, FloatArray]:
    """Positions of local maxima above ``min_snr`` sigma in one band: the field's bright compact sources.

    Parameters
    ----------
    clipped : ClippedField
        The field's clipped bands.
    band : str
        Band searched (default ``COMPACT_BAND``).
    min_snr : float
        Peak threshold in units of the band's noise sigma.

    Returns
    -------
    ra_deg, dec_deg : numpy.ndarray
        One position per peak (a 5x5-pixel local maximum), degrees.
    """
    pixels = clipped.clipped[band].pixels
    sigma = clipped.clipped[band].noise.sigma
    peaks = (pixels == ndimage.maximum_filter(pixels, size=5)) & (pixels >= min_snr * sigma)
    y, x = np.nonzero(peaks)
    ra, dec = pixel_to_world(clipped.images[band].wcs, x, y)
    return ra % 360.0, dec


def catalogued_clusters(names: Sequence[str] = CATALOG_NAMES) -> tuple[FloatArray, FloatArray]:
    """(ra, dec) of every cluster of the local catalogues: the positions no negative may come from."""
    tables = [load_catalog(name) for name in names]
    ra = np.concatenate([np.asarray(t["ra"], float) for t in tables])
    dec = np.concatenate([np.asarray(t["dec"], float) for t in tables])
    return ra, dec


def make_field(source: GleamSource, *, group: int, clusters: tuple[FloatArray, FloatArray],
               window_order: int = DEFAULT_WINDOW_ORDER) -> Field:
    """A source's field as a background (see ``Field``).

    Parameters
    ----------
    source : GleamSource
        The source with its four bands (label must be set).
    group : int
        Its overlap group.
    clusters : tuple of numpy.ndarray
        (ra, dec) of catalogued clusters (``catalogued_clusters``).
    window_order : int
        HEALPix order of the windows (the survey's default).

    Returns
    -------
    Field
    """
    clipped = clip_field(source.images, key=source.name)
    ra0, dec0 = source.centre_radec
    ipix = healpix.query_disc(window_order, ra_deg=ra0, dec_deg=dec0, radius_deg=FIELD_SEARCH_RADIUS_DEG,
                              inclusive=False)
    ra, dec = healpix.pix2ang(window_order, ipix)
    usable = full_cutout_mask(clipped, ra, dec)
    ipix, ra, dec = ipix[usable], ra[usable], dec[usable]
    centres_ra = np.concatenate([clusters[0], [ra0] if source.label == 1 else []])
    centres_dec = np.concatenate([clusters[1], [dec0] if source.label == 1 else []])
    excluded = near_any(ra, dec, centres_ra, centres_dec, radius_arcmin=EXCLUSION_RADIUS_ARCMIN)
    cra, cdec = compact_sources(clipped)
    keep = full_cutout_mask(clipped, cra, cdec) & ~near_any(cra, cdec, centres_ra, centres_dec,
                                                            radius_arcmin=EXCLUSION_RADIUS_ARCMIN)
    return Field(source.name, int(source.label), int(group), float(ra0), float(dec0), clipped, ipix, ra, dec,
                 excluded, cra[keep], cdec[keep], window_order)


def load_fields(sources: Sequence[GleamSource], groups: Sequence[int], *,
                window_order: int = DEFAULT_WINDOW_ORDER, clusters: tuple[FloatArray, FloatArray] | None = None
                ) -> list[Field]:
    """Every source's field (``make_field``), with the local catalogues' clusters as exclusions.

    Parameters
    ----------
    sources : sequence of GleamSource
        Labelled sources (``survey.images.discovery.scan_directory``).
    groups : sequence of int
        Overlap group of each source.
    window_order : int
        HEALPix order of the windows.
    clusters : tuple of numpy.ndarray, optional
        (ra, dec) of the clusters to exclude; default ``catalogued_clusters()``.

    Returns
    -------
    list of Field
    """
    clusters = catalogued_clusters() if clusters is None else clusters
    return [make_field(s, group=g, clusters=clusters, window_order=window_order) for s, g in zip(sources, groups)]


def field_summary(fields: Sequence[Field]) -> Table:
    """One row per field: windows, background area, exclusions and compact sources (for reports)."""
    return Table({
        "name": [f.name for f in fields],
        "label": [f.label for f in fields],
        "group": [f.group for f in fields],
        "windows": [f.ipix.size for f in fields],
        "excluded": [int(f.excluded.sum()) for f in fields],
        "background_deg2": [round(f.background_area_deg2, 3) for f in fields],
        "compact": [f.compact_ra.size for f in fields],
    })


def unique_windows(fields: Sequence[Field]) -> Mapping[str, npt.NDArray[np.bool_]]:
    """For each field, True on windows not already held by an earlier field of the list (overlapping fields).

    Counting each patch of sky once keeps a false-candidate rate honest when two fields of
    one overlap group are scanned together.
    """
    seen: set[int] = set()
    first = {}
    for f in fields:
        mask = np.array([int(p) not in seen for p in f.ipix.tolist()], bool)
        seen.update(f.ipix.tolist())
        first[f.name] = mask
    return first


def sources_by_name(sources: Sequence[GleamSource]) -> dict[str, GleamSource]:
    """Sources keyed by name (names are unique in the paper's set)."""
    return {s.name: s for s in sources}


def data_sources(directory: str | Path) -> list[GleamSource]:
    """The labelled sources under ``directory`` (the paper's folders), in discovery order."""
    from survey.images.discovery import scan_directory

    return [s for s in scan_directory(directory).sources if s.label is not None]
