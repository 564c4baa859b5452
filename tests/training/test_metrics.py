"""Quality metrics: zero for identical sets, positive for different ones, and every report carries its floor and baselines."""

from __future__ import annotations

import numpy as np
import pytest

from survey.model.normalisation import Normalisation
from training.metrics import (
    Encoder,
    augmented_copies,
    copies_plus_noise,
    frechet_distance,
    histogram_relative_error,
    image_clip_levels,
    kernel_inception_distance,
    label_agreement,
)

pytestmark = pytest.mark.training

NORM = Normalisation("log-minmax-sym", -1.0, 2.0, 0.05)


def clipped_images(n: int, seed: int, *, blob: float = 1.0) -> np.ndarray:
    """Clipped-looking cut-outs: a Gaussian blob plus noise, zeroed below 0.1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    blob_image = blob * np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 200.0)
    x = blob_image[None, ..., None] + 0.05 * rng.standard_normal((n, 64, 64, 4))
    return np.where(np.abs(x) < 0.1, 0.0, x).astype(np.float32)


def test_identical_sets_score_zero_on_every_metric():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((300, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    kid, _ = kernel_inception_distance(features, features, seed=0)
    shifted, _ = kernel_inception_distance(features, features + 1.0, seed=0)
    # About zero: the subsets of one finite set share a few points (about 3 of 32 from 300), whose large
    # self-similarity makes the estimate slightly negative (-0.06 here, on a kernel of size ~8), while
    # a shift of one standard deviation gives 7.3.
    assert abs(kid) < 0.1 and abs(kid) < 0.02 * shifted
    x = NORM.apply(clipped_images(20, 1))
    hist = histogram_relative_error(x, x, zero_value=float(NORM.zero_level))
    assert hist["mean"] == 0.0 and hist["l1"] == 0.0
    assert hist["zero_fraction_real"] == hist["zero_fraction_generated"]


def test_different_sets_score_above_two_samples_of_one_set():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    shifted = rng.standard_normal((400, 8)) + 1.0
    assert frechet_distance(a, shifted) > 10 * frechet_distance(a, b)
    assert kernel_inception_distance(a, shifted)[0] > 10 * abs(kernel_inception_distance(a, b)[0])
    real, faint = NORM.apply(clipped_images(20, 2)), NORM.apply(clipped_images(20, 3, blob=0.5))
    hist = histogram_relative_error(real, faint, zero_value=float(NORM.zero_level))
    assert hist["mean"] > 0.1 and 0 < hist["l1"] <= 2
    assert set(hist["per_band"]) == {"72-103", "103-134", "139-170", "170-231"}


def test_the_frechet_distance_of_two_gaussians_has_its_closed_form():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((20_000, 2))
    b = rng.standard_normal((20_000, 2)) * 2.0 + np.array([3.0, 0.0])
    # |mu|^2 + Tr(I + 4I - 2 * 2I) = 9 + 2
    assert frechet_distance(a, b) == pytest.approx(11.0, rel=0.03)


def test_kid_needs_two_samples_per_set():
    with pytest.raises(ValueError, match="KID needs at least 2 samples per set"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_copies_plus_noise_are_clipped_at_each_fields_own_level_then_augmented_like_real_copies():
    images = clipped_images(2, 5)
    levels = image_clip_levels(images, np.full((2, 4), 0.05, np.float32))
    faintest = np.abs(np.where(images != 0, images, np.inf)).min(axis=(1, 2))
    np.testing.assert_array_equal(levels, faintest)
    # Without noise the clip removes nothing: exactly the classic-augmented copies.
    quiet = copies_plus_noise(images, np.zeros((2, 4), np.float32), 6, seed=0)
    np.testing.assert_array_equal(quiet, augmented_copies(images, 6, seed=1))
    # A noisy field keeps more pixels above its own clip level than it had.
    noisy = copies_plus_noise(images, np.full((2, 4), 0.2, np.float32), 6, seed=0)
    assert np.mean(noisy != 0) > np.mean(quiet != 0) + 0.05


def _brightness_encoder() -> Encoder:
    """A one-feature encoder (total flux): rotation- and flip-invariant, so copies keep their source's feature."""
    return Encoder("flux", "total flux", lambda x: {"all": x.sum(axis=(1, 2, 3))[:, None].astype(np.float64)})


def test_samples_of_a_label_that_look_like_its_real_images_agree_and_misdrawn_ones_do_not():
    faint, bright = clipped_images(2, 0, blob=1.0), clipped_images(2, 1, blob=4.0)
    images, labels = np.concatenate([faint, bright]), np.array([0, 0, 1, 1])
    # Samples of label 1 drawn like the bright sources, samples of label 0 drawn bright too (wrong).
    samples = clipped_images(10, 2, blob=4.0)
    result = label_agreement(images, labels, samples, np.array([1] * 5 + [0] * 5), encoder=_brightness_encoder(),
                             vocabulary=["faint", "bright"], n=64)
    assert result["bright"]["agreement"] == 1.0 and result["faint"]["agreement"] == 0.0
    assert result["faint"]["chance"] == result["bright"]["chance"] == 0.5
    # The floor: each real source's nearest other source has its label (brightness separates them).
    assert result["faint"]["real_agreement"] == result["bright"]["real_agreement"] == 1.0
