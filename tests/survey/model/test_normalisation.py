"""The input scaling (survey.model.normalisation): fitted once, applied unchanged, invertible."""

from __future__ import annotations

import numpy as np
import pytest

from survey.model.normalisation import Normalisation


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
    from survey.model.noise import clip_band
    from survey.model.normalisation import log_scale

    path = sorted(gleam_dir.rglob("*170-231*.fits"))[0]
    pixels = clip_band(read_band_file(path, "170-231").data).pixels
    reference = np.sign(pixels.astype(np.float64)) * np.log10(1.0 + np.abs(pixels.astype(np.float64)) / 0.054)
    fast = log_scale(pixels, scale=0.054)
    assert fast.dtype == np.float32 and (pixels != 0).any() and (pixels == 0).any()
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-7)


def test_a_log_normalisation_without_its_scale_says_so():
    with pytest.raises(ValueError, match="needs a positive log_scale_value, got None"):
        Normalisation.fit(np.ones(4, np.float32), kind="log-minmax-sym")


def test_noise_units_make_two_fields_with_different_noise_alike_and_invert_exactly():
    """The same sky in noise units, whatever each field's noise: x / sigma then the signed log."""
    rng = np.random.default_rng(0)
    quiet = (rng.normal(0, 0.01, (8, 64, 64, 4)) * (rng.random((8, 64, 64, 4)) < 0.1)).astype(np.float32)
    noise = np.array([0.04, 0.02, 0.013, 0.008], np.float32)
    norm = Normalisation.fit(quiet, kind="snr-log-sym", noise=noise)
    assert norm.log_scale == 3.0 and norm.needs_noise
    noisy = quiet * 5  # a field with five times the noise in every band
    np.testing.assert_allclose(norm.apply(noisy, noise=5 * noise), norm.apply(quiet, noise=noise), atol=1e-6)
    back = norm.invert(norm.apply(noisy, noise=5 * noise), noise=5 * noise)
    np.testing.assert_allclose(back, noisy, rtol=1e-4, atol=1e-7)
    assert norm.apply(np.zeros(3, np.float32), noise=7.0)[0] == norm.zero_level
    with pytest.raises(ValueError, match="needs each band's noise sigma"):
        norm.apply(quiet)
