"""Every error the survey raises on purpose, in one place.

Messages name the file, tile or row at fault and, where there is one, the fix.
"""

from __future__ import annotations

from pathlib import Path


class HaloSurveyError(Exception):
    """Base class of the errors this package raises on purpose."""


class BadInputError(HaloSurveyError, ValueError):
    """An input file or value that cannot be used; the message names it and the problem."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class MissingBandError(BadInputError):
    """A source (or tile) lacks one or more of the four GLEAM bands."""


class CatalogError(HaloSurveyError):
    """A catalogue file or table could not be read or has the wrong columns."""


class RemoteServiceError(HaloSurveyError):
    """An online service (VizieR, SkyView) could not be reached or answered badly."""


class ModelCardError(HaloSurveyError):
    """A model file and its card disagree, or the card's input spec differs from the survey's."""


class OnnxParityError(HaloSurveyError):
    """An exported ONNX graph does not reproduce the trained model's outputs (``training.export``)."""


class ResourceError(HaloSurveyError):
    """The Ray cluster cannot give what a run asks for (a CPU, a GPU, memory): the run would wait forever."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal: Ctrl-C (SIGINT) or SIGTERM, as ``signum`` says.

    A KeyboardInterrupt, so whatever handles Ctrl-C handles SIGTERM the same way: the
    run records itself as interrupted and keeps its finished tiles.
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signum)


class NoImageError(Exception):
    """SkyView answered a query but offered no FITS file: not worth retrying.

    Not a HaloSurveyError: ``survey.remote.fetch`` turns it into a RemoteServiceError that
    names the field, as it does every failed request.
    """


class NoDetectionsWarning(UserWarning):
    """A tile or region produced no candidates: a warning, not an error."""
