"""The shared preprocessing: noise, clipping, cut-outs, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from survey.images.base import BandImage
from survey.images.discovery import scan_directory
from survey.model.preprocess import (
    BADLY_CLIPPED_NONZERO,
    CLIPPED_TRUNCATION_BLOCK_PX,
    Normalisation,
    clip_band,
    clip_symmetric,
    cutout,
    cutout_at_pixel,
    cutouts_at_pixels,
    estimate_noise,
    stack_cutouts,
)
from survey.sky.bands import BANDS, CUTOUT_SIZE
from survey.testing import add_point_source, make_noise_image, make_wcs


@pytest.fixture(scope="module")
def real_sources(gleam_dir):
    return scan_directory(gleam_dir).sources


def test_noise_fit_ignores_positive_sources():
    rng = np.random.default_rng(3)
    image = rng.normal(0, 0.02, (300, 300)).astype(np.float32)
    sources = rng.random(image.shape) < 0.05
    image[sources] += rng.exponential(0.3, sources.sum()).astype(np.float32)  # sources only add flux
    estimate = estimate_noise(image)
    assert not estimate.already_clipped
    assert estimate.sigma == pytest.approx(0.02, rel=0.05)
    assert estimate.clip_threshold == pytest.approx(3 * estimate.sigma)


def test_clip_is_symmetric_and_keeps_negative_tail():
    x = np.array([-0.5, -0.03, -0.01, 0.0, 0.01, 0.03, 0.5], np.float32)
    assert clip_symmetric(x, 0.03).tolist() == pytest.approx([-0.5, -0.03, 0, 0, 0, 0.03, 0.5])


def test_clipped_input_reports_its_threshold_instead_of_fitting_zeros():
    raw = make_noise_image((200, 200), sigma=0.01, seed=1)
    clipped = clip_symmetric(raw, 0.031)
    estimate = estimate_noise(clipped)
    assert estimate.already_clipped and estimate.method == "clip-threshold"
    assert estimate.clip_threshold == pytest.approx(0.031, rel=1e-3)


def test_raw_image_with_missing_data_zeros_is_not_mistaken_for_clipped():
    raw = make_noise_image((200, 200), sigma=0.01, seed=2)
    raw[:, :60] = 0.0  # SkyView's zero-filled edge: 30 % of the pixels
    result = clip_band(raw)
    assert not result.noise.already_clipped
    assert result.noise.sigma == pytest.approx(0.01, rel=0.05)
    assert result.no_data[:, :60].all() and not result.no_data[:, 60:].any()


images = st.builds(
    lambda seed, offset, zero_cols, n_src: _synthetic(seed, offset, zero_cols, n_src),
    st.integers(0, 10_000), st.floats(-0.03, 0.03), st.integers(0, 40), st.integers(0, 30),
)


def _synthetic(seed, offset, zero_cols, n_src):
    rng = np.random.default_rng(seed)
    image = rng.normal(offset, 0.01, (96, 96)).astype(np.float32)
    ys, xs = rng.integers(0, 96, (2, n_src))
    image[ys, xs] += rng.exponential(0.2, n_src).astype(np.float32)
    image[:, :zero_cols] = 0.0
    return image


@settings(max_examples=60, deadline=None)
@given(images)
def test_clip_band_is_idempotent(image):
    once = clip_band(image).pixels
    twice = clip_band(once).pixels
    np.testing.assert_array_equal(once, twice)


def test_clip_band_is_idempotent_on_every_real_file(real_sources):
    for source in real_sources:
        for image in source.images.values():
            once = clip_band(image.data)
            np.testing.assert_array_equal(clip_band(once.pixels).pixels, once.pixels)


def test_real_files_keep_their_clip_and_badly_clipped_ones_are_flagged(real_sources):
    """The data README's list of badly / not clipped files is exactly what gets flagged."""
    flagged = {
        (s.name, band)
        for s in real_sources
        for band, image in s.images.items()
        if {"unclipped", "badly-clipped"} & set(estimate_noise(image.data).flags)
    }
    assert flagged == {
        ("A2254", "103-134"), ("ORC 4", "72-103"), ("ORC 4", "103-134"), ("3C 315", "103-134"),
        ("PSZ1 G287.95-32.98", "139-170"), ("PSZ1 G287.95-32.98", "170-231"), ("A0122", "170-231"),
        ("GMBCG J357.91841-08.97978", "72-103"),
    }
    assert BADLY_CLIPPED_NONZERO == 0.4


