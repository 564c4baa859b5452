"""Cut-outs (survey.model.cutouts): the batched gather equals the one-window reference, value for value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.model.cutouts import cutout_at_pixel, cutouts_at_pixels
from survey.model.noise import clip_band
from survey.sky.bands import CUTOUT_SIZE
from tests.survey.model.test_noise import images


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
