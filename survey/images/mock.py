"""A deterministic, GLEAM-like synthetic sky: point sources, correlated noise and injected halos.

Library code (like photutils ``datasets``): the survey runs end to end on it without
network or real data, and its truth table says which halos a scan should find.

The sky is the same wherever it is rendered. Point sources are drawn per HEALPix cell at
``sky_order`` with a generator seeded from ``(seed, cell)``, so two overlapping fields see
the same sources at the same positions; halos come from one full-sky draw over the cells
at ``halo_order``. Only the noise is drawn per field (seeded from the field geometry): a
mosaic's noise would be shared too, but rendering it consistently would need a sky-wide
noise grid at 28" and buys nothing for detection tests.

Numbers come from the data README, "GLEAM survey facts" (``/work/shared/data/README.md``),
unless a parameter's docstring says it is an assumption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from astropy.cosmology import FlatLambdaCDM
from astropy.table import Table
from scipy.ndimage import gaussian_filter
from scipy.special import erfcx

from survey.exceptions import BadInputError
from survey.images.base import BandImage, ImageSource, tan_wcs, world_to_pixel
from survey.images.halos import FWHM_PER_SIGMA, Halo, render_halos
from survey.sky import healpix
from survey.sky.bands import BANDS, Band
from survey.sky.fields import FieldRequest
from survey.sky.geometry import angular_distance_deg
from survey.sky.tiling import Region, parse_region

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COSMOLOGY = FlatLambdaCDM(H0=70, Om0=0.3)
"""Concordance cosmology for the halos' angular sizes (H0 = 70 km/s/Mpc, Omega_m = 0.3)."""

HALO_RADIUS_PER_RE = 2.6
"""Halo radius R_H = size / 2 = 2.6 e-folding radii r_e: the convention used in the halo
literature for exponential fits (the radius enclosing most of the flux above the noise)."""

POSITION_SUBORDER = 13
"""Positions are centres of random pixels 13 orders below a cell (0.4" at sky order 6):
uniform within the cell and reproducible from the cell alone."""

_SOURCE_STREAM, _HALO_STREAM, _NOISE_STREAM = 1, 2, 3
"""Independent random streams of one seed: sources, halos and noise never share draws."""


@dataclass(frozen=True)
class MockHalo:
    """A halo placed by hand (in addition to the seeded ones).

    Attributes
    ----------
    ra_deg, dec_deg : float
        Position (ICRS, degrees).
    z : float
        Redshift; with ``size_mpc`` gives the angular size.
    size_mpc : float
        Largest linear size (diameter) in Mpc.
    flux_150mhz_jy : float
        Integrated flux density at 150 MHz in Jy.
    name : str
        Name in the truth table; empty means ``MOCK-HALO-USER-<index>``.
    """

    ra_deg: float
    dec_deg: float
    z: float
    size_mpc: float
    flux_150mhz_jy: float
    name: str = ""


@dataclass(frozen=True, eq=False)
class PointSources:
    """A catalogue of mock point sources (arrays aligned by row).

    Attributes
    ----------
    ra_deg, dec_deg : numpy.ndarray
        Positions (ICRS, degrees).
    flux_jy : numpy.ndarray
        Flux density at the sky's ``reference_mhz`` (200 MHz) in Jy.
    spectral_index : numpy.ndarray
        alpha in S ~ nu**alpha.
    cell : numpy.ndarray
        int64 HEALPix NESTED cell at ``sky_order`` that drew the source.
    """

    ra_deg: FloatArray
    dec_deg: FloatArray
    flux_jy: FloatArray
    spectral_index: FloatArray
    cell: IntArray

    def __len__(self) -> int:
        return int(self.ra_deg.size)

    def flux_at(self, freq_mhz: float, *, reference_mhz: float) -> FloatArray:
        """Flux density in Jy at ``freq_mhz``."""
        return self.flux_jy * (freq_mhz / reference_mhz) ** self.spectral_index

    def select(self, keep: npt.NDArray[np.bool_]) -> PointSources:
        """The rows where ``keep`` is True."""
        columns = ("ra_deg", "dec_deg", "flux_jy", "spectral_index", "cell")
        return PointSources(*(getattr(self, name)[keep] for name in columns))