def test_no_real_file_is_mistaken_for_truncated(real_sources):
    """Clipping alone empties blocks up to 96 px; the clipped-image block is larger than any."""
    largest = 0
    for source in real_sources:
        for image in source.images.values():
            assert not clip_band(image.data).no_data.any(), (source.name, image.band.name)
            empty = (image.data == 0).astype(np.float32)
            for size in range(largest + 8, CLIPPED_TRUNCATION_BLOCK_PX, 8):
                if (ndimage.uniform_filter(empty, size=size, mode="constant") > 1 - 1e-6).any():
                    largest = size
    assert largest < CLIPPED_TRUNCATION_BLOCK_PX


def test_central_cutout_of_training_file_is_the_papers_slice(real_sources):
    source = real_sources[0]
    ra, dec = source.centre_radec
    for image in source.images.values():
        cut = cutout(image, ra, dec)
        np.testing.assert_array_equal(cut.pixels, image.data[118:182, 118:182])
        assert cut.outside_fraction == 0.0


def test_point_source_lands_at_cutout_centre_in_all_four_bands():
    """Each band has its own WCS (scale, centre, reference pixel); the source is off-centre."""
    ra, dec = 150.3, -12.7
    cuts = []
    for i, band in enumerate(BANDS):
        shape = (180 + 10 * i, 200 - 10 * i)
        wcs = make_wcs(ra_deg=150.0 + 0.05 * i, dec_deg=-12.5, pixel_deg=band.pixel_deg, shape=shape, crpix=(70.0 + i, 90.0 - i))
        data = make_noise_image(shape, sigma=0.001, seed=i)
        add_point_source(data, wcs, ra_deg=ra, dec_deg=dec, flux=1.0, fwhm_px=2.5)
        cuts.append(cutout(BandImage(band, data, wcs, f"synthetic {band.name}"), ra, dec))
    stack = stack_cutouts(cuts)
    assert stack.shape == (CUTOUT_SIZE, CUTOUT_SIZE, 4)
    for channel in range(4):
        y, x = np.unravel_index(np.argmax(stack[..., channel]), stack.shape[:2])
        assert y in (31, 32) and x in (31, 32), (channel, y, x)


def test_cutout_reports_outside_and_zero_filled_fractions():
    data = np.ones((100, 100), np.float32)
    mask = np.zeros_like(data, bool)
    mask[:, 50:] = True
    cut = cutout_at_pixel(data, 10.0, 50.0, zero_mask=mask)  # x from -21 to 42: 21 columns outside
    assert cut.outside_fraction == pytest.approx(21 / 64)
    assert cut.zero_fraction == pytest.approx(21 / 64)
    cut = cutout_at_pixel(data, 60.0, 50.0, zero_mask=mask)  # x from 29 to 92: 43 columns in the mask
    assert cut.outside_fraction == 0.0 and cut.zero_fraction == pytest.approx(43 / 64)



def assert_batch_matches_single_cutouts(pixels, x, y, zero_mask):
    """Every cut-out of the batched kernel equals ``cutout_at_pixel`` at the same centre, exactly."""
    batch = cutouts_at_pixels(pixels, x, y, zero_mask=zero_mask)
    assert batch.pixels.shape == (len(x), CUTOUT_SIZE, CUTOUT_SIZE) and batch.pixels.dtype == np.float32
    for i, (xi, yi) in enumerate(zip(x, y)):
        single = cutout_at_pixel(pixels, float(xi), float(yi), zero_mask=zero_mask)
        np.testing.assert_array_equal(batch.pixels[i], single.pixels, err_msg=f"centre ({xi}, {yi})")
        assert (batch.outside_fraction[i], batch.zero_fraction[i]) == (single.outside_fraction, single.zero_fraction)


