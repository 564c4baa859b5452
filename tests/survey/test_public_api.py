"""The public API (``survey/__init__.py``, ``training/__init__.py``): every promised name resolves, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import survey

HEAVY_MODULES = ("healpy", "hats", "lsdb", "astropy", "matplotlib", "pandas", "pyarrow", "ray", "onnxruntime",
                 "scipy", "tensorflow", "keras")


def test_importing_the_package_loads_no_heavy_module():
    code = ("import sys, survey, training; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("name", survey.__all__)
def test_every_public_survey_name_resolves(name):
    renamed = {"prepare_run": "prepare", "run_survey": "run"}  # survey.run is the sub-package
    assert getattr(survey, name).__name__ == renamed.get(name, name)


def test_the_run_functions_are_the_pipelines_and_the_sub_package_keeps_its_name():
    import survey.run
    from survey.run import pipeline

    assert survey.run_survey is pipeline.run and survey.prepare_run is pipeline.prepare
    assert survey.run.__name__ == "survey.run"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'survey' has no attribute 'nothing'"):
        survey.nothing  # noqa: B018


@pytest.mark.training
def test_every_public_training_name_resolves():
    pytest.importorskip("keras")
    import training

    for name in training.__all__:
        assert getattr(training, name).__name__ == name


def test_the_promised_names_are_exactly_the_lazy_ones_and_the_exceptions():
    from survey import exceptions

    errors = {name for name in survey.__all__ if isinstance(getattr(survey, name), type)
              and issubclass(getattr(survey, name), Warning | Exception)}
    assert errors <= set(vars(exceptions))
    assert set(survey.__all__) == set(survey._LAZY) | errors
