"""Sphere geometry: the one place for unit vectors, angular distances and tangent planes.

Every module that measures the sky (tiling, cross-matching, overlap groups, the mock sky,
field selection) uses these pure-numpy functions, so an angle means the same thing
everywhere. Positions are ICRS degrees; the unit is in every name.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def unit_vectors(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> FloatArray:
    """Unit vectors, shape (n, 3), of positions in degrees.

    >>> unit_vectors([0.0, 90.0], [0.0, 0.0]).round(12).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def angular_distance_deg(
    ra1_deg: npt.ArrayLike, dec1_deg: npt.ArrayLike, ra2_deg: npt.ArrayLike, dec2_deg: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in degrees (haversine: accurate at the arcsecond separations of cross-matches).

    Parameters
    ----------
    ra1_deg, dec1_deg : array_like
        First positions, ICRS degrees.
    ra2_deg, dec2_deg : array_like
        Second positions, ICRS degrees; broadcast against the first.

    Returns
    -------
    numpy.ndarray
        float64 separations in degrees, 0 to 180, in the broadcast shape (a numpy scalar
        for scalar inputs).

    Examples
    --------
    >>> float(angular_distance_deg(10.0, 0.0, 11.0, 0.0).round(12))
    1.0
    """
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, float)) for a in (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    hav = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))))


def arcmin_to_chord(angle_arcmin: npt.ArrayLike) -> np.ndarray:
    """Straight-line distance between unit vectors separated by ``angle_arcmin`` (k-d tree radii)."""
    return 2.0 * np.sin(np.radians(np.asarray(angle_arcmin, dtype=np.float64) / 60.0) / 2.0)


def chord_to_arcmin(chord: npt.ArrayLike) -> np.ndarray:
    """Angle in arcmin of a chord between unit vectors (inverse of ``arcmin_to_chord``).

    >>> float(chord_to_arcmin(arcmin_to_chord(5.0)).round(9))
    5.0
    """
    return np.degrees(2.0 * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0))) * 60.0


def tangent_plane_deg(vectors: npt.ArrayLike, *, ra0_deg: float, dec0_deg: float) -> tuple[FloatArray, FloatArray]:
    """Gnomonic (TAN) standard coordinates (xi east, eta north) of unit vectors, in degrees.

    These are the offsets a north-up TAN image centred on (ra0, dec0) measures in units of
    its reference pixel scale, so they say how many pixels a field must span. Computed from
    vectors, hence valid at the poles and across RA = 0.

    Parameters
    ----------
    vectors : array_like
        Unit vectors, shape (..., 3) (``unit_vectors``, ``healpix.boundaries``).
    ra0_deg, dec0_deg : float
        The tangent point, ICRS degrees.

    Returns
    -------
    xi, eta : numpy.ndarray
        float64 offsets east and north in degrees, shape ``vectors.shape[:-1]``.

    Raises
    ------
    ValueError
        A point lies 90 degrees or more from the tangent point (no gnomonic position).
    """
    v = np.asarray(vectors, float)
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    centre = np.array([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)])
    east = np.array([-np.sin(ra0), np.cos(ra0), 0.0])
    north = np.array([-np.sin(dec0) * np.cos(ra0), -np.sin(dec0) * np.sin(ra0), np.cos(dec0)])
    depth = v @ centre
    if np.any(depth <= 0):
        raise ValueError(f"points more than 90 deg from ({ra0_deg}, {dec0_deg}) have no tangent-plane position")
    return np.degrees((v @ east) / depth), np.degrees((v @ north) / depth)
