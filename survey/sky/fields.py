"""Image fields: the square patches of sky an image source must serve, for a tile or a target.

A field is the unit of reading. A blind scan reads one field per tile and cuts all of the
tile's windows from it; ``targets`` reads one small field per catalogued cluster. Either
way the field must be wide enough that every window gets a full 64-pixel cut-out in every
band, whose footprints differ (56" to 28" pixels): ``CUTOUT_MARGIN_DEG`` says how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from survey.defaults import DEFAULT_TILE_ORDER
from survey.exceptions import BadInputError
from survey.sky import healpix
from survey.sky.bands import BANDS, CUTOUT_SIZE
from survey.sky.geometry import tangent_plane_deg
from survey.sky.tiling import check_tile

CUTOUT_MARGIN_DEG = max((CUTOUT_SIZE / 2 + 1) * band.pixel_deg for band in BANDS)
"""Margin around a tile so every window gets a full cut-out in every band: half the widest
cut-out (64 x 56" / 2 = 0.498 deg at 72-103 MHz) plus one pixel, because a cut-out's corner
pixel is the window position rounded to the image grid."""

TARGET_FIELD_WIDTH_DEG = 2.0 * CUTOUT_MARGIN_DEG
"""Field read around one target: the widest band's cut-out plus a pixel on every side."""


@dataclass(frozen=True)
class FieldRequest:
    """A square patch of sky that an ImageSource must cover in all four bands.

    Attributes
    ----------
    key : str
        Names the request in messages, cache keys and manifests (``"tile 5/1234"``, a cluster name).
    ra_deg, dec_deg : float
        Field centre (ICRS, degrees).
    width_deg : float
        Side of the square field, cut-out margin included.
    """

    key: str
    ra_deg: float
    dec_deg: float
    width_deg: float


def tile_field(
    tile: int, *, tile_order: int = DEFAULT_TILE_ORDER, margin_deg: float = CUTOUT_MARGIN_DEG
) -> tuple[float, float, float]:
    """Centre and side (degrees) of the square north-up TAN field a tile's images must cover.

    The side is twice the tile's largest tangent-plane offset from its centre, measured on
    points along its curved HEALPix edges, plus twice ``margin_deg`` (default: half the
    widest band's cut-out plus a pixel), so every window of the tile gets a full cut-out in
    every band. Works from unit vectors, so tiles at the poles and across RA = 0 are right.

    Parameters
    ----------
    tile : int
        NESTED index of the tile at ``tile_order``.
    tile_order : int
        HEALPix NESTED order of the tiles.
    margin_deg : float
        Extra width on each side in degrees, at least 0.

    Returns
    -------
    ra_deg, dec_deg, width_deg : float
        The tile's HEALPix centre (ICRS degrees) and the side of the square field in degrees.

    Raises
    ------
    BadInputError
        ``tile`` is not a pixel at ``tile_order``, or ``margin_deg`` is negative.
    """
    check_tile(tile, tile_order=tile_order)
    if margin_deg < 0:
        raise BadInputError(f"tile {tile_order}/{tile}", f"margin_deg must be >= 0, got {margin_deg}")
    ra, dec = (float(a[0]) for a in healpix.pix2ang(tile_order, [tile]))
    # 16 points per edge: HEALPix edges bow by up to a few percent of the tile size.
    edge = healpix.boundaries(tile_order, tile, step=16)[0].T
    xi, eta = tangent_plane_deg(edge, ra0_deg=ra, dec0_deg=dec)
    half = float(max(np.abs(xi).max(), np.abs(eta).max()))
    return ra, dec, 2.0 * (half + margin_deg)


def tile_request(
    tile: int, *, tile_order: int = DEFAULT_TILE_ORDER, margin_deg: float = CUTOUT_MARGIN_DEG
) -> FieldRequest:
    """The FieldRequest an ImageSource must serve for ``tile`` (key ``"tile ORDER/ID"``).

    Parameters
    ----------
    tile : int
        NESTED index of the tile at ``tile_order``.
    tile_order : int
        HEALPix NESTED order of the tiles.
    margin_deg : float
        Extra width on each side in degrees (see ``tile_field``).

    Returns
    -------
    FieldRequest
        Centre and side from ``tile_field``.

    Raises
    ------
    BadInputError
        ``tile`` is not a pixel at ``tile_order``, or ``margin_deg`` is negative.
    """
    ra, dec, width = tile_field(tile, tile_order=tile_order, margin_deg=margin_deg)
    return FieldRequest(key=f"tile {tile_order}/{tile}", ra_deg=ra, dec_deg=dec, width_deg=width)


def target_request(key: str, *, ra_deg: float, dec_deg: float) -> FieldRequest:
    """The small field read around one target (``TARGET_FIELD_WIDTH_DEG`` wide).

    Parameters
    ----------
    key : str
        Names the request in messages and cache keys (the tile and the target's name).
    ra_deg, dec_deg : float
        The target's position, ICRS degrees: the field's centre.

    Returns
    -------
    FieldRequest
        A square field ``TARGET_FIELD_WIDTH_DEG`` on a side.
    """
    return FieldRequest(key=key, ra_deg=ra_deg, dec_deg=dec_deg, width_deg=TARGET_FIELD_WIDTH_DEG)
