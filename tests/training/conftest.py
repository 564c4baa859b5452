"""Fixtures of the generative-model tests: the real halos, and one small DDPM and WGAN trained once per session.

Each TensorFlow model costs about ten seconds of tracing before its first step on one
core, so the tests share these few runs instead of training their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_sources(gleam_dir):
    """All 46 real sources with their cut-outs (``training.data.load_training_set``)."""
    from training.data import load_training_set

    return load_training_set(gleam_dir)


@pytest.fixture(scope="session")
def smoke_ddpm(real_sources, tmp_path_factory):
    """A ``smoke`` DDPM trained 20 steps, interrupted, then resumed to 40, on the 18 training halos minus A2163.

    Returns a dict: ``dir``, ``first`` and ``second`` (``train_ddpm`` results of the two
    calls) and ``halos`` (the HaloSet).
    """
    from training.diffusion import DDPM_CONFIGS, train_ddpm
    from training.halos import halo_set

    out = Path(tmp_path_factory.mktemp("ddpm")) / "smoke"
    halos = halo_set(real_sources, exclude=["A2163"])
    config = DDPM_CONFIGS["smoke"]
    first = train_ddpm(halos, out, config=config, stop_after=20, log=lambda line: None)
    second = train_ddpm(halos, out, config=config, resume=True, log=lambda line: None)
    return {"dir": out, "first": first, "second": second, "halos": halos}


@pytest.fixture(scope="session")
def smoke_wgan(real_sources, tmp_path_factory):
    """A ``smoke`` WGAN conditioned on the paper's halo types, trained 3 of its 6 steps (tests restore, not resume:
    resuming is the DDPM's test, and a second trace would cost ten seconds)."""
    from training.halos import halo_set
    from training.wgan import WGAN_CONFIGS, train_wgan

    out = Path(tmp_path_factory.mktemp("wgan")) / "smoke"
    halos = halo_set(real_sources, condition="type")
    config = WGAN_CONFIGS["smoke"]
    first = train_wgan(halos, out, config=config, stop_after=3, log=lambda line: None)
    return {"dir": out, "first": first, "halos": halos}

