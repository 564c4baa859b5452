"""HEALPix work units for a sky survey: tiles, the windows inside them, and the sky regions.

A survey scans *windows*: cut-out centres placed on the HEALPix pixel centres of a fine
NESTED order (default 10: 3.44' spacing; order 9, 6.87', is the coarsest whose spacing stays
within a quarter of the narrowest 64-px cut-out, 29.9' at 170-231 MHz). The classifiers score a halo well
only within a few arcminutes of a cut-out's centre, hence the finer default
(``survey.defaults.DEFAULT_WINDOW_ORDER`` gives the measurement). Windows are
grouped into *tiles*, the pixels of a coarse order (default 5, ~1.8 deg), which are the
units of work: one image field per tile, all its windows cut from it. A window belongs to
exactly one tile, its NESTED parent, so the tiles partition the windows with no seams and
no duplicates, and neighbouring tiles need only talk for non-maximum suppression
(``window_neighbours``).

Regions say which windows to scan: ``parse_region("gleam" | "allsky" |
"cone:RA,DEC,RADIUS_DEG" | "tiles:ORDER:ID,ID..." | "tiles:ORDER:@FILE")``.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from survey.defaults import DEFAULT_TILE_ORDER, DEFAULT_WINDOW_ORDER
from survey.exceptions import BadInputError, NoDetectionsWarning
from survey.sky import healpix
from survey.sky.footprint import DEC_MAX_DEG, GALACTIC_LATITUDE_MIN_DEG, galactic_latitude_deg, in_gleam_footprint
from survey.sky.geometry import angular_distance_deg

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_ORDER_GAP = 10
"""At most 4**10 (about a million) windows per tile, so one tile always fits in memory."""

_PLAN_CHUNK_WINDOWS = 1 << 18
"""Windows evaluated per vectorised step of ``plan``: keeps its peak memory to ~30 MB
(the footprint's Galactic-latitude transform makes several temporaries per window)."""


# --------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------


class Region(ABC):
    """A part of the sky to scan: which window centres are in, and which tiles to visit."""

    text: str
    """The region as the user wrote it (``parse_region`` input); used in messages and manifests."""

    @abstractmethod
    def contains(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        """True where a position (degrees) lies in the region."""

    @abstractmethod
    def candidate_tiles(self, *, tile_order: int) -> IntArray:
        """Sorted tiles at ``tile_order`` that *may* hold windows of the region (a superset).

        ``plan`` counts the windows and keeps only the non-empty tiles.
        """

    def describe(self) -> str:
        """One line for plans and manifests."""
        return self.text


@dataclass(frozen=True)
class AllSkyRegion(Region):
    """The whole sphere."""

    text: str = "allsky"

    def contains(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        return np.ones(np.broadcast(np.asarray(ra_deg), np.asarray(dec_deg)).shape, bool)

    def candidate_tiles(self, *, tile_order: int) -> IntArray:
        return np.arange(healpix.order2npix(tile_order), dtype=np.int64)

    def describe(self) -> str:
        return "allsky (the whole sphere)"


@dataclass(frozen=True)
class GleamRegion(Region):
    """The GLEAM extragalactic footprint (``survey.sky.footprint.in_gleam_footprint``)."""

    text: str = "gleam"
    mask_magellanic: bool = True
    """Also drop the Magellanic Clouds, which the GLEAM extragalactic catalogue excludes."""

    def contains(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        return in_gleam_footprint(ra_deg, dec_deg, mask_magellanic=self.mask_magellanic)

    def candidate_tiles(self, *, tile_order: int) -> IntArray:
        # A tile's windows lie within max_pixel_radius of its centre, so widening the Dec
        # and latitude cuts by that radius keeps every tile that could hold a window. The
        # Clouds are left to plan's exact per-window count, which drops the tiles they cover.
        tiles = np.arange(healpix.order2npix(tile_order), dtype=np.int64)
        ra, dec = healpix.pix2ang(tile_order, tiles)
        radius = healpix.max_pixel_radius_deg(tile_order)
        latitude = np.abs(galactic_latitude_deg(ra, dec))
        near = (dec < DEC_MAX_DEG + radius) & (latitude > GALACTIC_LATITUDE_MIN_DEG - radius)
        return tiles[near]

    def describe(self) -> str:
        clouds = ", Magellanic Clouds masked" if self.mask_magellanic else ""
        return f"gleam (Dec < {DEC_MAX_DEG:g} deg, |b| > {GALACTIC_LATITUDE_MIN_DEG:g} deg{clouds})"


@dataclass(frozen=True)
class ConeRegion(Region):
    """A disc on the sky."""

    ra_deg: float
    dec_deg: float
    radius_deg: float
    text: str = ""

    def __post_init__(self) -> None:
        where = f"region {self.text or 'cone'!r}"
        if not 0.0 <= self.ra_deg < 360.0:
            raise BadInputError(where, f"RA {self.ra_deg} deg is outside [0, 360)")
        if not -90.0 <= self.dec_deg <= 90.0:
            raise BadInputError(where, f"Dec {self.dec_deg} deg is outside [-90, 90]")
        if not 0.0 < self.radius_deg <= 180.0:
            raise BadInputError(where, f"radius {self.radius_deg} deg must be in (0, 180]")
        if not self.text:
            object.__setattr__(self, "text", f"cone:{self.ra_deg:g},{self.dec_deg:g},{self.radius_deg:g}")

    def contains(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        return angular_distance_deg(ra_deg, dec_deg, self.ra_deg, self.dec_deg) <= self.radius_deg

    def candidate_tiles(self, *, tile_order: int) -> IntArray:
        return healpix.query_disc(
            tile_order, ra_deg=self.ra_deg, dec_deg=self.dec_deg, radius_deg=self.radius_deg, inclusive=True
        )

    def describe(self) -> str:
        return f"{self.text} (disc of radius {self.radius_deg:g} deg)"


@dataclass(frozen=True, eq=False)
class TilesRegion(Region):
    """An explicit list of HEALPix NESTED pixels at some order (e.g. tiles left over from a run)."""

    order: int
    ids: IntArray
    text: str = ""

    def __post_init__(self) -> None:
        where = f"region {self.text or 'tiles'!r}"
        if not 0 <= self.order <= healpix.MAX_ORDER:
            raise BadInputError(where, f"order {self.order} is outside [0, {healpix.MAX_ORDER}]")
        ids = np.unique(np.asarray(self.ids, dtype=np.int64))
        if ids.size == 0:
            raise BadInputError(where, "no tile ids given; write tiles:ORDER:ID[,ID...] or tiles:ORDER:@FILE")
        bad = ids[(ids < 0) | (ids >= healpix.order2npix(self.order))]
        if bad.size:
            last = healpix.order2npix(self.order) - 1
            raise BadInputError(where, f"tile id {bad[0]} does not exist at order {self.order} (0..{last})")
        object.__setattr__(self, "ids", ids)
        if not self.text:
            shown = ",".join(map(str, ids[:5])) + ("..." if ids.size > 5 else "")
            object.__setattr__(self, "text", f"tiles:{self.order}:{shown}")

    def contains(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        return np.isin(healpix.ang2pix(self.order, ra_deg, dec_deg), self.ids)

    def candidate_tiles(self, *, tile_order: int) -> IntArray:
        if self.order >= tile_order:
            return np.unique(healpix.parent(self.ids, order=self.order, parent_order=tile_order))
        return healpix.children(self.ids, order=self.order, child_order=tile_order).ravel()

    def describe(self) -> str:
        return f"{self.text} ({self.ids.size} HEALPix pixels at order {self.order})"


def parse_region(text: str) -> Region:
    """Turn a ``--region`` string into a Region.

    Parameters
    ----------
    text : str
        One of ``"gleam"`` (the GLEAM extragalactic footprint, Magellanic Clouds masked),
        ``"allsky"``, ``"cone:RA,DEC,RADIUS_DEG"`` (degrees), ``"tiles:ORDER:ID[,ID...]"``
        or ``"tiles:ORDER:@FILE"`` (a file of ids separated by commas, blanks or newlines;
        ``#`` starts a comment).

    >>> parse_region("cone:3.58,-30.39,2").radius_deg
    2.0
    >>> parse_region("tiles:5:100,7").ids.tolist()
    [7, 100]
    """
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind == "gleam" and not rest:
        return GleamRegion()
    if kind == "allsky" and not rest:
        return AllSkyRegion()
    if kind == "cone":
        return _parse_cone(text, rest)
    if kind == "tiles":
        return _parse_tiles(text, rest)
    raise BadInputError(
        f"region {text!r}",
        "unknown region; use gleam, allsky, cone:RA,DEC,RADIUS_DEG, tiles:ORDER:ID[,ID...] or tiles:ORDER:@FILE",
    )


def _parse_cone(text: str, rest: str) -> ConeRegion:
    parts = rest.split(",")
    try:
        ra, dec, radius = (float(p) for p in parts)
    except ValueError:
        problem = "a cone is cone:RA,DEC,RADIUS_DEG with three numbers in degrees"
        raise BadInputError(f"region {text!r}", problem) from None
    return ConeRegion(ra_deg=ra, dec_deg=dec, radius_deg=radius, text=text)


def _parse_tiles(text: str, rest: str) -> TilesRegion:
    order_text, _, ids_text = rest.partition(":")
    where = f"region {text!r}"
    if ids_text.startswith("@"):
        path = Path(ids_text[1:]).expanduser()
        if not path.is_file():
            raise BadInputError(where, f"tile-id file {path} does not exist")
        ids_text = " ".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    try:
        order = int(order_text)
        ids = np.array([int(t) for t in ids_text.replace(",", " ").split()], dtype=np.int64)
    except ValueError:
        raise BadInputError(where, "tiles are tiles:ORDER:ID[,ID...] or tiles:ORDER:@FILE with integer ids") from None
    return TilesRegion(order=order, ids=ids, text=text)


# --------------------------------------------------------------------------------------
# Windows and plans
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Windows:
    """Cut-out centres: HEALPix NESTED pixel centres at ``order``.

    Attributes
    ----------
    order : int
        The window order.
    ipix : numpy.ndarray
        int64 NESTED indices at ``order``, ascending.
    ra_deg, dec_deg : numpy.ndarray
        Pixel centres (ICRS, degrees).
    """

    order: int
    ipix: IntArray
    ra_deg: FloatArray
    dec_deg: FloatArray

    def __len__(self) -> int:
        return int(self.ipix.size)


def _check_orders(*, tile_order: int, window_order: int) -> None:
    where = f"tile_order={tile_order}, window_order={window_order}"
    if not 0 <= tile_order <= window_order <= healpix.MAX_ORDER:
        raise BadInputError(where, f"need 0 <= tile_order <= window_order <= {healpix.MAX_ORDER}")
    if window_order - tile_order > MAX_ORDER_GAP:
        raise BadInputError(
            where, f"more than 4**{MAX_ORDER_GAP} windows per tile; raise tile_order or lower window_order"
        )


def check_tile(tile: int, *, tile_order: int) -> None:
    """Raise BadInputError unless ``tile`` is a pixel index at ``tile_order``."""
    if not 0 <= tile < healpix.order2npix(tile_order):
        raise BadInputError(
            f"tile {tile_order}/{tile}", f"no such tile at order {tile_order} (0..{healpix.order2npix(tile_order) - 1})"
        )


def windows_in_tile(
    tile: int,
    *,
    tile_order: int = DEFAULT_TILE_ORDER,
    window_order: int = DEFAULT_WINDOW_ORDER,
    region: Region | None = None,
) -> Windows:
    """The windows of one tile whose centres lie in ``region`` (all of them when None).

    The windows of tile ``t`` are its NESTED children at ``window_order``: the contiguous
    index range ``[t << 2k, (t + 1) << 2k)`` with ``k = window_order - tile_order``.

    Parameters
    ----------
    tile : int
        NESTED index of the tile at ``tile_order``.
    tile_order, window_order : int
        HEALPix NESTED orders of tiles and windows, ``tile_order <= window_order``.
    region : Region, optional
        Keep only windows whose centres it contains; None keeps all.

    Returns
    -------
    Windows
        The kept windows' indices (ascending) and centres (ICRS degrees).

    Raises
    ------
    BadInputError
        Orders out of range or too far apart, or ``tile`` is not a pixel at ``tile_order``.
    """
    _check_orders(tile_order=tile_order, window_order=window_order)
    check_tile(tile, tile_order=tile_order)
    ipix = healpix.children(tile, order=tile_order, child_order=window_order)
    ra, dec = healpix.pix2ang(window_order, ipix)
    if region is not None:
        keep = region.contains(ra, dec)
        ipix, ra, dec = ipix[keep], ra[keep], dec[keep]
    return Windows(order=window_order, ipix=ipix, ra_deg=ra, dec_deg=dec)


def tile_of(ipix: npt.ArrayLike, *, window_order: int, tile_order: int) -> IntArray:
    """The tile (NESTED parent at ``tile_order``) owning each window.

    Parameters
    ----------
    ipix : array_like
        NESTED window indices at ``window_order``.
    window_order, tile_order : int
        HEALPix orders of windows and tiles.

    Returns
    -------
    numpy.ndarray
        int64 tile indices, shaped like ``ipix``.

    Raises
    ------
    ValueError
        ``tile_order`` is deeper than ``window_order``.
    """
    return healpix.parent(ipix, order=window_order, parent_order=tile_order)


def window_neighbours(ipix: npt.ArrayLike, *, order: int) -> IntArray:
    """The 8 neighbouring windows of each window, shape (N, 8), -1 where none exists.

    Non-maximum suppression compares a window with these, which may belong to other tiles.
    """
    return healpix.get_all_neighbours(order, ipix)


@dataclass(frozen=True, eq=False)
class SurveyPlan:
    """What a survey of a region will visit.

    Attributes
    ----------
    region : Region
        The region planned.
    tile_order, window_order : int
        HEALPix NESTED orders of the tiles (work units) and windows (cut-out centres).
    tiles : numpy.ndarray
        int64 ids of the non-empty tiles, ascending.
    windows_per_tile : numpy.ndarray
        int64 number of windows in the region per tile, aligned with ``tiles``.
    """

    region: Region
    tile_order: int
    window_order: int
    tiles: IntArray
    windows_per_tile: IntArray

    @property
    def total_windows(self) -> int:
        """Windows to scan: the work figure (one 64x64x4 inference each)."""
        return int(self.windows_per_tile.sum())

    @property
    def area_deg2(self) -> float:
        """Area covered: windows x window pixel area (HEALPix pixels have equal areas)."""
        return self.total_windows * healpix.pixel_area_deg2(self.window_order)

    def estimated_seconds(self, *, windows_per_second: float) -> float:
        """Wall time at a measured throughput (windows scanned per second, all workers)."""
        if windows_per_second <= 0:
            raise BadInputError("windows_per_second", f"must be positive, got {windows_per_second}")
        return self.total_windows / windows_per_second


def plan(
    region: Region, *, tile_order: int = DEFAULT_TILE_ORDER, window_order: int = DEFAULT_WINDOW_ORDER
) -> SurveyPlan:
    """Count the windows of ``region`` per tile and keep the non-empty tiles.

    Vectorised over chunks of a quarter-million windows, so the GLEAM sky at orders 5/10
    (~8 M windows) plans in seconds with bounded memory. Warns NoDetectionsWarning when the
    region holds no window centre (a cone smaller than the window spacing, say).

    Parameters
    ----------
    region : Region
        The region to survey (``parse_region``).
    tile_order, window_order : int
        HEALPix NESTED orders of tiles (work units) and windows (cut-out centres).

    Returns
    -------
    SurveyPlan
        The non-empty tiles, ascending, with their window counts.

    Raises
    ------
    BadInputError
        Orders out of range or more than ``MAX_ORDER_GAP`` apart.
    """
    _check_orders(tile_order=tile_order, window_order=window_order)
    candidates = region.candidate_tiles(tile_order=tile_order)
    per_chunk = max(1, _PLAN_CHUNK_WINDOWS >> (2 * (window_order - tile_order)))
    counts = np.zeros(candidates.size, np.int64)
    for start in range(0, candidates.size, per_chunk):
        chunk = slice(start, start + per_chunk)
        counts[chunk] = _count_windows(candidates[chunk], region, tile_order, window_order)
    keep = counts > 0
    if not keep.any():
        warnings.warn(
            f"region {region.text!r} holds no window centre at order {window_order}; widen it or raise window_order",
            NoDetectionsWarning,
            stacklevel=2,
        )
    return SurveyPlan(region, tile_order, window_order, candidates[keep], counts[keep])


def _count_windows(tiles: IntArray, region: Region, tile_order: int, window_order: int) -> IntArray:
    ipix = healpix.children(tiles, order=tile_order, child_order=window_order)
    ra, dec = healpix.pix2ang(window_order, ipix.ravel())
    return region.contains(ra, dec).reshape(ipix.shape).sum(axis=1).astype(np.int64)


def format_plan(plan: SurveyPlan, *, windows_per_second: float | None = None) -> str:
    """Human summary of a plan, for ``halo-survey tiles --region ...``.

    ``windows_per_second`` is a throughput measured on the target machine; without it the
    work is given in windows only, since any default rate would be a guess.
    """
    tiles, windows = plan.tiles.size, plan.total_windows
    median = int(np.median(plan.windows_per_tile)) if tiles else 0
    lines = [
        f"region        {plan.region.describe()}",
        f"tile order    {plan.tile_order} (HEALPix NESTED, {healpix.pixel_area_deg2(plan.tile_order):.3g} deg2, "
        f"{healpix.resolution_arcmin(plan.tile_order) / 60:.3g} deg per tile)",
        f"window order  {plan.window_order} ({healpix.resolution_arcmin(plan.window_order):.3g}' spacing)",
        f"tiles         {tiles:,} non-empty",
        f"windows       {windows:,} (median {median:,} per tile)",
        f"area          {plan.area_deg2:,.0f} deg2",
    ]
    if windows_per_second is not None:
        seconds = plan.estimated_seconds(windows_per_second=windows_per_second)
        lines.append(f"work          {_human_duration(seconds)} at {windows_per_second:,.0f} windows/s")
    return "\n".join(lines)


def _human_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
