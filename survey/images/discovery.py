"""Source discovery: the band files under a directory grouped into four-band sources, loaded and reported.

A directory of the paper's data (``TRAIN_DATA_1/abell_0122_Gleam72-103_clipped.fits`` ...)
becomes a list of ``GleamSource`` (four ``BandImage`` each, with the class and split its
folder states); files that fit no source (no band in the name, a second file for one
band, a missing or unreadable band) are reported with the file named, and the scan goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from survey.exceptions import BadInputError, MissingBandError
from survey.images.base import BandImage, read_band_file, reference_radec
from survey.images.naming import FITS_SUFFIXES, display_name, label_and_split, parse_band_filename
from survey.sky.bands import BAND_NAMES


@dataclass(frozen=True)
class SourceFiles:
    """The band files of one source as found on disk (nothing read yet)."""

    name: str
    key: str
    folder: Path
    label: int | None
    split: str | None
    files: dict[str, Path]

    @property
    def missing_bands(self) -> list[str]:
        """Bands with no file, in BANDS order."""
        return [b for b in BAND_NAMES if b not in self.files]


@dataclass(frozen=True, eq=False)
class GleamSource:
    """One source with its four band images loaded.

    Attributes
    ----------
    name : str
        Astronomer's spelling (``"A2744"``, ``"ORC 2"``).
    label : int or None
        1 = halo, 0 = non-halo, when the folder says so.
    split : str or None
        ``"train"`` / ``"test"`` when the folder says so.
    images : dict[str, BandImage]
        One image per band, keyed by band name, in BANDS order.
    """

    name: str
    label: int | None
    split: str | None
    images: dict[str, BandImage]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def centre_radec(self) -> tuple[float, float]:
        """Field centre (RA, Dec) in degrees: the reference point of the first band's WCS."""
        return reference_radec(self.images[BAND_NAMES[0]].wcs)


@dataclass(frozen=True)
class SourceProblem:
    """A source a scan could not use, and why (the message names the file)."""

    name: str
    folder: Path
    message: str


@dataclass(frozen=True)
class ScanResult:
    """The sources a directory scan loaded, and the ones it reported and skipped."""

    sources: list[GleamSource]
    problems: list[SourceProblem]


def find_source_files(directory: str | Path) -> tuple[list[SourceFiles], list[SourceProblem]]:
    """Group the FITS files under ``directory`` (recursively) by source, whatever the naming.

    Files whose names carry no band are reported, as are two files for one source and band.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInputError(directory, "is not a directory")
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    problems: list[SourceProblem] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if not path.name.lower().endswith(FITS_SUFFIXES):
            continue
        parsed = parse_band_filename(path.name)
        if parsed is None:
            problems.append(SourceProblem(path.stem, path.parent, f"{path}: file name names no GLEAM band ({', '.join(BAND_NAMES)})"))
            continue
        bands = groups.setdefault((path.parent, parsed.source_key.lower()), {})
        if parsed.band in bands:
            problems.append(SourceProblem(display_name(parsed.source_key), path.parent, f"{path}: second file for band {parsed.band} (first: {bands[parsed.band]})"))
            continue
        bands[parsed.band] = path
    records = [_record(folder, files) for (folder, _), files in groups.items()]
    return sorted(records, key=lambda r: (str(r.folder), r.name)), problems


def _record(folder: Path, files: dict[str, Path]) -> SourceFiles:
    key = parse_band_filename(next(iter(files.values())).name).source_key
    label, split = label_and_split(folder)
    ordered = {b: files[b] for b in BAND_NAMES if b in files}
    return SourceFiles(display_name(key), key, folder, label, split, ordered)


def load_source(record: SourceFiles, *, allow_nonfinite: bool = False) -> GleamSource:
    """Read all four bands of one source; raise (naming the files) if any is unusable.

    ``allow_nonfinite`` keeps NaN and inf pixels (``halo-survey inspect`` reports them, as
    the survey tolerates NaN blanks); training refuses them (the default).
    """
    if record.missing_bands:
        raise MissingBandError(
            record.folder / record.key,
            f"source {record.name!r} lacks band(s) {', '.join(record.missing_bands)} "
            f"(found: {', '.join(p.name for p in record.files.values())})",
        )
    images = {band: read_band_file(path, band, allow_nonfinite=allow_nonfinite) for band, path in record.files.items()}
    return GleamSource(record.name, record.label, record.split, images, dict(record.files))


def scan_directory(directory: str | Path, *, allow_nonfinite: bool = False) -> ScanResult:
    """Load every source under ``directory``; report the unusable ones and go on with the rest.

    ``allow_nonfinite`` keeps sources with NaN or inf pixels (``load_source``).
    """
    records, problems = find_source_files(directory)
    sources: list[GleamSource] = []
    for record in records:
        try:
            sources.append(load_source(record, allow_nonfinite=allow_nonfinite))
        except BadInputError as exc:
            problems.append(SourceProblem(record.name, record.folder, str(exc)))
    return ScanResult(sources, problems)
