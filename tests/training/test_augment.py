"""Classic augmentation (training.augment): exact right-angle rotations, seeded draws, brightness range."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import Augmenter, all_augmentations, rotations


def test_rotations_are_exact_for_right_angles_and_keep_the_centre():
    x = np.zeros((1, 64, 64, 4), np.float32)
    x[0, 20, 40] = 1.0
    x[0, 30:34, 30:34] = 5.0
    rot = rotations(x)
    assert rot.shape == (1, 8, 64, 64, 4)
    np.testing.assert_array_equal(rot[0, 2], np.rot90(x[0], 1))
    assert all(rot[0, k, 31, 31, 0] == pytest.approx(5.0, rel=0.05) for k in range(8))
    assert all_augmentations(x).shape == (1, 16, 64, 64, 4)


def test_rotating_a_subset_gives_the_pixels_of_rotating_everything():
    from training.augment import rotate

    x = np.random.default_rng(2).random((6, 64, 64, 4), dtype=np.float32)
    k = np.array([0, 1, 3, 5, 7, 1])
    np.testing.assert_array_equal(rotate(x, k), rotations(x)[np.arange(6), k])


def test_augmenter_is_seeded_and_scales_brightness_within_range():
    base = np.ones((3, 16, 16, 1), np.float32)
    a, b = Augmenter(base, seed=5).draw(np.arange(3)), Augmenter(base, seed=5).draw(np.arange(3))
    np.testing.assert_array_equal(a, b)
    centre = a[:, 6:10, 6:10]  # rotations by 45 deg leave the centre of a uniform image uniform
    assert ((centre >= 0.9) & (centre <= 1.4)).all()
