"""Fixtures shared by the model-input tests."""

from __future__ import annotations

import pytest

from survey.images.discovery import scan_directory


@pytest.fixture(scope="module")
def real_sources(gleam_dir):
    """The 46 real sources of the paper's data set, all four bands loaded."""
    return scan_directory(gleam_dir).sources
