"""The halo model (survey.images.halos): flux, spectrum, shape and beam, checked against arithmetic done apart."""

from __future__ import annotations

import numpy as np
import pytest

from survey.images.base import BandImage, tan_wcs, world_to_pixel
from survey.images.halos import (
    FWHM_PER_SIGMA,
    Halo,
    add_halos,
    gleam_beam_fwhm_arcmin,
    halo_pixels,
    halo_table,
    halos_from_table,
    render_halos,
)
from survey.images.mock import exponential_peak_per_flux
from survey.sky.bands import BANDS


def blank(band, *, n=301, ra=30.0, dec=-40.0) -> BandImage:
    wcs = tan_wcs(ra_deg=ra, dec_deg=dec, pixel_deg=band.pixel_deg, shape=(n, n))
    return BandImage(band, np.zeros((n, n), np.float32), wcs, f"blank {band.name}")


def beam_area_px(band) -> float:
    sigma_px = gleam_beam_fwhm_arcmin(band.centre_mhz) / 60.0 / band.pixel_deg / FWHM_PER_SIGMA
    return 2.0 * np.pi * sigma_px**2


@pytest.mark.parametrize("band", BANDS, ids=[b.name for b in BANDS])
def test_a_halo_carries_its_flux_at_each_band_through_its_spectral_index(band):
    halo = Halo(30.0, -40.0, flux_150mhz_jy=0.8, r_e_arcmin=2.0, spectral_index=-1.3)
    image = halo_pixels(blank(band), [halo])
    integrated = image.sum() / beam_area_px(band)  # Jy/beam summed over pixels, per beam area: Jy
    assert integrated == pytest.approx(0.8 * (band.centre_mhz / 150.0) ** -1.3, rel=1e-6)


@pytest.mark.parametrize("r_e", [1.0, 3.0, 6.0])  # a disc much smaller than a pixel has no pixel-sized peak to compare
def test_the_peak_of_a_round_halo_is_the_closed_form_of_a_disc_seen_through_the_beam(r_e):
    band = BANDS[2]
    image = halo_pixels(blank(band, n=401), [Halo(30.0, -40.0, flux_150mhz_jy=1.0, r_e_arcmin=r_e)])
    expected = band_flux = 1.0 * (band.centre_mhz / 150.0) ** -1.3
    expected = band_flux * exponential_peak_per_flux(r_e_arcmin=r_e, beam_fwhm_arcmin=gleam_beam_fwhm_arcmin(band.centre_mhz))
    assert image.max() == pytest.approx(float(expected), rel=0.03)  # pixelisation of the cusp


def test_axis_ratio_and_position_angle_set_the_shape_on_the_sky():
    band = BANDS[3]
    image = blank(band)
    for pa, wide_axis in ((0.0, 0), (90.0, 1)):  # north: along y (axis 0); east: along x (axis 1)
        pixels = halo_pixels(image, [Halo(30.0, -40.0, 1.0, r_e_arcmin=4.0, axis_ratio=0.3, position_angle_deg=pa)])
        yy, xx = np.indices(pixels.shape)
        w = pixels / pixels.sum()
        var_y = (w * (yy - (w * yy).sum()) ** 2).sum()
        var_x = (w * (xx - (w * xx).sum()) ** 2).sum()
        assert (var_y > 3 * var_x) if wide_axis == 0 else (var_x > 3 * var_y)


def test_turbulence_breaks_the_disc_up_but_keeps_its_flux():
    band = BANDS[3]
    smooth = halo_pixels(blank(band), [Halo(30.0, -40.0, 1.0, r_e_arcmin=3.0)])
    rough = halo_pixels(blank(band), [Halo(30.0, -40.0, 1.0, r_e_arcmin=3.0, turbulence=0.8, seed=4)])
    assert rough.sum() == pytest.approx(smooth.sum(), rel=1e-9)
    assert np.abs(rough - smooth).max() > 0.1 * smooth.max()


def test_a_halo_off_the_image_adds_nothing_and_one_at_the_edge_adds_part():
    band = BANDS[0]
    image = blank(band, n=101)
    assert not halo_pixels(image, [Halo(200.0, 10.0, 1.0, 2.0)]).any()
    x, y = world_to_pixel(image.wcs, [30.0], [-40.0])
    edge_ra = 30.0 + 50 * band.pixel_deg / np.cos(np.radians(40.0))  # about the left edge
    part = halo_pixels(image, [Halo(edge_ra, -40.0, 1.0, 2.0)]).sum() / beam_area_px(band)
    assert 0.2 < part / (1.0 * (band.centre_mhz / 150.0) ** -1.3) < 0.8


def test_add_halos_adds_the_rendered_pixels_to_a_raw_image():
    band = BANDS[1]
    image = blank(band)
    noisy = BandImage(band, np.random.default_rng(1).normal(0, 0.02, image.data.shape).astype(np.float32), image.wcs, "n")
    halos = [Halo(30.0, -40.0, 2.0, 1.5)]
    out = add_halos(noisy, halos)
    np.testing.assert_allclose(out.data, noisy.data + halo_pixels(noisy, halos), atol=1e-6)
    assert "1 injected halo" in out.origin


def test_render_halos_is_the_sum_of_single_halos():
    band = BANDS[2]
    image = blank(band)
    a, b = Halo(30.0, -40.0, 1.0, 2.0), Halo(30.2, -40.1, 0.5, 1.0, axis_ratio=0.5, position_angle_deg=30.0)
    both = render_halos(image.data.shape, image.wcs, [a, b], freq_mhz=band.centre_mhz, pixel_deg=band.pixel_deg,
                        beam_fwhm_arcmin=2.5)
    apart = sum(render_halos(image.data.shape, image.wcs, [h], freq_mhz=band.centre_mhz, pixel_deg=band.pixel_deg,
                             beam_fwhm_arcmin=2.5) for h in (a, b))
    np.testing.assert_allclose(both, apart, atol=1e-12)


def test_halo_tables_round_trip_and_bad_halos_are_named():
    halos = [Halo(10.0, -20.0, 0.5, 2.0, axis_ratio=0.7, name="h1"), Halo(11.0, -21.0, 1.5, 1.0, turbulence=0.3, seed=9)]
    assert halos_from_table(halo_table(halos)) == halos
    with pytest.raises(ValueError, match=r"halo bad: flux_150mhz_jy must be >= 0; axis_ratio must lie in \(0, 1\]"):
        Halo(0.0, 0.0, -1.0, 1.0, axis_ratio=2.0, name="bad")
