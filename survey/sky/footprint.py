"""The GLEAM extragalactic footprint: Dec < +30 deg, |b| > 10 deg, Magellanic Clouds masked.

Pure numpy over degrees so that tiling, catalogue filters and the mock sky all agree on
what "in GLEAM" means.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy.coordinates import SkyCoord

DEC_MAX_DEG = 30.0
"""GLEAM's extragalactic catalogue stops at Dec +30 deg (Hurley-Walker et al. 2017)."""

GALACTIC_LATITUDE_MIN_DEG = 10.0
"""Sources closer than this to the Galactic plane are excluded."""

MAGELLANIC_CLOUDS = (
    # (name, ra_deg, dec_deg, radius_deg): circles that mask the LMC and SMC.
    ("LMC", 80.894, -69.756, 5.5),
    ("SMC", 13.187, -72.829, 2.5),
)
"""Masked circles (the GLEAM EGC excludes the Clouds)."""


def galactic_latitude_deg(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> np.ndarray:
    """Galactic latitude of ICRS positions, in degrees."""
    coords = SkyCoord(ra=np.asarray(ra_deg, float) * u.deg, dec=np.asarray(dec_deg, float) * u.deg)
    return np.asarray(coords.galactic.b.deg)


def in_magellanic_clouds(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> np.ndarray:
    """True where a position lies inside one of the masked Magellanic Cloud circles."""
    ra = np.radians(np.asarray(ra_deg, float))
    dec = np.radians(np.asarray(dec_deg, float))
    masked = np.zeros(np.broadcast(ra, dec).shape, bool)
    for _, cra, cdec, radius in MAGELLANIC_CLOUDS:
        cos_sep = np.sin(dec) * np.sin(np.radians(cdec)) + np.cos(dec) * np.cos(np.radians(cdec)) * np.cos(
            ra - np.radians(cra)
        )
        masked |= cos_sep >= np.cos(np.radians(radius))
    return masked


def in_gleam_footprint(
    ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *, mask_magellanic: bool = True
) -> np.ndarray:
    """True where a position lies in the GLEAM extragalactic footprint.

    Parameters
    ----------
    ra_deg, dec_deg : array-like
        ICRS positions in degrees.
    mask_magellanic : bool
        Also exclude the Magellanic Clouds. The catalogue-count fact in the data README
        (1182 of 1653 PSZ2 clusters) uses only the Dec and latitude cuts.

    Returns
    -------
    numpy.ndarray
        bool, shaped like the broadcast positions (a numpy bool for scalars): Dec below the
        footprint's limit, |b| above the Galactic-plane cut, and, if asked, outside the
        Magellanic Clouds.

    Examples
    --------
    >>> bool(in_gleam_footprint(3.584, -30.388))   # Abell 2744
    True
    >>> bool(in_gleam_footprint(10.0, 45.0))
    False
    """
    ra = np.asarray(ra_deg, float)
    dec = np.asarray(dec_deg, float)
    inside = (dec < DEC_MAX_DEG) & (np.abs(galactic_latitude_deg(ra, dec)) > GALACTIC_LATITUDE_MIN_DEG)
    if mask_magellanic:
        inside &= ~in_magellanic_clouds(ra, dec)
    return inside