def edge_centres(shape, *, seed):
    """Centres all over an image and past its edges: corners, half-pixels, wholly outside."""
    ny, nx = shape
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-80, nx + 80, 40), [-0.5, 31.5, 32.0, nx - 32.5, nx - 1.0, nx + 100.0, -200.0]])
    y = np.concatenate([rng.uniform(-80, ny + 80, 40), [31.5, -0.5, ny - 32.5, 32.0, ny + 31.4, 5.0, ny / 2]])
    return x, y


def test_batched_cutouts_equal_single_cutouts_on_real_files_with_a_truncated_corner(real_sources):
    """Real clipped bands, a zero-filled corner (SkyView truncation) and NaNs, windows past every edge."""
    for source in real_sources[:6]:
        for image in source.images.values():
            data = image.data.astype(np.float32, copy=True)
            data[: data.shape[0] // 2, : data.shape[1] // 2] = 0.0
            data[-3:, -5:] = np.nan
            clipped = clip_band(data)
            assert clipped.no_data.any()
            x, y = edge_centres(data.shape, seed=len(source.name))
            assert_batch_matches_single_cutouts(data, x, y, clipped.no_data)
            assert_batch_matches_single_cutouts(clipped.pixels, x, y, clipped.no_data)


@settings(max_examples=40, deadline=None)
@given(images, st.integers(0, 10_000), st.booleans())
def test_batched_cutouts_equal_single_cutouts_anywhere(image, seed, with_mask):
    image = image.astype(np.float64)
    image[::17, ::13] = np.inf  # float64 and non-finite input: converted the same way
    mask = clip_band(image).no_data if with_mask else None
    assert_batch_matches_single_cutouts(image, *edge_centres(image.shape, seed=seed), mask)


def test_batched_cutouts_of_no_centres_and_of_bad_centres():
    data = np.ones((100, 100), np.float32)
    empty = cutouts_at_pixels(data, [], [])
    assert empty.pixels.shape == (0, CUTOUT_SIZE, CUTOUT_SIZE) and empty.zero_fraction.shape == (0,)
    far = cutouts_at_pixels(data, [1e6], [50.0])
    assert far.outside_fraction[0] == 1.0 and not far.pixels.any()
    with pytest.raises(ValueError, match="finite pixel positions"):
        cutouts_at_pixels(data, [10.0, np.nan], [10.0, 10.0])


def test_minmax_normalisation_is_fitted_once_and_applied_unchanged():
    train = np.array([[-0.2, 0.0], [0.5, 1.8]], np.float32)
    norm = Normalisation.fit(train)
    assert norm.apply(train).min() == 0.0 and norm.apply(train).max() == 1.0
    brighter = norm.apply(np.array([3.8], np.float32))
    assert brighter[0] == pytest.approx(2.0)  # not refitted per image
    np.testing.assert_allclose(norm.invert(norm.apply(train)), train, atol=1e-6)
    again = Normalisation.from_dict(norm.to_dict())
    assert again == norm and again.id == norm.id
    with pytest.raises(ValueError, match="does not match"):
        Normalisation.from_dict({**norm.to_dict(), "max": 2.0})


def test_generative_normalisation_maps_to_symmetric_unit_range_and_back():
    train = np.array([-0.3, 0.0, 0.05, 2.0], np.float32)
    norm = Normalisation.fit(train, kind="log-minmax-sym", log_scale_value=0.05)
    y = norm.apply(train)
    assert y.min() == pytest.approx(-1.0) and y.max() == pytest.approx(1.0)
    np.testing.assert_allclose(norm.invert(y), train, rtol=1e-4, atol=1e-6)


def test_log_scale_matches_the_float64_formula_on_real_pixels(gleam_dir):
    """The fast float32 path (logarithm of surviving pixels only) is the documented formula."""
    from survey.images.base import read_band_file
    from survey.model.preprocess import clip_band, log_scale

    path = sorted(gleam_dir.rglob("*170-231*.fits"))[0]
    pixels = clip_band(read_band_file(path, "170-231").data).pixels
    reference = np.sign(pixels.astype(np.float64)) * np.log10(1.0 + np.abs(pixels.astype(np.float64)) / 0.054)
    fast = log_scale(pixels, scale=0.054)
    assert fast.dtype == np.float32 and (pixels != 0).any() and (pixels == 0).any()
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-7)
