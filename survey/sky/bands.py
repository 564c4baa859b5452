"""The four GLEAM bands, in the order the classifiers stack them.

Each band keeps its *native* pixel scale: the paper stacks the central 64x64 pixels of
each band without regridding, so each channel of a cut-out covers a different sky area
(59.7' at 72-103 MHz down to 29.9' at 170-231 MHz). Everything that needs a band's
frequency, pixel scale or SkyView name reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

CUTOUT_SIZE = 64
"""Side of a classifier cut-out in pixels (paper section 3)."""


@dataclass(frozen=True)
class Band:
    """One GLEAM wide band.

    Attributes
    ----------
    name : str
        Short name used in file names, columns and model cards, e.g. ``"72-103"``.
    low_mhz, high_mhz : float
        Band edges in MHz.
    pixel_deg : float
        Native pixel scale of the GLEAM images served by SkyView (CDELT), in degrees.
    skyview_survey : str
        The SkyView survey name for this band.
    """

    name: str
    low_mhz: float
    high_mhz: float
    pixel_deg: float
    skyview_survey: str

    @property
    def centre_mhz(self) -> float:
        """Band centre in MHz."""
        return 0.5 * (self.low_mhz + self.high_mhz)

    @property
    def pixel_arcsec(self) -> float:
        """Native pixel scale in arcseconds."""
        return self.pixel_deg * 3600.0

    @property
    def cutout_width_deg(self) -> float:
        """Sky width of a CUTOUT_SIZE cut-out at the native scale, in degrees."""
        return CUTOUT_SIZE * self.pixel_deg


BANDS: tuple[Band, ...] = (
    Band("72-103", 72.0, 103.0, 0.015556, "GLEAM 72-103 MHz"),
    Band("103-134", 103.0, 134.0, 0.012222, "GLEAM 103-134 MHz"),
    Band("139-170", 139.0, 170.0, 0.0094444, "GLEAM 139-170 MHz"),
    Band("170-231", 170.0, 231.0, 0.0077778, "GLEAM 170-231 MHz"),
)
"""Channel order of every cut-out: 72-103, 103-134, 139-170, 170-231 MHz."""

BAND_NAMES: tuple[str, ...] = tuple(b.name for b in BANDS)


def band_by_name(name: str) -> Band:
    """Return the band called ``name`` (e.g. ``"139-170"``).

    >>> round(band_by_name("170-231").pixel_arcsec, 1)
    28.0
    """
    for band in BANDS:
        if band.name == name:
            return band
    raise KeyError(f"unknown GLEAM band {name!r}; expected one of {', '.join(BAND_NAMES)}")


def band_column(prefix: str, band_name: str) -> str:
    """Column name of a per-band quantity in tables and catalogues.

    >>> band_column("noise", "72-103")
    'noise_72_103'
    """
    return f"{prefix}_{band_name.replace('-', '_')}"
