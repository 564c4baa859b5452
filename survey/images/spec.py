"""``--source``: the three image sources by name, parsed without reading anything, opened on demand.

Light on purpose: ``halo-survey --help`` and argument checks import it, so the sources
themselves (astropy, astroquery, the mock sky) load only in ``open_source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from survey.exceptions import BadInputError

if TYPE_CHECKING:
    from survey.images.base import ImageSource

SOURCE_KINDS = ("mock", "skyview", "fits")
"""Image sources: ``mock[:SEED]``, ``skyview``, ``fits:DIR`` (``parse_source``)."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value.

    Attributes
    ----------
    kind : {"mock", "skyview", "fits"}
        Which ImageSource to build.
    seed : int
        Seed of the mock sky (``mock:SEED``; 0 when not given).
    directory : Path or None
        The directory of a ``fits:DIR`` source.
    """

    kind: str
    seed: int = 0
    directory: Path | None = None

    @property
    def text(self) -> str:
        """The spec written back as a ``--source`` value (provenance, manifests)."""
        if self.kind == "fits":
            return f"fits:{self.directory}"
        return f"mock:{self.seed}" if self.kind == "mock" else self.kind


def parse_source(text: str) -> SourceSpec:
    """Parse ``--source``: ``mock``, ``mock:SEED``, ``skyview`` or ``fits:DIR``.

    Only the first ``:`` separates the kind, so directories may contain colons and spaces.

    >>> parse_source("mock:7").seed, parse_source("skyview").kind, parse_source("fits:/").directory.as_posix()
    (7, 'skyview', '/')
    """
    kind, _, value = text.strip().partition(":")
    kind = kind.lower()
    where = f"--source {text!r}"
    if kind == "mock":
        try:
            return SourceSpec("mock", seed=int(value) if value else 0)
        except ValueError:
            raise BadInputError(where, "the mock sky takes an integer seed: mock or mock:SEED") from None
    if kind == "skyview" and not value:
        return SourceSpec("skyview")
    if kind == "fits" and value:
        directory = Path(value).expanduser()
        if not directory.is_dir():
            raise BadInputError(where, f"directory {directory} does not exist; give fits:DIR with the FITS files")
        return SourceSpec("fits", directory=directory)
    raise BadInputError(where, f"unknown image source (kinds: {', '.join(SOURCE_KINDS)}); use mock, mock:SEED, skyview or fits:DIR")


def open_source(spec: SourceSpec) -> ImageSource:
    """The ImageSource of a parsed ``--source``."""
    if spec.kind == "mock":
        from survey.images.mock import MockSky, MockSource

        return MockSource(MockSky(seed=spec.seed))
    if spec.kind == "skyview":
        from survey.images.skyview import SkyViewSource

        return SkyViewSource()
    from survey.images.fitsdir import FitsDirectorySource

    return FitsDirectorySource(spec.directory)
