"""User defaults (astropy ConfigNamespace) and where the real data lives."""

from __future__ import annotations

import os
from pathlib import Path

from astropy import config as _config

from survey.defaults import REPO_ROOT


class Conf(_config.ConfigNamespace):
    """Defaults a user can override in ``~/.astropy/config/survey.cfg`` or per call."""

    timeout = _config.ConfigItem(60.0, "Seconds to wait for an online service (VizieR, SkyView) to answer.")
    retries = _config.ConfigItem(3, "Attempts per online request before giving up.")
    cache_dir = _config.ConfigItem(
        "", "Directory of the on-disk cache for online data; empty means ~/.cache/halo-survey."
    )
    cache_days = _config.ConfigItem(30.0, "Cached online answers older than this many days are fetched again.")
    connect_timeout = _config.ConfigItem(
        30.0, "Seconds to wait for the Ray cluster of --address to accept a connection, and again for Ray to join "
        "it, before giving up."
    )
    resource_wait = _config.ConfigItem(
        600.0, "Seconds a run on a cluster of several nodes waits for an autoscaler to add the nodes it needs "
        "(a GPU, a CPU, memory) before it is refused; a Ray of this machine alone is refused at once."
    )


conf = Conf()


def data_dir() -> Path:
    """Directory of the real data: ``$HALO_DATA_DIR`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("HALO_DATA_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Directory of the on-disk cache for online data (created on demand)."""
    configured = os.environ.get("HALO_CACHE_DIR") or conf.cache_dir
    path = Path(configured).expanduser() if configured else Path.home() / ".cache" / "halo-survey"
    path.mkdir(parents=True, exist_ok=True)
    return path
