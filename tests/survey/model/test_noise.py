"""Noise estimate and the 3-sigma clip (survey.model.noise), on synthetic and on every real file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from survey.model.noise import (
    BADLY_CLIPPED_NONZERO,
    CLIPPED_TRUNCATION_BLOCK_PX,
    clip_band,
    clip_symmetric,
    estimate_noise,
)
from survey.testing import make_noise_image


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
