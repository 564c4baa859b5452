"""The one door to HEALPix: a thin, NESTED-only shim over healpy.

Tiling, the mock sky and the catalogue writer call these functions and never import
healpy themselves, so the engine can be swapped (hats did the same when it moved from
healpy to cdshealpix, hats PR #434) without touching any caller. Every function takes an
*order* (``nside = 2**order``) rather than an nside, works in degrees (``lonlat=True``)
and uses the NESTED scheme, whose hierarchy makes parents and children plain bit shifts.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
import numpy.typing as npt

MAX_ORDER = 29
"""Deepest order whose NESTED indices fit in int64 (hats' ``_healpix_29``)."""

ArrayLike = npt.ArrayLike
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------
# Arithmetic (no healpy needed: the NESTED hierarchy is bit shifts)
# --------------------------------------------------------------------------------------


def order2nside(order: int) -> int:
    """``nside = 2**order``."""
    return 1 << int(order)


def order2npix(order: int) -> int:
    """Number of pixels on the whole sky at ``order``: ``12 * 4**order``."""
    return 12 * (1 << (2 * int(order)))


def pixel_area_deg2(order: int) -> float:
    """Area of one pixel at ``order`` in square degrees (all HEALPix pixels have equal area)."""
    return float(hp.nside2pixarea(order2nside(order), degrees=True))


def resolution_arcmin(order: int) -> float:
    """Square root of the pixel area in arcminutes: the nominal pixel spacing."""
    return float(hp.nside2resol(order2nside(order), arcmin=True))


def max_pixel_radius_deg(order: int) -> float:
    """Largest angle between a pixel's centre and its corners at ``order``, in degrees.

    Every point of a pixel lies within this angle of the pixel centre, which makes it the
    safe margin for conservative pixel-level cuts.
    """
    return float(hp.max_pixrad(order2nside(order), degrees=True))


def parent(ipix: ArrayLike, *, order: int, parent_order: int) -> IntArray:
    """NESTED index at ``parent_order`` of the pixels ``ipix`` at ``order`` (``>> 2*dk``).

    Parameters
    ----------
    ipix : array_like
        NESTED pixel indices at ``order``.
    order : int
        Their order.
    parent_order : int
        Order of the parents, at most ``order``.

    Returns
    -------
    numpy.ndarray
        int64 parent indices, shaped like ``ipix``.

    Raises
    ------
    ValueError
        ``parent_order`` is deeper than ``order``.
    """
    if parent_order > order:
        raise ValueError(f"parent_order {parent_order} is deeper than order {order}")
    return np.asarray(ipix, dtype=np.int64) >> (2 * (order - parent_order))


def children(ipix: ArrayLike, *, order: int, child_order: int) -> IntArray:
    """NESTED indices at ``child_order`` of the pixels ``ipix`` at ``order``.

    Returns shape ``ipix.shape + (4**dk,)``; the children of one pixel are the contiguous
    range ``[ipix << 2*dk, (ipix + 1) << 2*dk)``.

    Parameters
    ----------
    ipix : array_like
        NESTED pixel indices at ``order``.
    order : int
        Their order.
    child_order : int
        Order of the children, at least ``order``.

    Returns
    -------
    numpy.ndarray
        int64 child indices, ascending along the last axis.

    Raises
    ------
    ValueError
        ``child_order`` is shallower than ``order``.
    """
    if child_order < order:
        raise ValueError(f"child_order {child_order} is shallower than order {order}")
    shift = 2 * (child_order - order)
    base = np.asarray(ipix, dtype=np.int64)[..., None] << shift
    return base + np.arange(1 << shift, dtype=np.int64)


# --------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------


def ang2pix(order: int, ra_deg: ArrayLike, dec_deg: ArrayLike) -> IntArray:
    """NESTED pixel at ``order`` containing each (RA, Dec) in degrees.

    Parameters
    ----------
    order : int
        HEALPix order (``nside = 2**order``).
    ra_deg, dec_deg : array_like
        ICRS positions in degrees, broadcast together.

    Returns
    -------
    numpy.ndarray
        int64 NESTED indices, in the broadcast shape.
    """
    ipix = hp.ang2pix(order2nside(order), np.asarray(ra_deg, float), np.asarray(dec_deg, float), nest=True, lonlat=True)
    return np.asarray(ipix, dtype=np.int64)


def pix2ang(order: int, ipix: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(RA, Dec) in degrees of the centres of NESTED pixels ``ipix`` at ``order``."""
    ra, dec = hp.pix2ang(order2nside(order), np.asarray(ipix, dtype=np.int64), nest=True, lonlat=True)
    return np.asarray(ra, float), np.asarray(dec, float)


def _vector(ra_deg: ArrayLike, dec_deg: ArrayLike) -> FloatArray:
    """healpy's unit vector of a position (``survey.sky.geometry.unit_vectors`` is the public one)."""
    return np.asarray(hp.ang2vec(np.asarray(ra_deg, float), np.asarray(dec_deg, float), lonlat=True), float)


def boundaries(order: int, ipix: ArrayLike, *, step: int = 1) -> FloatArray:
    """Unit vectors along the edges of NESTED pixels, shape (N, 3, 4*step).

    ``step=1`` gives the four corners; HEALPix edges are not great circles, so callers that
    need the full extent of a pixel ask for a few points per edge.

    Parameters
    ----------
    order : int
        HEALPix order of the pixels.
    ipix : array_like
        NESTED indices at ``order``, a scalar or 1-D.
    step : int
        Points per edge.

    Returns
    -------
    numpy.ndarray
        float64, shape (N, 3, 4*step): for each pixel, the x, y, z rows of its edge points.
    """
    ipix = np.atleast_1d(np.asarray(ipix, dtype=np.int64))
    vec = hp.boundaries(order2nside(order), ipix, step=step, nest=True)
    return np.asarray(vec, float).reshape(len(ipix), 3, 4 * step)


# --------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------


def query_disc(order: int, *, ra_deg: float, dec_deg: float, radius_deg: float, inclusive: bool = True) -> IntArray:
    """NESTED pixels at ``order`` that overlap (``inclusive``) or are centred in a disc.

    ``inclusive=True`` may return a few pixels that only come near the disc: a superset,
    which is what work planning needs.

    Parameters
    ----------
    order : int
        HEALPix order of the pixels.
    ra_deg, dec_deg : float
        Centre of the disc, ICRS degrees.
    radius_deg : float
        Radius of the disc in degrees.
    inclusive : bool
        Return every pixel that overlaps the disc (True), or only those whose centre is in
        it.

    Returns
    -------
    numpy.ndarray
        int64 NESTED indices at ``order``, ascending.
    """
    vec = _vector(ra_deg, dec_deg)
    ipix = hp.query_disc(order2nside(order), vec, np.radians(radius_deg), inclusive=inclusive, nest=True)
    return np.sort(np.asarray(ipix, dtype=np.int64))


def get_all_neighbours(order: int, ipix: ArrayLike) -> IntArray:
    """The 8 neighbours (SW, W, NW, N, NE, E, SE, S) of each pixel, shape (N, 8); -1 where missing.

    healpy returns (8, N); this transposes so that row ``i`` belongs to ``ipix[i]``.
    """
    ipix = np.atleast_1d(np.asarray(ipix, dtype=np.int64))
    neighbours = hp.get_all_neighbours(order2nside(order), ipix, nest=True)
    return np.asarray(neighbours, dtype=np.int64).reshape(8, len(ipix)).T.copy()
