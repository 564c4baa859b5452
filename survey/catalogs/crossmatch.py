"""Cross-matching positions with cluster catalogues: a pure kernel and a validating wrapper.

After lsdb's kd-tree cross-match: ``_nearest`` is plain numpy/scipy on unit vectors
(``survey.sky.geometry``), ``crossmatch`` checks tables and radius around it, and
``nearest_clusters`` gives the columns that annotate candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from astropy.table import Table
from scipy.spatial import cKDTree

from survey.catalogs.table import as_float, make_catalog_table  # noqa: F401  (make_catalog_table: doctests)
from survey.exceptions import BadInputError
from survey.sky.geometry import arcmin_to_chord, chord_to_arcmin, unit_vectors


def _nearest(
    left_xyz: npt.NDArray[np.float64], right_xyz: npt.NDArray[np.float64], max_chord: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """For each left vector, the nearest right vector within ``max_chord``: (index, chord).

    Pure kernel: no validation, no units. No match is index -1 and chord +inf.
    """
    index = np.full(len(left_xyz), -1, dtype=np.int64)
    chord = np.full(len(left_xyz), np.inf)
    if len(left_xyz) == 0 or len(right_xyz) == 0:
        return index, chord
    # The tree's bound is open (<); nudge it so a pair exactly at the radius still matches.
    dist, idx = cKDTree(right_xyz).query(left_xyz, k=1, distance_upper_bound=np.nextafter(max_chord, np.inf))
    found = np.isfinite(dist) & (dist <= max_chord)  # infinite distance means no match
    index[found] = idx[found]
    chord[found] = dist[found]
    return index, chord


@dataclass(frozen=True)
class CrossMatch:
    """Nearest right-hand row for every left-hand row.

    Attributes
    ----------
    index : numpy.ndarray of int64
        Row of the right table, or -1 where nothing lies within the radius.
    separation_arcmin : numpy.ndarray of float64
        Separation in arcmin, NaN where there is no match.
    """

    index: npt.NDArray[np.int64]
    separation_arcmin: npt.NDArray[np.float64]

    @property
    def matched(self) -> npt.NDArray[np.bool_]:
        """True where a left row has a match."""
        return self.index >= 0

    def take(self, column: npt.ArrayLike, *, fill: object) -> np.ndarray:
        """Values of a right-table ``column`` per left row, ``fill`` where there is no match."""
        values = np.asarray(column)
        out = np.full(len(self.index), fill, dtype=values.dtype if values.dtype.kind not in "US" else object)
        out[self.matched] = values[self.index[self.matched]]
        return out


def crossmatch(left: Table, right: Table, *, radius_arcmin: float) -> CrossMatch:
    """Nearest ``right`` row within ``radius_arcmin`` of each ``left`` row.

    Both tables need ``ra`` and ``dec`` columns in degrees (the common catalogue form, or
    any table with those columns).

    Parameters
    ----------
    left : astropy.table.Table
        Positions to find a partner for; the result has one entry per row.
    right : astropy.table.Table
        Positions searched (built into a kd-tree).
    radius_arcmin : float
        Largest separation that counts as a match, in arcmin; a pair exactly at the
        radius matches. Must lie in (0, 10800], i.e. up to 180 deg.

    Returns
    -------
    CrossMatch
        For each ``left`` row, the index of the nearest ``right`` row (-1 if none within
        the radius) and its separation in arcmin (NaN if none).

    Raises
    ------
    BadInputError
        The radius is out of range, a table lacks ``ra`` or ``dec``, or a position is not
        finite or has |Dec| > 90.

    Examples
    --------
    >>> left = make_catalog_table(name=["a", "b"], ra_deg=[10.0, 50.0], dec_deg=[0.0, 0.0], z=[0, 0], catalog="l")
    >>> right = make_catalog_table(name=["x"], ra_deg=[10.0 + 1 / 60], dec_deg=[0.0], z=[0], catalog="r")
    >>> m = crossmatch(left, right, radius_arcmin=2.0)
    >>> m.index.tolist(), np.round(m.separation_arcmin, 3).tolist()
    ([0, -1], [1.0, nan])
    """
    radius = _check_radius(radius_arcmin)
    left_xyz = _table_xyz(left, "left")
    right_xyz = _table_xyz(right, "right")
    index, chord = _nearest(left_xyz, right_xyz, float(arcmin_to_chord(radius)))
    separation = np.where(index >= 0, chord_to_arcmin(np.where(np.isfinite(chord), chord, 0.0)), np.nan)
    return CrossMatch(index=index, separation_arcmin=separation)


def _check_radius(radius_arcmin: float) -> float:
    radius = float(radius_arcmin)
    if not (np.isfinite(radius) and 0.0 < radius <= 180.0 * 60.0):
        raise BadInputError("radius_arcmin", f"{radius_arcmin!r} is not a positive angle up to 10800 arcmin (180 deg)")
    return radius


def _table_xyz(table: Table, which: str) -> npt.NDArray[np.float64]:
    for column in ("ra", "dec"):
        if column not in table.colnames:
            raise BadInputError(f"{which} table", f"has no {column!r} column (columns: {', '.join(table.colnames)})")
    ra, dec = as_float(table["ra"]), as_float(table["dec"])
    _check_match_positions(ra, dec, f"{which} table")
    return unit_vectors(ra, dec)


def _check_match_positions(ra: np.ndarray, dec: np.ndarray, where: str) -> None:
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadInputError(where, f"row {row} has RA={ra[row]}, Dec={dec[row]}; positions must be finite with |Dec| <= 90")


def nearest_clusters(
    ra_deg: npt.ArrayLike,
    dec_deg: npt.ArrayLike,
    catalogs: Mapping[str, Table],
    *,
    radius_arcmin: float,
) -> dict[str, np.ndarray]:
    """Nearest cluster of each catalogue for each position: the columns that annotate candidates.

    Returns, for every ``key`` of ``catalogs``, three arrays as long as the positions:
    ``{key}_name`` (str, ``""`` where none lies within ``radius_arcmin``),
    ``{key}_sep_arcmin`` and ``{key}_z`` (float64, NaN where none). A flat
    ``dict[str, ndarray]`` so it can be merged into a Ray Data batch.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        ICRS positions in degrees, scalars or 1-D arrays of one length.
    catalogs : mapping of str to astropy.table.Table
        Catalogues in the common form (``name``, ``ra``, ``dec``, ``z`` are read), keyed by
        the prefix their columns get.
    radius_arcmin : float
        Match radius in arcmin, in (0, 10800].

    Returns
    -------
    dict of str to numpy.ndarray
        The ``{key}_name``, ``{key}_sep_arcmin`` and ``{key}_z`` columns described above,
        three per catalogue; empty when ``catalogs`` is.

    Raises
    ------
    BadInputError
        The positions differ in shape, are not 1-D, are not finite or have |Dec| > 90, or
        the radius is out of range.

    Examples
    --------
    >>> cat = make_catalog_table(name=["A2744"], ra_deg=[3.58], dec_deg=[-30.39], z=[0.308], catalog="demo")
    >>> out = nearest_clusters([3.58, 100.0], [-30.39, 0.0], {"demo": cat}, radius_arcmin=5)
    >>> out["demo_name"].tolist(), out["demo_z"].tolist()
    (['A2744', ''], [0.308, nan])
    """
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise BadInputError("positions", f"ra_deg and dec_deg must be 1-D arrays of one length, got {ra.shape} and {dec.shape}")
    radius = _check_radius(radius_arcmin)
    _check_match_positions(ra, dec, "positions")
    positions = Table({"ra": ra, "dec": dec})
    columns: dict[str, np.ndarray] = {}
    for key, catalog in catalogs.items():
        match = crossmatch(positions, catalog, radius_arcmin=radius)
        columns[f"{key}_name"] = match.take(np.asarray(catalog["name"], dtype=str), fill="").astype(str)
        columns[f"{key}_sep_arcmin"] = match.separation_arcmin
        columns[f"{key}_z"] = match.take(as_float(catalog["z"]), fill=np.nan).astype(np.float64)
    return columns
