"""Classic augmentation of training cut-outs (paper section 4.2), drawn on the fly per batch.

Rotations by multiples of 45 deg, up-down / left-right flips and brightness x U[0.9, 1.4].
Each batch rotates only the cut-outs it draws (``rotate``), so nothing like the paper's
16,000 arrays is ever materialised, however many base cut-outs injection adds;
``all_augmentations`` gives the 16 rotated and flipped copies that the paper's test sets
and test-time averaging use.
Cut-outs are (N, 64, 64, 4), band axis last, as ``training.data`` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

ROTATIONS_DEG = tuple(range(0, 360, 45))

BRIGHTNESS_RANGE = (0.9, 1.4)
"""Brightness scaling factors of the classic augmentation (paper section 4.2)."""

def rotations(x: np.ndarray) -> np.ndarray:
    """The eight rotations by multiples of 45 deg of (N, H, W, C) images -> (N, 8, H, W, C).

    90-degree multiples are exact; odd multiples of 45 deg use bilinear interpolation and
    fill the corners that rotate in from outside with zero (as clipped empty sky).
    """
    out = np.empty((x.shape[0], len(ROTATIONS_DEG)) + x.shape[1:], np.float32)
    for k, angle in enumerate(ROTATIONS_DEG):
        if angle % 90 == 0:
            out[:, k] = np.rot90(x, k=angle // 90, axes=(1, 2))
        else:
            out[:, k] = ndimage.rotate(x, angle, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return out


def rotate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Each (H, W, C) image ``x[i]`` rotated by ``ROTATIONS_DEG[k[i]]``, exactly as ``rotations`` rotates it.

    Parameters
    ----------
    x : numpy.ndarray
        (N, H, W, C) images.
    k : numpy.ndarray
        (N,) rotation indices into ``ROTATIONS_DEG``.

    Returns
    -------
    numpy.ndarray
        (N, H, W, C) float32 rotated images (planes rotate independently, so a subset
        rotated alone gives the same pixels as the whole array rotated).
    """
    out = np.empty(x.shape, np.float32)
    for index in np.unique(k):
        chosen = k == index
        angle = ROTATIONS_DEG[int(index)]
        if angle % 90 == 0:
            out[chosen] = np.rot90(x[chosen], k=angle // 90, axes=(1, 2))
        else:
            out[chosen] = ndimage.rotate(x[chosen], angle, axes=(2, 1), reshape=False, order=1, mode="constant",
                                         cval=0.0)
    return out


@dataclass
class Augmenter:
    """Draw augmented batches: a random rotation by a multiple of 45 deg, flips and brightness."""

    base: np.ndarray  # (N, H, W, C) clipped Jy/beam
    seed: int | None = None

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def draw(self, indices: np.ndarray) -> np.ndarray:
        """Augmented copies of base samples ``indices`` (clipped Jy/beam, before normalisation)."""
        n = len(indices)
        batch = rotate(self.base[indices], self.rng.integers(0, len(ROTATIONS_DEG), n))
        flip_ud, flip_lr = self.rng.random(n) < 0.5, self.rng.random(n) < 0.5
        batch[flip_ud] = batch[flip_ud, ::-1]
        batch[flip_lr] = batch[flip_lr, :, ::-1]
        brightness = self.rng.uniform(*BRIGHTNESS_RANGE, n).astype(np.float32)
        return batch * brightness[:, None, None, None]


def all_augmentations(x: np.ndarray) -> np.ndarray:
    """Every rotation x flip of (N, H, W, C) images -> (N, 16, H, W, C), for test-time averaging."""
    rotated = rotations(x)
    return np.concatenate([rotated, rotated[:, :, ::-1]], axis=1)