@dataclass(frozen=True)
class MockSky:
    """Parameters of a synthetic GLEAM sky; the same seed gives the same sky everywhere.

    >>> sky = MockSky(seed=1)
    >>> round(sky.beam_fwhm_arcmin(154.0), 2)   # README: about 2.6' at 154 MHz
    2.6
    """

    seed: int = 0
    """Seed of every random draw (sources, halos, noise)."""

    reference_mhz: float = 200.0
    """Frequency at which source fluxes, the beam and the noise are specified: the GLEAM
    detection image (170-231 MHz)."""

    source_density_per_deg2: float = 12.6
    """Point sources per deg2 above ``source_flux_min_jy``: the GLEAM EGC has 307,455 sources
    over about 24,400 deg2, ~12.6 per deg2 above ~50 mJy (README)."""

    source_flux_min_jy: float = 0.05
    """Faintest drawn source at 200 MHz: the ~50 mJy completeness of the EGC (README)."""

    source_flux_max_jy: float = 10.0
    """Brightest drawn source at 200 MHz. An assumption: truncates the power law so a field
    is not dominated by a rare very bright source."""

    source_count_slope: float = 1.9
    """dN/dS ~ S**-slope. An assumption (not in the README): integral counts N(>S) ~ S**-0.9,
    roughly the slope of low-frequency counts between 50 mJy and 10 Jy."""

    source_spectral_index: float = -0.8
    """Mean spectral index of sources: "typical source spectral index alpha = -0.8" (README)."""

    source_spectral_index_scatter: float = 0.2
    """Gaussian scatter of the spectral index. An assumption (the brief's ~0.2)."""

    beam_fwhm_arcmin_at_reference: float = 2.0
    """Gaussian PSF FWHM at 200 MHz, growing as 1/nu: about 2' at 200 MHz, 2.6' at 154,
    3.4' at 118, 4.5' at 88 MHz (README)."""

    noise_jy_per_beam_at_reference: float = 0.010
    """Noise at 200 MHz: "rms about 10 mJy/beam" in the 170-231 MHz image (README)."""

    noise_spectral_index: float = -1.0
    """Noise ~ nu**index. An assumption: the README says only that noise is higher at low
    frequency; -1 gives ~13 mJy/beam at 154 MHz and ~23 mJy/beam at 88 MHz."""

    halo_density_per_deg2: float = 0.01
    """Seeded halos per deg2 (~240 over the GLEAM footprint). Denser than real GLEAM-visible
    halos so that test regions of tens of deg2 hold some; set 0 for none."""

    halo_redshift_range: tuple[float, float] = (0.05, 0.4)
    """Uniform redshift range of seeded halos: where known halos are found."""

    halo_size_mpc_range: tuple[float, float] = (0.3, 2.0)
    """Uniform range of halo diameters in Mpc (radio halos are ~0.3 to 2 Mpc across)."""

    halo_peak_snr_range: tuple[float, float] = (5.0, 20.0)
    """Uniform range of the peak surface brightness over the noise at 150 MHz, with the
    150-MHz beam. The flux follows from it, so every seeded halo is visible above the noise."""

    halo_spectral_index: float = -1.3
    """Halo spectral index: "halos are steep, alpha = -1.3" (README)."""

    halos: tuple[MockHalo, ...] = ()
    """Halos placed by hand, added to the seeded ones."""

    sky_order: int = 6
    """HEALPix order of the cells that draw point sources (0.84 deg2, ~11 sources each)."""

    halo_order: int = 6
    """HEALPix order of the cells that may hold one seeded halo each."""

    def __post_init__(self) -> None:
        checks = {
            "source_density_per_deg2 must be >= 0": self.source_density_per_deg2 >= 0,
            "need 0 < source_flux_min_jy < source_flux_max_jy": 0 < self.source_flux_min_jy < self.source_flux_max_jy,
            "source_count_slope must not be 1": self.source_count_slope != 1,
            "beam and noise must be >= 0 (beam > 0)": self.beam_fwhm_arcmin_at_reference > 0
            and self.noise_jy_per_beam_at_reference >= 0,
            "halo_density_per_deg2 must be below one per halo cell": 0
            <= self.halo_density_per_deg2 * healpix.pixel_area_deg2(self.halo_order)
            <= 1,
            "sky_order and halo_order must be in 0..16": 0 <= self.sky_order <= 16 and 0 <= self.halo_order <= 16,
        }
        for problem, ok in checks.items():
            if not ok:
                raise BadInputError(f"MockSky(seed={self.seed})", problem)

    # ----------------------------------------------------------------------------------
    # Instrument
    # ----------------------------------------------------------------------------------

    def beam_fwhm_arcmin(self, freq_mhz: float) -> float:
        """Gaussian PSF FWHM in arcmin at ``freq_mhz`` (diffraction: ~ 1/nu)."""
        return self.beam_fwhm_arcmin_at_reference * self.reference_mhz / freq_mhz

    def noise_jy_per_beam(self, freq_mhz: float) -> float:
        """Image rms in Jy/beam at ``freq_mhz``."""
        return self.noise_jy_per_beam_at_reference * (freq_mhz / self.reference_mhz) ** self.noise_spectral_index

    # ----------------------------------------------------------------------------------
    # Point sources
    # ----------------------------------------------------------------------------------

    def cells_near(self, *, ra_deg: float, dec_deg: float, radius_deg: float) -> IntArray:
        """Source cells at ``sky_order`` that overlap a disc.

        Parameters
        ----------
        ra_deg, dec_deg : float
            Centre of the disc, ICRS degrees.
        radius_deg : float
            Radius of the disc in degrees.

        Returns
        -------
        numpy.ndarray
            int64 NESTED cell ids at ``sky_order``, ascending; a superset (cells that only
            come near the disc may be included).
        """
        return healpix.query_disc(self.sky_order, ra_deg=ra_deg, dec_deg=dec_deg, radius_deg=radius_deg)

    def point_sources(self, *, cells: npt.ArrayLike) -> PointSources:
        """The point sources drawn in the given cells; each cell always draws the same ones."""
        parts = [self._draw_cell(int(c)) for c in np.unique(np.asarray(cells, dtype=np.int64))]
        if not parts:
            empty = np.zeros(0)
            return PointSources(empty, empty, empty, empty, np.zeros(0, np.int64))
        return PointSources(*(np.concatenate(columns) for columns in zip(*parts)))

    def _draw_cell(self, cell: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng([self.seed, _SOURCE_STREAM, cell])
        count = rng.poisson(self.source_density_per_deg2 * healpix.pixel_area_deg2(self.sky_order))
        ra, dec = _random_positions_in_cells(rng, np.full(count, cell, np.int64), order=self.sky_order)
        flux = _power_law_fluxes(
            rng, count, low=self.source_flux_min_jy, high=self.source_flux_max_jy, slope=self.source_count_slope
        )
        alpha = rng.normal(self.source_spectral_index, self.source_spectral_index_scatter, count)
        return ra, dec, flux, alpha, np.full(count, cell, np.int64)

    # ----------------------------------------------------------------------------------
    # Halos
    # ----------------------------------------------------------------------------------

    @cached_property
    def _all_halos(self) -> Table:
        return _vstack_halos(self._seeded_halos(), self._placed_halos(), seed=self.seed)

    def truth(self, region: Region | str | None = None) -> Table:
        """The injected halos in ``region`` (a Region, a ``parse_region`` string, or all sky).

        Columns: ``name`` (``MOCK-HALO-<cell>`` for seeded halos), ``ra``, ``dec`` (deg),
        ``z``, ``size_mpc``, ``r_e_arcmin`` (= size / D_A / (2 * 2.6)),
        ``flux_150mhz_jy`` and ``spectral_index``.
        """
        halos = self._all_halos
        if region is None or len(halos) == 0:
            return halos.copy()
        region = parse_region(region) if isinstance(region, str) else region
        return halos[region.contains(np.asarray(halos["ra"]), np.asarray(halos["dec"]))]

    def _seeded_halos(self) -> dict[str, np.ndarray]:
        # One draw over every cell on the sky, so a halo's existence and properties do
        # not depend on which region asked for it.
        rng = np.random.default_rng([self.seed, _HALO_STREAM])
        npix = healpix.order2npix(self.halo_order)
        chance = self.halo_density_per_deg2 * healpix.pixel_area_deg2(self.halo_order)
        cells = np.flatnonzero(rng.random(npix) < chance).astype(np.int64)
        ra, dec = _random_positions_in_cells(rng, cells, order=self.halo_order)
        z = rng.uniform(*self.halo_redshift_range, cells.size)
        size_mpc = rng.uniform(*self.halo_size_mpc_range, cells.size)
        snr = rng.uniform(*self.halo_peak_snr_range, cells.size)
        r_e_arcmin = halo_r_e_arcmin(size_mpc=size_mpc, z=z)
        flux = snr * self.noise_jy_per_beam(150.0) / exponential_peak_per_flux(
            r_e_arcmin=r_e_arcmin, beam_fwhm_arcmin=self.beam_fwhm_arcmin(150.0)
        )
        names = np.array([f"MOCK-HALO-{c:06d}" for c in cells], dtype=str)
        return dict(name=names, ra=ra, dec=dec, z=z, size_mpc=size_mpc, r_e_arcmin=r_e_arcmin, flux_150mhz_jy=flux)

    def _placed_halos(self) -> dict[str, np.ndarray]:
        hand = self.halos
        z = np.array([h.z for h in hand], float)
        size_mpc = np.array([h.size_mpc for h in hand], float)
        return dict(
            name=np.array([h.name or f"MOCK-HALO-USER-{i:03d}" for i, h in enumerate(hand)], dtype=str),
            ra=np.array([h.ra_deg for h in hand], float),
            dec=np.array([h.dec_deg for h in hand], float),
            z=z,
            size_mpc=size_mpc,
            r_e_arcmin=halo_r_e_arcmin(size_mpc=size_mpc, z=z),
            flux_150mhz_jy=np.array([h.flux_150mhz_jy for h in hand], float),
        )

    def halo_flux_jy(self, flux_150mhz_jy: npt.ArrayLike, freq_mhz: float) -> FloatArray:
        """Halo flux density at ``freq_mhz`` from its 150-MHz flux and the steep halo spectrum."""
        return np.asarray(flux_150mhz_jy, float) * (freq_mhz / 150.0) ** self.halo_spectral_index


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def halo_r_e_arcmin(*, size_mpc: npt.ArrayLike, z: npt.ArrayLike) -> FloatArray:
    """e-folding radius in arcmin of a halo of diameter ``size_mpc`` at redshift ``z``.

    Angular diameter = size / D_A(z) (``COSMOLOGY``); r_e = diameter / (2 * 2.6).
    """
    size_mpc, z = np.broadcast_arrays(np.asarray(size_mpc, float), np.asarray(z, float))
    if size_mpc.size == 0:
        return np.zeros(size_mpc.shape)
    d_a_mpc = COSMOLOGY.angular_diameter_distance(z).to_value("Mpc")
    return np.degrees(size_mpc / d_a_mpc) * 60.0 / (2.0 * HALO_RADIUS_PER_RE)


def exponential_peak_per_flux(*, r_e_arcmin: npt.ArrayLike, beam_fwhm_arcmin: float) -> FloatArray:
    """Peak brightness (Jy/beam) per Jy of an exponential disc seen through a Gaussian beam.

    For I(r) = I0 exp(-r/a) with total flux S = 2 pi I0 a**2, the beam-convolved peak in
    Jy/beam is S (s/a)**2 [1 - (s/a) sqrt(pi/2) erfcx(s / (sqrt(2) a))], s the beam's
    Gaussian sigma. It tends to 1 for a point source (a << s) and to beam area over
    2 pi a**2 for a resolved disc (a >> s).
    """
    a = np.asarray(r_e_arcmin, float)
    s = beam_fwhm_arcmin / FWHM_PER_SIGMA
    ratio = s / a
    return ratio**2 * (1.0 - ratio * np.sqrt(np.pi / 2.0) * erfcx(ratio / np.sqrt(2.0)))


def halos_of(truth: Table, *, spectral_index: float) -> list[Halo]:
    """The halos of a truth table (``MockSky.truth``) as ``survey.images.halos.Halo``: round, smooth discs.

    Parameters
    ----------
    truth : astropy.table.Table
        Rows with ``name``, ``ra``, ``dec``, ``r_e_arcmin`` and ``flux_150mhz_jy``.
    spectral_index : float
        The sky's halo spectral index.

    Returns
    -------
    list of Halo
        One per row, in row order.
    """
    return [Halo(float(row["ra"]), float(row["dec"]), float(row["flux_150mhz_jy"]), float(row["r_e_arcmin"]),
                 spectral_index=spectral_index, name=str(row["name"])) for row in truth]


def _power_law_fluxes(rng: np.random.Generator, count: int, *, low: float, high: float, slope: float) -> FloatArray:
    """Inverse-CDF draws from dN/dS ~ S**-slope truncated to [low, high]."""
    k = 1.0 - slope
    u = rng.random(count)
    return (low**k + u * (high**k - low**k)) ** (1.0 / k)


def _random_positions_in_cells(
    rng: np.random.Generator, cells: IntArray, *, order: int
) -> tuple[FloatArray, FloatArray]:
    """Uniform positions inside NESTED cells: centres of random sub-pixels far below them."""
    sub = rng.integers(0, 1 << (2 * POSITION_SUBORDER), cells.size, dtype=np.int64)
    return healpix.pix2ang(order + POSITION_SUBORDER, (cells << (2 * POSITION_SUBORDER)) + sub)


def _vstack_halos(*parts: dict[str, np.ndarray], seed: int) -> Table:
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    table = Table(columns)
    for name in ("ra", "dec"):
        table[name].unit = "deg"
    table["size_mpc"].unit = "Mpc"
    table["r_e_arcmin"].unit = "arcmin"
    table["flux_150mhz_jy"].unit = "Jy"
    table.meta["description"] = f"halos injected into MockSky(seed={seed})"
    return table


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render_band(sky: MockSky, band: Band, request: FieldRequest, *, sources: PointSources, halos: Table) -> BandImage:
    """One band of a field: point sources + halos + beam-correlated noise, Jy/beam, float32.

    The grid is a north-up TAN projection centred on the request at the band's native
    pixel scale, ``ceil(width / pixel)`` pixels on a side. Pixels are left unclipped.

    Parameters
    ----------
    sky : MockSky
        The sky: beam, noise and halo spectrum per frequency, and the seed of the noise.
    band : Band
        Band to render, at its centre frequency and native pixel scale.
    request : FieldRequest
        Field centre (ICRS degrees) and side (degrees); with ``sky.seed`` and the band it
        also seeds the noise, so a field renders the same every time.
    sources : PointSources
        Point sources that may reach the field (``MockSource.nearby``); those more than
        6 beam sigma outside the image are skipped.
    halos : astropy.table.Table
        Halos that may reach the field, as rows of ``MockSky.truth`` (``ra``, ``dec``,
        ``r_e_arcmin``, ``flux_150mhz_jy`` are used); may be empty.

    Returns
    -------
    BandImage
        float32 Jy/beam pixels with their TAN WCS; ``origin`` names the seed and the field.
    """
    n = int(np.ceil(request.width_deg / band.pixel_deg))
    wcs = tan_wcs(ra_deg=request.ra_deg, dec_deg=request.dec_deg, pixel_deg=band.pixel_deg, shape=(n, n))
    freq = band.centre_mhz
    sigma_px = sky.beam_fwhm_arcmin(freq) / 60.0 / band.pixel_deg / FWHM_PER_SIGMA
    image = np.zeros((n, n))
    x, y = world_to_pixel(wcs, sources.ra_deg, sources.dec_deg)
    _add_gaussians(image, x=x, y=y, peak=sources.flux_at(freq, reference_mhz=sky.reference_mhz), sigma_px=sigma_px)
    if len(halos):
        image += render_halos((n, n), wcs, halos_of(halos, spectral_index=sky.halo_spectral_index), freq_mhz=freq,
                              pixel_deg=band.pixel_deg, beam_fwhm_arcmin=sky.beam_fwhm_arcmin(freq))
    image += correlated_noise((n, n), sigma=sky.noise_jy_per_beam(freq), sigma_px=sigma_px,
                               rng=np.random.default_rng(_noise_seed(sky.seed, band, request)))
    origin = f"mock seed={sky.seed} field={request.key}"
    return BandImage(band=band, data=image.astype(np.float32), wcs=wcs, origin=origin)


FLOAT32_UNDERFLOW = 2.0**-151
"""Below this a float64 rounds to zero in float32 (half the smallest float32 subnormal)."""


def _add_gaussians(image: FloatArray, *, x: FloatArray, y: FloatArray, peak: FloatArray, sigma_px: float) -> None:
    """Add circular Gaussians in place, each on its own stamp.

    Sources more than 6 sigma outside the image are left out. Each stamp reaches as far
    as any source's Gaussian stays above ``FLOAT32_UNDERFLOW`` (about 15 sigma for 10 Jy):
    the terms beyond it would vanish in the float32 image even summed over every source, so
    the result is the sum over the whole image, at a cost per source of its stamp rather
    than of the image. A circular Gaussian is separable: a stamp is the outer product of
    its row and column profiles.
    """
    ny, nx = image.shape
    pad = 6.0 * sigma_px
    keep = (x > -pad) & (x < nx - 1 + pad) & (y > -pad) & (y < ny - 1 + pad)
    if not keep.any():
        return
    x, y, peak = x[keep], y[keep], peak[keep]
    total = float(np.sum(np.abs(peak)))
    span = int(np.ceil(sigma_px * np.sqrt(2.0 * np.log(max(total, 1.0) / FLOAT32_UNDERFLOW))))
    # Every stamp's row and column profiles at once; the loop only adds their outer products.
    gx, x0 = _profiles(x, span=span, sigma_px=sigma_px)
    gy, y0 = _profiles(y, span=span, sigma_px=sigma_px)
    gy *= peak[:, None]
    for k in range(x.size):
        xs = slice(max(x0[k], 0), min(x0[k] + gx.shape[1], nx))
        ys = slice(max(y0[k], 0), min(y0[k] + gy.shape[1], ny))
        if xs.start < xs.stop and ys.start < ys.stop:
            image[ys, xs] += gy[k, ys.start - y0[k] : ys.stop - y0[k], None] * gx[k, xs.start - x0[k] : xs.stop - x0[k]]


def _profiles(centre: FloatArray, *, span: int, sigma_px: float) -> tuple[FloatArray, IntArray]:
    """Gaussian profiles exp(-(i - centre)**2 / 2 sigma**2) on pixels i = first .. first + 2 span + 1."""
    first = np.floor(centre).astype(np.int64) - span
    pixels = first[:, None] + np.arange(2 * span + 2)
    return np.exp(-0.5 * ((pixels - centre[:, None]) / sigma_px) ** 2), first


def correlated_noise(shape: tuple[int, int], *, sigma: float, sigma_px: float, rng: np.random.Generator) -> FloatArray:
    """White noise smoothed by the beam, rescaled to rms ``sigma``: noise correlated on the beam scale.

    The rescale divides by the kernel's root-sum-square (for a separable unit-sum kernel
    k1 x k1 that is sum(k1**2)), which is exactly the factor the smoothing shrank the rms by.
    Also what ``survey.model.inject`` restores in a clipped file's zeroed pixels.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx).
    sigma : float
        RMS of the result, Jy/beam.
    sigma_px : float
        Gaussian sigma of the beam in pixels: the correlation scale.
    rng : numpy.random.Generator
        Source of the white noise.

    Returns
    -------
    numpy.ndarray
        float64 noise of rms ``sigma`` (zeros when ``sigma`` is 0).
    """
    if sigma == 0:
        return np.zeros(shape)
    radius = int(4.0 * sigma_px + 0.5)
    k1 = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    k1 /= k1.sum()
    smoothed = gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap", truncate=4.0)
    return smoothed * (sigma / np.sum(k1**2))


def _noise_seed(seed: int, band: Band, request: FieldRequest) -> list[int]:
    """Seed of one band's noise in one field: fixed by the sky seed and the field geometry."""
    geometry = f"{request.ra_deg:.9f},{request.dec_deg:.9f},{request.width_deg:.9f}".encode()
    digest = int.from_bytes(hashlib.blake2b(geometry, digest_size=8).digest(), "little")
    return [seed, _NOISE_STREAM, BANDS.index(band) if band in BANDS else 99, digest]


class MockSource(ImageSource):
    """An ImageSource that renders a MockSky: the survey runs on it with no data or network.

    Parameters
    ----------
    sky : MockSky, optional
        The sky to render (default ``MockSky()``, seed 0).
    bands : sequence of Band
        Bands to render (default all four GLEAM bands).

    >>> from survey.sky.fields import FieldRequest
    >>> images = MockSource(MockSky(seed=3)).read_field(FieldRequest("demo", 10.0, -30.0, 0.5))
    >>> images["170-231"].data.shape, images["170-231"].data.dtype
    ((65, 65), dtype('float32'))
    """

    name = "mock"

    def __init__(self, sky: MockSky | None = None, *, bands: Sequence[Band] = BANDS):
        self.sky = sky if sky is not None else MockSky()
        self.bands = tuple(bands)

    def describe(self) -> str:
        return f"mock seed={self.sky.seed}"

    def truth(self, region: Region) -> Table:
        """The halos the mock sky injected inside ``region`` (``MockSky.truth``)."""
        return self.sky.truth(region)

    def read_field(self, request: FieldRequest) -> dict[str, BandImage]:
        """Render every band of ``request`` (see ``render_band``)."""
        if not (request.width_deg > 0 and -90 <= request.dec_deg <= 90):
            problem = f"cannot render a field of width {request.width_deg} deg at Dec {request.dec_deg}"
            raise BadInputError(request.key, problem)
        sources, halos = self.nearby(request)
        return {b.name: render_band(self.sky, b, request, sources=sources, halos=halos) for b in self.bands}

    def nearby(self, request: FieldRequest) -> tuple[PointSources, Table]:
        """Sources and halos that can reach the field: within its half-diagonal plus a few beams."""
        widest_beam_deg = max(self.sky.beam_fwhm_arcmin(b.centre_mhz) for b in self.bands) / 60.0
        reach = request.width_deg / np.sqrt(2.0) + 4.0 * widest_beam_deg
        cells = self.sky.cells_near(ra_deg=request.ra_deg, dec_deg=request.dec_deg, radius_deg=reach)
        halos = self.sky.truth()
        if len(halos):
            distance = angular_distance_deg(halos["ra"], halos["dec"], request.ra_deg, request.dec_deg)
            halos = halos[distance < reach + 12.0 * np.asarray(halos["r_e_arcmin"]) / 60.0]
        return self.sky.point_sources(cells=cells), halos
