"""Helpers the training tests share (not fixtures): files laid out as the training commands write them."""

from __future__ import annotations

from pathlib import Path


def write_generated(directory: Path, *, sources, kind: str = "ddpm", n: int = 8,
                    levels=(0.03, 0.03, 0.06, 0.09)) -> Path:
    """A ``halo-train generate`` output laid out as ``write_samples`` writes it, without a model behind it.

    Its generator claims to have trained on ``sources``: what decides which folds may use it.
    """
    import json

    import numpy as np

    from survey.sky.bands import BAND_NAMES

    directory.mkdir(parents=True)
    images = np.random.default_rng(0).exponential(0.05, size=(n, 64, 64, 4)).astype(np.float32)
    meta = {"settings": {"sampler": "ddim"}, "model": {"kind": kind, "state": {"step": 1}, "data": {
        "sources": list(sources), "clip_levels_jy": dict(zip(BAND_NAMES, levels))}}}
    np.savez_compressed(directory / "samples.npz", images=images, labels=np.zeros(n, np.int64), meta=json.dumps(meta))
    return directory
