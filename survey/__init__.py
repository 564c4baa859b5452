"""halo-survey: find radio halos in GLEAM with ONNX classifiers run over HEALPix tiles on Ray.

The public API, what users and the benchmarks import; everything else may change. Names
load on first use (PEP 562), so ``import survey`` stays as light as ``halo-survey --help``
and never imports TensorFlow.

>>> import survey
>>> survey.BadInputError.__mro__[1].__name__
'HaloSurveyError'

Run a scan of the mock sky::

    from survey import SurveyArguments, read_candidates, run_survey
    summary = run_survey(SurveyArguments(region="cone:339.6,-39.6,1", output="out"))
    frame = read_candidates("out/candidates")

(``run_survey`` is ``survey.run.pipeline.run``: the name ``survey.run`` is the sub-package.)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from survey.exceptions import (
    BadInputError,
    CatalogError,
    HaloSurveyError,
    ModelCardError,
    NoDetectionsWarning,
    RemoteServiceError,
)

_LAZY: dict[str, str | tuple[str, str]] = {
    # a run
    "SurveyArguments": "survey.run.arguments",
    "prepare_run": ("survey.run.pipeline", "prepare"),
    "run_survey": ("survey.run.pipeline", "run"),
    "RunSummary": "survey.run.summary",
    # images
    "ImageSource": "survey.images.base",
    "BandImage": "survey.images.base",
    "FitsDirectorySource": "survey.images.fitsdir",
    "MockSky": "survey.images.mock",
    "MockSource": "survey.images.mock",
    # the model and its input
    "OnnxClassifier": "survey.model.infer",
    "load_model_card": "survey.model.modelcard",
    "clip_field": "survey.model.preprocess",
    "cut_windows": "survey.model.preprocess",
    # the sky and the catalogues
    "parse_region": "survey.sky.tiling",
    "load_catalog": "survey.catalogs.load",
    # results
    "read_candidates": "survey.output.query",
}

__all__ = [
    "BadInputError",
    "BandImage",
    "CatalogError",
    "FitsDirectorySource",
    "HaloSurveyError",
    "ImageSource",
    "MockSky",
    "MockSource",
    "ModelCardError",
    "NoDetectionsWarning",
    "OnnxClassifier",
    "RemoteServiceError",
    "RunSummary",
    "SurveyArguments",
    "clip_field",
    "cut_windows",
    "load_catalog",
    "load_model_card",
    "parse_region",
    "prepare_run",
    "read_candidates",
    "run_survey",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'survey' has no attribute {name!r}")
    module, attribute = where if isinstance(where, tuple) else (where, name)
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
