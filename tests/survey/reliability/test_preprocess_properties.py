"""Property tests of the model-input builder on images with NaN, +inf, -inf and zero blocks.

Whatever a band file holds, preprocessing either refuses it with a ValueError (too little
data to fit the noise; the survey names the file) or gives finite model input, fractions
in [0, 1] that count the holes, a clip that is idempotent, and a count of the infinite
pixels each window holds (``bad_pixels``) equal to a brute-force count.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey.exceptions import BadInputError
from survey.images.base import BandImage, world_to_pixel
from survey.model.badpixels import infinite_pixels
from survey.model.cutouts import cutout_at_pixel, cutout_corners, cutouts_at_pixels
from survey.model.noise import clip_band, clip_symmetric
from survey.model.normalisation import Normalisation
from survey.model.preprocess import clip_field, cut_windows
from survey.sky.bands import BANDS, CUTOUT_SIZE
from survey.testing import make_wcs

FILLS = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0}
blocks = st.lists(st.tuples(st.sampled_from(list(FILLS)), st.floats(0, 1), st.floats(0, 1), st.integers(1, 60),
                            st.integers(1, 60)), max_size=4)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def noisy(seed: int, shape: tuple[int, int], spoil: list, *, clipped: bool = False, sigma: float = 0.01) -> np.ndarray:
    """Noise plus a few sources, already 3-sigma clipped if asked, with blocks of NaN/inf/-inf/zero."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, sigma, shape)
    ys, xs = rng.integers(0, shape[0], 5), rng.integers(0, shape[1], 5)
    image[ys, xs] += rng.exponential(20 * sigma, 5)
    if clipped:
        image = clip_symmetric(image, 3 * sigma).astype(np.float64)
    for kind, fy, fx, h, w in spoil:
        y0, x0 = int(fy * (shape[0] - 1)), int(fx * (shape[1] - 1))
        image[y0:y0 + h, x0:x0 + w] = FILLS[kind]
    return image.astype(np.float32)


@PROPERTY
@given(st.integers(0, 10_000), st.integers(20, 120), st.integers(20, 120), blocks, st.booleans())
def test_the_clip_gives_finite_pixels_that_mark_every_hole_or_refuses(seed, ny, nx, spoil, clipped):
    image = noisy(seed, (ny, nx), spoil, clipped=clipped)
    try:
        band = clip_band(image)
    except ValueError as exc:  # too little data to fit the noise: the survey names the file
        assert "noise" in str(exc)
        return
    assert band.pixels.shape == image.shape and band.pixels.dtype == np.float32
    assert np.isfinite(band.pixels).all()
    assert np.isfinite(band.noise.sigma) and band.noise.sigma > 0
    assert not band.pixels[~np.isfinite(image)].any()  # NaN and inf are zero-filled
    if not band.noise.already_clipped:  # raw images: every non-finite or zero pixel is a hole
        assert band.no_data[~np.isfinite(image) | (image == 0)].all()
    kept = band.pixels != 0
    assert (np.abs(band.pixels[kept]) >= band.noise.clip_threshold).all()
    try:
        again = clip_band(band.pixels)
    except ValueError:
        return  # nothing survived the clip: no noise to fit a second time
    np.testing.assert_array_equal(again.pixels, band.pixels)


@PROPERTY
@given(st.integers(0, 10_000), st.integers(10, 100), st.integers(10, 100), blocks,
       st.lists(st.tuples(st.floats(-80, 180), st.floats(-80, 180)), min_size=1, max_size=6))
def test_batched_cutouts_of_spoiled_images_equal_single_ones_and_stay_finite(seed, ny, nx, spoil, centres):
    image = noisy(seed, (ny, nx), spoil)
    mask = ~np.isfinite(image) | (image == 0)
    x, y = np.array([c[0] for c in centres]), np.array([c[1] for c in centres])
    batch = cutouts_at_pixels(image, x, y, zero_mask=mask)
    assert np.isfinite(batch.pixels).all()
    assert ((0 <= batch.outside_fraction) & (batch.outside_fraction <= batch.zero_fraction)
            & (batch.zero_fraction <= 1)).all()
    for i in range(len(x)):
        one = cutout_at_pixel(image, x[i], y[i], zero_mask=mask)
        np.testing.assert_array_equal(batch.pixels[i], one.pixels)
        assert (batch.outside_fraction[i], batch.zero_fraction[i]) == pytest.approx((one.outside_fraction,
                                                                                      one.zero_fraction))


def _field(seed: int, spoil: list, shape: tuple[int, int]) -> dict[str, BandImage]:
    images = {}
    for i, band in enumerate(BANDS):
        wcs = make_wcs(ra_deg=10.0, dec_deg=-30.0, pixel_deg=band.pixel_deg, shape=shape)
        data = noisy(seed + i, shape, spoil if i % 2 == seed % 2 else [], sigma=0.01 * 200 / band.centre_mhz)
        images[band.name] = BandImage(band, data, wcs, f"band {band.name}")
    return images


def _brute_force_inf(images, ra, dec) -> np.ndarray:
    counts = np.zeros(ra.size, np.int64)
    for image in images.values():
        x, y = world_to_pixel(image.wcs, ra, dec)
        x0, y0 = cutout_corners(x, y)
        for i in range(ra.size):
            ys = slice(max(y0[i], 0), max(y0[i] + CUTOUT_SIZE, 0))
            xs = slice(max(x0[i], 0), max(x0[i] + CUTOUT_SIZE, 0))
            counts[i] += int(np.isinf(image.data[ys, xs]).sum())
    return counts


@PROPERTY
@given(st.integers(0, 10_000), blocks, st.sampled_from(["minmax", "snr-log-sym"]),
       st.lists(st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)), min_size=1, max_size=5))
def test_the_model_input_of_a_spoiled_field_is_finite_and_counts_its_infinities(seed, spoil, kind, offsets):
    images = _field(seed, spoil, (96, 96))
    ra = 10.0 + np.array([o[0] for o in offsets]) / np.cos(np.radians(30.0))
    dec = -30.0 + np.array([o[1] for o in offsets])
    normalisation = Normalisation(kind, -1.0, 3.0, log_scale=None if kind == "minmax" else 3.0)
    try:
        field = clip_field(images, key="tile 5/1")
    except BadInputError as exc:  # a band with too little data: refused, naming the band's file
        assert "band " in str(exc) and "unusable" in str(exc)
        return
    cut = cut_windows(field, ra, dec, normalisation=normalisation)
    assert cut["image"].shape == (ra.size, 4, CUTOUT_SIZE, CUTOUT_SIZE) and np.isfinite(cut["image"]).all()
    for name in ("outside_fraction", "zero_fraction"):
        assert ((0 <= cut[name]) & (cut[name] <= 1)).all()
    np.testing.assert_array_equal(infinite_pixels(images, ra, dec), _brute_force_inf(images, ra, dec))
