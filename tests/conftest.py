"""Shared fixtures: where the real data is, and a temp Ray for Ray tests.

Real-data tests read ``$HALO_DATA_DIR`` (default ``../shared/data``). Under ``CI=true``
missing data is a failure, never a skip, so a CI run cannot pass by testing nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from survey.config import data_dir


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"real data not found at {path} (set HALO_DATA_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; under CI=true missing data is a failure")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data directory (``../shared/data``)."""
    return _require(data_dir())


@pytest.fixture(scope="session")
def gleam_dir(shared_data: Path) -> Path:
    """The paper's 46 GLEAM sources x 4 bands."""
    return _require(shared_data / "gleam")


@pytest.fixture(scope="session")
def catalogs_dir(shared_data: Path) -> Path:
    """Real galaxy-cluster catalogues."""
    return _require(shared_data / "catalogs")


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's cache of online answers."""
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "halo-cache"))
