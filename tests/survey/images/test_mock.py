"""The mock sky: deterministic, GLEAM-like (density, spectra, beam, noise), with visible halos."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from survey.exceptions import BadInputError
from survey.images import halos as halo_module
from survey.images import mock
from survey.images.base import world_to_pixel
from survey.images.mock import (
    COSMOLOGY,
    FWHM_PER_SIGMA,
    MockHalo,
    MockSky,
    MockSource,
    exponential_peak_per_flux,
)
from survey.sky import healpix
from survey.sky.bands import BANDS, band_by_name
from survey.sky.fields import FieldRequest
from survey.sky.geometry import angular_distance_deg

SOURCES_PER_DEG2 = 12.6
"""Data README: the GLEAM EGC has ~12.6 sources per deg2 above ~50 mJy."""

NOISE_200MHZ_JY = 0.010
"""Data README: rms about 10 mJy/beam in the 170-231 MHz detection image."""


def _sigma_px(sky: MockSky, band) -> float:
    return sky.beam_fwhm_arcmin(band.centre_mhz) / 60.0 / band.pixel_deg / FWHM_PER_SIGMA


def _fit_amplitude(image, *, ra_deg: float, dec_deg: float, sigma_px: float) -> float:
    """Least-squares peak of a beam-shaped Gaussian at a known position (Jy/beam)."""
    x, y = image.wcs.wcs_world2pix([ra_deg], [dec_deg], 0)
    half = int(3 * sigma_px) + 1
    x0, y0 = int(round(x[0])) - half, int(round(y[0])) - half
    yy, xx = np.mgrid[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1]
    model = np.exp(-0.5 * ((xx - x[0]) ** 2 + (yy - y[0]) ** 2) / sigma_px**2)
    data = image.data[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1].astype(float)
    return float((data * model).sum() / (model**2).sum())


def _sources_in(sky: MockSky, request: FieldRequest):
    cells = sky.cells_near(ra_deg=request.ra_deg, dec_deg=request.dec_deg, radius_deg=request.width_deg)
    return sky.point_sources(cells=cells)


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_pixels_and_another_seed_does_not():
    request = FieldRequest("det", 30.0, -20.0, 1.0)
    first = MockSource(MockSky(seed=5)).read_field(request)
    again = MockSource(MockSky(seed=5)).read_field(request)
    other = MockSource(MockSky(seed=6)).read_field(request)
    for name in first:
        assert np.array_equal(first[name].data, again[name].data)
        assert not np.array_equal(first[name].data, other[name].data)


def sum_over_whole_image(image, *, x, y, peak, sigma_px):
    """Reference for ``_add_gaussians``: every source over every pixel, as one matrix product."""
    ny, nx = image.shape
    pad = 6.0 * sigma_px
    keep = (x > -pad) & (x < nx - 1 + pad) & (y > -pad) & (y < ny - 1 + pad)
    gx = np.exp(-0.5 * ((np.arange(nx)[None, :] - x[keep, None]) / sigma_px) ** 2)
    gy = np.exp(-0.5 * ((np.arange(ny)[None, :] - y[keep, None]) / sigma_px) ** 2)
    image += (gy * peak[keep, None]).T @ gx


def smooth_whole_canvas(shape, wcs, halos, *, freq_mhz, pixel_deg, beam_fwhm_arcmin):
    """Reference for ``render_halos``: the same discs, the beam smoothing run over the whole padded canvas."""
    sigma_px = beam_fwhm_arcmin / 60.0 / pixel_deg / halo_module.FWHM_PER_SIGMA
    pad = int(np.ceil(4 * sigma_px)) + 1
    diffuse = np.zeros((shape[0] + 2 * pad, shape[1] + 2 * pad))
    xs, ys = world_to_pixel(wcs, [h.ra_deg for h in halos], [h.dec_deg for h in halos])
    for halo, xc, yc in zip(halos, xs + pad, ys + pad):
        disc, x0, y0 = halo_module._disc(halo, xc=xc, yc=yc, pixel_deg=pixel_deg, flux_jy=halo.flux_jy(freq_mhz))
        halo_module._paste(diffuse, disc, x0=x0, y0=y0)
    smooth = gaussian_filter(diffuse, sigma_px, mode="constant", truncate=4.0) * 2.0 * np.pi * sigma_px**2
    return smooth[pad : pad + shape[0], pad : pad + shape[1]]


@pytest.mark.parametrize(("noise", "sources", "halos"), [
    (NOISE_200MHZ_JY, SOURCES_PER_DEG2, 1.0),
    (0.0, SOURCES_PER_DEG2, 1.0),
    (0.0, 0.0, 0.0),  # two placed halos alone: their faint tails and the smoothed box's edges show
])
def test_stamped_rendering_gives_the_pixels_of_summing_over_the_whole_image(monkeypatch, noise, sources, halos):
    """Sources on stamps and halos smoothed in their box only: the same float32 pixels, even the faint tails."""
    placed = (MockHalo(ra_deg=40.6, dec_deg=-30.0, z=0.05, size_mpc=1.5, flux_150mhz_jy=2.0),  # across the east edge
              MockHalo(ra_deg=39.9, dec_deg=-30.1, z=0.3, size_mpc=0.5, flux_150mhz_jy=0.5))
    sky = MockSky(seed=8, halo_density_per_deg2=halos, noise_jy_per_beam_at_reference=noise, halos=placed,
                  source_density_per_deg2=sources)
    request = FieldRequest("stamps", 40.0, -30.0, 1.2)
    fast = MockSource(sky).read_field(request)
    monkeypatch.setattr(mock, "_add_gaussians", sum_over_whole_image)
    monkeypatch.setattr(mock, "render_halos", smooth_whole_canvas)
    slow = MockSource(sky).read_field(request)
    for band, image in fast.items():
        np.testing.assert_array_equal(image.data, slow[band].data, err_msg=band)
        assert image.data.max() > 0.01  # sources or halos were drawn


def test_overlapping_fields_draw_the_same_sources():
    sky = MockSky(seed=7)
    a = _sources_in(sky, FieldRequest("a", 100.0, -40.0, 2.0))
    b = _sources_in(sky, FieldRequest("b", 101.0, -40.5, 2.0))
    shared = np.intersect1d(a.cell, b.cell)
    assert shared.size > 0
    in_a, in_b = np.isin(a.cell, shared), np.isin(b.cell, shared)
    assert in_a.sum() > 0
    for column in ("ra_deg", "dec_deg", "flux_jy", "spectral_index"):
        assert np.array_equal(getattr(a, column)[in_a], getattr(b, column)[in_b])


def test_overlapping_fields_render_a_source_with_the_same_flux():
    """Noise-free: a bright source in the overlap of two fields measures the same in both."""
    sky = MockSky(seed=7, noise_jy_per_beam_at_reference=0.0, halo_density_per_deg2=0.0)
    band = band_by_name("170-231")
    source = MockSource(sky, bands=[band])
    field_a, field_b = FieldRequest("a", 100.0, -40.0, 2.0), FieldRequest("b", 100.8, -40.3, 2.0)
    catalogue = _sources_in(sky, field_a)
    in_both = (angular_distance_deg(catalogue.ra_deg, catalogue.dec_deg, 100.4, -40.15) < 0.3)
    brightest = np.flatnonzero(in_both)[np.argmax(catalogue.flux_jy[in_both])]
    ra, dec = catalogue.ra_deg[brightest], catalogue.dec_deg[brightest]
    sigma = _sigma_px(sky, band)
    flux_a = _fit_amplitude(source.read_field(field_a)[band.name], ra_deg=ra, dec_deg=dec, sigma_px=sigma)
    flux_b = _fit_amplitude(source.read_field(field_b)[band.name], ra_deg=ra, dec_deg=dec, sigma_px=sigma)
    assert flux_a == pytest.approx(flux_b, rel=0.01)
    assert flux_a == pytest.approx(catalogue.flux_at(band.centre_mhz, reference_mhz=200.0)[brightest], rel=0.1)


# --------------------------------------------------------------------------------------
# GLEAM-like statistics
# --------------------------------------------------------------------------------------


def test_source_density_matches_gleam_above_50_mjy():
    sky = MockSky(seed=11)
    cells = healpix.query_disc(sky.sky_order, ra_deg=60.0, dec_deg=-30.0, radius_deg=12.0, inclusive=False)
    catalogue = sky.point_sources(cells=cells)
    area_deg2 = cells.size * healpix.pixel_area_deg2(sky.sky_order)
    above = np.count_nonzero(catalogue.flux_jy >= 0.050)
    assert above == len(catalogue)
    expected = SOURCES_PER_DEG2 * area_deg2
    assert abs(above - expected) < 4 * np.sqrt(expected)
    # The counts follow the configured power law: N(>S) ~ S**(1 - slope).
    bright = np.count_nonzero(catalogue.flux_jy >= 0.5)
    k, low, high = 1 - sky.source_count_slope, sky.source_flux_min_jy, sky.source_flux_max_jy
    expected_bright = above * ((0.5 / low) ** k - (high / low) ** k) / (1 - (high / low) ** k)
    assert abs(bright - expected_bright) < 4 * np.sqrt(expected_bright)


def test_spectral_index_of_a_bright_source_is_recovered_from_the_four_bands():
    sky = MockSky(seed=3, halo_density_per_deg2=0.0)
    request = FieldRequest("spec", 45.0, -25.0, 2.5)
    images = MockSource(sky).read_field(request)
    catalogue = _sources_in(sky, request)
    central = angular_distance_deg(catalogue.ra_deg, catalogue.dec_deg, request.ra_deg, request.dec_deg) < 0.8
    target = np.flatnonzero(central)[np.argmax(catalogue.flux_jy[central])]
    assert catalogue.flux_jy[target] > 0.5
    ra, dec = catalogue.ra_deg[target], catalogue.dec_deg[target]
    fluxes = [_fit_amplitude(images[b.name], ra_deg=ra, dec_deg=dec, sigma_px=_sigma_px(sky, b)) for b in BANDS]
    slope = np.polyfit(np.log([b.centre_mhz for b in BANDS]), np.log(fluxes), 1)[0]
    assert slope == pytest.approx(catalogue.spectral_index[target], abs=0.05)


def test_spectral_indices_scatter_around_gleam_typical():
    catalogue = _sources_in(MockSky(seed=4), FieldRequest("s", 200.0, -10.0, 10.0))
    assert np.mean(catalogue.spectral_index) == pytest.approx(-0.8, abs=0.03)


def test_beam_follows_the_readme_values():
    sky = MockSky()
    for freq_mhz, fwhm_arcmin in [(154.0, 2.6), (118.0, 3.4), (88.0, 4.5)]:
        assert sky.beam_fwhm_arcmin(freq_mhz) == pytest.approx(fwhm_arcmin, rel=0.03)


@pytest.mark.parametrize("band", BANDS, ids=lambda b: b.name)
def test_noise_rms_and_beam_correlation_per_band(band):
    sky = MockSky(seed=8, source_density_per_deg2=0.0, halo_density_per_deg2=0.0)
    image = MockSource(sky, bands=[band]).read_field(FieldRequest("noise", 150.0, -45.0, 3.0))[band.name].data
    assert image.std() == pytest.approx(sky.noise_jy_per_beam(band.centre_mhz), rel=0.10)
    assert sky.noise_jy_per_beam(200.0) == pytest.approx(NOISE_200MHZ_JY)
    # White noise smoothed by a Gaussian of sigma s has autocorrelation exp(-d**2 / (4 s**2)).
    sigma = _sigma_px(sky, band)
    lag1 = np.corrcoef(image[:, :-1].ravel(), image[:, 1:].ravel())[0, 1]
    assert lag1 == pytest.approx(np.exp(-1.0 / (4 * sigma**2)), abs=0.05)


def test_noise_is_higher_at_low_frequency():
    sky = MockSky()
    noise = [sky.noise_jy_per_beam(b.centre_mhz) for b in BANDS]
    assert noise == sorted(noise, reverse=True)


def test_images_are_unclipped():
    images = MockSource(MockSky(seed=9)).read_field(FieldRequest("raw", 250.0, -60.0, 2.0))
    for image in images.values():
        assert image.data.dtype == np.float32
        assert np.count_nonzero(image.data == 0) == 0
        assert np.mean(image.data < 0) > 0.3


def test_fields_have_native_pixels_and_the_requested_centre():
    request = FieldRequest("grid", 0.2, -89.5, 1.3)
    images = MockSource(MockSky(seed=1)).read_field(request)
    assert list(images) == [b.name for b in BANDS]
    for band in BANDS:
        image = images[band.name]
        n = int(np.ceil(request.width_deg / band.pixel_deg))
        assert image.data.shape == (n, n)
        assert image.pixel_deg == pytest.approx(band.pixel_deg)
        assert angular_distance_deg(*image.centre_radec, request.ra_deg, request.dec_deg) < 1e-6
        assert image.origin == "mock seed=1 field=grid"


# --------------------------------------------------------------------------------------
# Halos
# --------------------------------------------------------------------------------------


def test_a_seeded_halo_appears_at_its_truth_position():
    sky = MockSky(seed=2, source_density_per_deg2=0.0)
    halo = sky.truth("cone:60,-30,20")[0]
    band = band_by_name("139-170")
    request = FieldRequest("halo", float(halo["ra"]), float(halo["dec"]) + 0.3, 1.5)
    image = MockSource(sky, bands=[band]).read_field(request)[band.name]
    smooth = gaussian_filter(image.data.astype(float), _sigma_px(sky, band))
    y, x = np.unravel_index(np.argmax(smooth), smooth.shape)
    ra, dec = image.wcs.wcs_pix2world([x], [y], 0)
    offset_arcmin = angular_distance_deg(ra[0], dec[0], halo["ra"], halo["dec"]) * 60
    assert offset_arcmin < sky.beam_fwhm_arcmin(band.centre_mhz)


def test_a_placed_halo_carries_its_flux_and_steep_spectrum():
    """Noise-free, the image integrates to the halo's flux at each band's frequency."""
    placed = MockHalo(ra_deg=20.0, dec_deg=-50.0, z=0.15, size_mpc=1.2, flux_150mhz_jy=0.3, name="A-TEST")
    sky = MockSky(seed=1, source_density_per_deg2=0.0, halo_density_per_deg2=0.0, noise_jy_per_beam_at_reference=0.0,
                  halos=(placed,))
    truth = sky.truth()
    assert list(truth["name"]) == ["A-TEST"]
    images = MockSource(sky).read_field(FieldRequest("placed", 20.0, -50.0, 2.0))
    for band in BANDS:
        beam_area_px = 2 * np.pi * _sigma_px(sky, band) ** 2
        total_jy = images[band.name].data.sum() / beam_area_px
        assert total_jy == pytest.approx(0.3 * (band.centre_mhz / 150.0) ** -1.3, rel=0.02)


def test_halo_size_follows_the_cosmology():
    placed = MockHalo(ra_deg=0.0, dec_deg=0.0, z=0.2, size_mpc=1.0, flux_150mhz_jy=0.1)
    truth = MockSky(halo_density_per_deg2=0.0, halos=(placed,)).truth()
    diameter_arcmin = (1000 * u.kpc * COSMOLOGY.arcsec_per_kpc_proper(0.2)).to_value(u.arcmin)
    assert truth["r_e_arcmin"][0] == pytest.approx(diameter_arcmin / (2 * 2.6), rel=1e-6)
    assert truth["name"][0] == "MOCK-HALO-USER-000"


def test_seeded_halos_are_visible_by_construction():
    truth = MockSky(seed=12).truth("gleam")
    sky = MockSky(seed=12)
    peak = truth["flux_150mhz_jy"] * exponential_peak_per_flux(
        r_e_arcmin=truth["r_e_arcmin"], beam_fwhm_arcmin=sky.beam_fwhm_arcmin(150.0)
    )
    snr = peak / sky.noise_jy_per_beam(150.0)
    low, high = sky.halo_peak_snr_range
    assert np.all((snr > low - 1e-9) & (snr < high + 1e-9))
    assert all(name.startswith("MOCK-HALO-") for name in truth["name"])


def test_truth_selects_by_region_and_has_the_configured_density():
    sky = MockSky(seed=13, halo_density_per_deg2=0.05)
    everything = sky.truth()
    expected = 0.05 * 4 * np.pi * np.degrees(1.0) ** 2
    assert abs(len(everything) - expected) < 4 * np.sqrt(expected)
    cone = sky.truth("cone:120,-30,15")
    assert 0 < len(cone) < len(everything)
    assert np.all(angular_distance_deg(cone["ra"], cone["dec"], 120, -30) <= 15)


def test_exponential_peak_per_flux_limits():
    # Unresolved: the peak in Jy/beam is the flux.
    assert exponential_peak_per_flux(r_e_arcmin=1e-3, beam_fwhm_arcmin=2.0) == pytest.approx(1.0, rel=1e-3)
    # Resolved: beam area over the disc's 2 pi r_e**2.
    sigma = 2.0 / FWHM_PER_SIGMA
    assert exponential_peak_per_flux(r_e_arcmin=100.0, beam_fwhm_arcmin=2.0) == pytest.approx(
        sigma**2 / 100.0**2, rel=0.02
    )


def test_rendered_halo_peak_matches_the_analytic_peak():
    placed = MockHalo(ra_deg=80.0, dec_deg=-20.0, z=0.1, size_mpc=1.0, flux_150mhz_jy=1.0)
    sky = MockSky(source_density_per_deg2=0.0, halo_density_per_deg2=0.0, noise_jy_per_beam_at_reference=0.0,
                  halos=(placed,))
    band = band_by_name("170-231")
    image = MockSource(sky, bands=[band]).read_field(FieldRequest("peak", 80.0, -20.0, 1.0))[band.name]
    expected = sky.halo_flux_jy(1.0, band.centre_mhz) * exponential_peak_per_flux(
        r_e_arcmin=sky.truth()["r_e_arcmin"][0], beam_fwhm_arcmin=sky.beam_fwhm_arcmin(band.centre_mhz)
    )
    assert image.data.max() == pytest.approx(float(expected), rel=0.05)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_bad_parameters_and_requests_are_rejected():
    with pytest.raises(BadInputError, match="source_flux_min_jy"):
        MockSky(source_flux_min_jy=2.0, source_flux_max_jy=1.0)
    with pytest.raises(BadInputError, match="below one per halo cell"):
        MockSky(halo_density_per_deg2=5.0)
    with pytest.raises(BadInputError, match="tile 5/7: cannot render a field of width 0"):
        MockSource().read_field(FieldRequest("tile 5/7", 10.0, 0.0, 0.0))
