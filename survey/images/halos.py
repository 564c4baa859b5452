"""A parameterised radio-halo model, rendered into band images: one implementation for the mock sky, training and measurement.

A halo is an elliptical exponential disc, I(r) = I0 exp(-r / r_e) (Murgia et al. 2009's fit
of real halos), with total flux density ``flux_150mhz_jy`` at 150 MHz, e-folding radius
``r_e_arcmin`` along its major axis, an axis ratio and a position angle, a power-law spectrum
(halos are steep: alpha = -1.3 +- 0.2, data README) and, optionally, multiplicative
turbulent sub-structure. ``render_halos`` draws halos on a band image's own pixel grid (its
native scale and WCS), each disc normalised to its flux on its own box, and convolves with
that band's Gaussian beam (about 2' at 200 MHz, growing as 1/nu: ``gleam_beam_fwhm_arcmin``),
giving Jy/beam. ``add_halos`` adds them to a raw (unclipped) image, as the mock sky does;
injection into the paper's already-clipped files also has to restore the clipped noise
(``survey.model.inject``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import numpy.typing as npt
from astropy.table import Table
from scipy.ndimage import gaussian_filter

from survey.images.base import BandImage, world_to_pixel

FloatArray = npt.NDArray[np.float64]

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

REFERENCE_MHZ = 150.0
"""Frequency of a halo's ``flux_150mhz_jy`` (the convention of halo surveys at low frequency)."""

HALO_SPECTRAL_INDEX = -1.3
"""Typical halo spectral index (S ~ nu**alpha): "halos are steep, alpha = -1.3" (data README)."""

BEAM_FWHM_ARCMIN_AT_200MHZ = 2.0
"""GLEAM's resolution at 200 MHz (data README: about 2', growing roughly as 1/nu)."""

DISC_EXTENT_RE = 12.0
"""Each disc is drawn out to 12 e-folding radii (exp(-12) = 6e-6 of its peak): beyond that
the flux left out is below float32 round-off of the halo's own pixels."""


def gleam_beam_fwhm_arcmin(freq_mhz: float) -> float:
    """GLEAM's Gaussian PSF FWHM in arcmin at ``freq_mhz``: 2' at 200 MHz, as 1/nu.

    >>> round(gleam_beam_fwhm_arcmin(154.0), 2), round(gleam_beam_fwhm_arcmin(88.0), 2)
    (2.6, 4.55)
    """
    return BEAM_FWHM_ARCMIN_AT_200MHZ * 200.0 / freq_mhz


@dataclass(frozen=True)
class Halo:
    """One radio halo: where it is, how bright, how big, how shaped.

    Attributes
    ----------
    ra_deg, dec_deg : float
        Centre (ICRS, degrees).
    flux_150mhz_jy : float
        Integrated flux density at 150 MHz, Jy.
    r_e_arcmin : float
        e-folding radius along the major axis, arcmin.
    axis_ratio : float
        Minor over major axis, in (0, 1].
    position_angle_deg : float
        Major axis, degrees east of north.
    spectral_index : float
        alpha in S ~ nu**alpha.
    turbulence : float
        RMS of the multiplicative sub-structure (0: a smooth disc). The disc is multiplied by
        exp(t * g - t**2 / 2), g a unit Gaussian random field smoothed on r_e / 2, and renormalised
        to its flux, so the total flux stays ``flux_150mhz_jy``.
    seed : int
        Seed of the sub-structure's random field.
    name : str
        Identifier in truth tables.
    """

    ra_deg: float
    dec_deg: float
    flux_150mhz_jy: float
    r_e_arcmin: float
    axis_ratio: float = 1.0
    position_angle_deg: float = 0.0
    spectral_index: float = HALO_SPECTRAL_INDEX
    turbulence: float = 0.0
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        problems = {
            "flux_150mhz_jy must be >= 0": self.flux_150mhz_jy >= 0,
            "r_e_arcmin must be > 0": self.r_e_arcmin > 0,
            "axis_ratio must lie in (0, 1]": 0 < self.axis_ratio <= 1,
            "turbulence must be >= 0": self.turbulence >= 0,
            "dec_deg must lie in [-90, 90]": -90 <= self.dec_deg <= 90,
        }
        bad = [problem for problem, ok in problems.items() if not ok]
        if bad:
            raise ValueError(f"halo {self.name or (self.ra_deg, self.dec_deg)}: {'; '.join(bad)}")

    def flux_jy(self, freq_mhz: float) -> float:
        """Integrated flux density in Jy at ``freq_mhz``."""
        return float(self.flux_150mhz_jy * (freq_mhz / REFERENCE_MHZ) ** self.spectral_index)


