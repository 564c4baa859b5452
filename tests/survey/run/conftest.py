"""Fixtures of the run tests: the stand-in model, a small plan, a local Ray for a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey.run.plan import plan_scan
from tests.survey.run.helpers import (
    survey_args,
)
from tests.survey.survey_helpers import local_ray, write_standin


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_standin(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def small_plan(model, tmp_path_factory):
    args = survey_args(model, tmp_path_factory.mktemp("plan"))
    return args, plan_scan(args)


@pytest.fixture(scope="module")
def ray_local():
    yield from local_ray()