HALO_COLUMNS = tuple(f.name for f in fields(Halo))
"""Columns of a halo table (``halo_table``), in ``Halo`` field order."""


def halo_table(halos: Iterable[Halo]) -> Table:
    """Halos as an astropy Table (the ground truth an injection writes; ``ra``/``dec`` for cross-matching).

    >>> table = halo_table([Halo(10.0, -20.0, 0.5, 2.0, name="h1")])
    >>> float(table["ra"][0]), float(table["dec"][0]), str(table["flux_150mhz_jy"].unit)
    (10.0, -20.0, 'Jy')
    """
    rows = [asdict(h) for h in halos]
    table = Table(rows=rows, names=HALO_COLUMNS) if rows else Table(names=HALO_COLUMNS,
                                                                      dtype=[float] * 8 + [int, str])
    table["ra"], table["dec"] = table["ra_deg"], table["dec_deg"]
    table["ra"].unit = table["dec"].unit = table["ra_deg"].unit = table["dec_deg"].unit = "deg"
    table["flux_150mhz_jy"].unit = "Jy"
    table["r_e_arcmin"].unit = "arcmin"
    return table


def halos_from_table(table: Table) -> list[Halo]:
    """The halos of a table with ``Halo``'s columns (``ra_deg``/``dec_deg`` or ``ra``/``dec``); missing optional columns take their defaults."""
    names = set(table.colnames)
    out = []
    for row in table:
        values = {name: row[name] for name in HALO_COLUMNS if name in names}
        values.setdefault("ra_deg", row["ra"] if "ra" in names else None)
        values.setdefault("dec_deg", row["dec"] if "dec" in names else None)
        typed = {name: (str(v) if name == "name" else int(v) if name == "seed" else float(v))
                 for name, v in values.items() if v is not None}
        out.append(Halo(**typed))
    return out


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render_halos(shape: tuple[int, int], wcs, halos: Sequence[Halo], *, freq_mhz: float, pixel_deg: float,
                 beam_fwhm_arcmin: float) -> FloatArray:
    """The halos on one band's pixel grid, convolved with its beam, in Jy/beam.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) of the image.
    wcs : astropy.wcs.WCS
        The image's celestial WCS (``survey.images.base`` maps positions through it).
    halos : sequence of Halo
        The halos; those whose disc misses the image add nothing.
    freq_mhz : float
        The band's frequency: sets each halo's flux through its spectral index.
    pixel_deg : float
        The image's pixel scale (the band's native one).
    beam_fwhm_arcmin : float
        The band's Gaussian beam.

    Returns
    -------
    numpy.ndarray
        (ny, nx) float64 Jy/beam. Each disc is drawn on its own box out to
        ``DISC_EXTENT_RE`` e-folding radii and normalised on that whole box, so a halo
        smaller than a pixel still carries its flux; Jy/pixel is smoothed with the unit-sum
        beam and scaled by the beam area in pixels. Only the region the discs touched,
        grown by the kernel's reach, is smoothed: beyond it the result is exactly zero.
    """
    ny, nx = shape
    sigma_px = beam_fwhm_arcmin / 60.0 / pixel_deg / FWHM_PER_SIGMA
    pad = int(np.ceil(4 * sigma_px)) + 1
    diffuse = np.zeros((ny + 2 * pad, nx + 2 * pad))
    box = [diffuse.shape[0], diffuse.shape[1], 0, 0]  # y0, x0, y1, x1 of what the discs touched
    if len(halos):
        xs, ys = world_to_pixel(wcs, [h.ra_deg for h in halos], [h.dec_deg for h in halos])
        for halo, xc, yc in zip(halos, xs + pad, ys + pad):
            if not (np.isfinite(xc) and np.isfinite(yc)):
                continue
            disc, x0, y0 = _disc(halo, xc=xc, yc=yc, pixel_deg=pixel_deg, flux_jy=halo.flux_jy(freq_mhz))
            if _paste(diffuse, disc, x0=x0, y0=y0):
                box = [min(box[0], y0), min(box[1], x0), max(box[2], y0 + disc.shape[0]),
                       max(box[3], x0 + disc.shape[1])]
    smooth = np.zeros_like(diffuse)
    reach = int(4.0 * sigma_px + 0.5) + 1  # gaussian_filter's kernel radius (truncate=4), plus one
    rows = slice(max(box[0] - reach, 0), min(box[2] + reach, diffuse.shape[0]))
    cols = slice(max(box[1] - reach, 0), min(box[3] + reach, diffuse.shape[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        smooth[rows, cols] = gaussian_filter(diffuse[rows, cols], sigma_px, mode="constant", truncate=4.0)
    return smooth[pad : pad + ny, pad : pad + nx] * (2.0 * np.pi * sigma_px**2)


def _disc(halo: Halo, *, xc: float, yc: float, pixel_deg: float, flux_jy: float) -> tuple[FloatArray, int, int]:
    """One halo's elliptical exponential disc in Jy/pixel on its own box, and the box's corner.

    North-up, east-left images (RA increases to the left): the position angle is measured
    from +y towards -x.
    """
    r_e_px = halo.r_e_arcmin / 60.0 / pixel_deg
    half = int(np.ceil(DISC_EXTENT_RE * max(r_e_px, 0.5)))
    x0, y0 = int(round(xc)) - half, int(round(yc)) - half
    yy, xx = np.mgrid[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1]
    dx, dy = xx - xc, yy - yc
    if halo.axis_ratio == 1.0:
        radius = np.hypot(dx, dy)
    else:
        pa = np.radians(halo.position_angle_deg)
        major = -dx * np.sin(pa) + dy * np.cos(pa)  # along the position angle (east of north)
        minor = dx * np.cos(pa) + dy * np.sin(pa)
        radius = np.hypot(major, minor / halo.axis_ratio)
    disc = np.exp(-radius / max(r_e_px, 1e-3))
    if halo.turbulence > 0:
        disc *= _substructure(disc.shape, scale_px=max(r_e_px / 2.0, 0.5), rms=halo.turbulence, seed=halo.seed)
    disc *= flux_jy / disc.sum()
    return disc, x0, y0


def _substructure(shape: tuple[int, int], *, scale_px: float, rms: float, seed: int) -> FloatArray:
    """A log-normal multiplicative field of mean about 1: exp(rms * g - rms**2 / 2), g smoothed unit Gaussian."""
    field = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), scale_px, mode="wrap")
    field /= max(float(field.std()), 1e-12)
    return np.exp(rms * field - rms**2 / 2.0)


def _paste(canvas: FloatArray, stamp: FloatArray, *, x0: int, y0: int) -> bool:
    """Add ``stamp`` into ``canvas`` with its corner at (x0, y0), clipping at the edges; False if it missed."""
    h, w = stamp.shape
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + h, canvas.shape[0]), min(x0 + w, canvas.shape[1])
    if cy1 > cy0 and cx1 > cx0:
        canvas[cy0:cy1, cx0:cx1] += stamp[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        return True
    return False


def halo_pixels(image: BandImage, halos: Sequence[Halo], *, beam_fwhm_arcmin: float | None = None) -> FloatArray:
    """The halos as ``image``'s band sees them (its grid, frequency and beam), Jy/beam.

    Parameters
    ----------
    image : BandImage
        Gives the grid, WCS, pixel scale and band (frequency).
    halos : sequence of Halo
        The halos to render.
    beam_fwhm_arcmin : float, optional
        Default ``gleam_beam_fwhm_arcmin`` at the band's centre.

    Returns
    -------
    numpy.ndarray
        float64 Jy/beam, the image's shape.
    """
    freq = image.band.centre_mhz
    beam = gleam_beam_fwhm_arcmin(freq) if beam_fwhm_arcmin is None else beam_fwhm_arcmin
    return render_halos(image.data.shape, image.wcs, halos, freq_mhz=freq, pixel_deg=image.band.pixel_deg,
                        beam_fwhm_arcmin=beam)


def add_halos(image: BandImage, halos: Sequence[Halo], *, beam_fwhm_arcmin: float | None = None) -> BandImage:
    """``image`` with the halos added, for raw (unclipped) images: the mock sky, or real images before any clip.

    Parameters
    ----------
    image : BandImage
        A raw band image.
    halos : sequence of Halo
        The halos to add.
    beam_fwhm_arcmin : float, optional
        The band's beam; default ``gleam_beam_fwhm_arcmin`` at its centre.

    Returns
    -------
    BandImage
        float32 pixels plus the halos (``halo_pixels``); the same WCS.
    """
    pixels = np.asarray(image.data, np.float64) + halo_pixels(image, halos, beam_fwhm_arcmin=beam_fwhm_arcmin)
    return BandImage(band=image.band, data=pixels.astype(np.float32), wcs=image.wcs,
                     origin=f"{image.origin} + {len(halos)} injected halo(s)")
