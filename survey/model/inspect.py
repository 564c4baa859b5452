"""`halo-survey inspect DIR`: one row per source with what the preprocessing sees in it.

It reads the files as the survey does: NaN pixels (FITS blanks, no data) are allowed and
reported as ``blank``, +inf/-inf pixels (corrupt values, which the survey flags
``bad_pixels``) as ``inf``. A band the noise fit cannot use (all zero, all blank) puts its
source among the skipped ones, naming the file, as a scan fails its tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from survey.exceptions import BadInputError
from survey.images.discovery import GleamSource, SourceProblem, scan_directory
from survey.model.noise import clip_band
from survey.sky.bands import BAND_NAMES


@dataclass(frozen=True)
class BandReport:
    """What the shared preprocessing finds in one band of one source."""

    band: str
    pixel_arcsec: float
    sigma_mjy: float
    clip_threshold_mjy: float
    nonzero_fraction: float
    no_data_fraction: float
    flags: tuple[str, ...]


@dataclass(frozen=True)
class SourceReport:
    """One inspect row: a source and its four bands."""

    name: str
    label: int | None
    split: str | None
    ra_deg: float
    dec_deg: float
    bands: tuple[BandReport, ...]

    @property
    def flags(self) -> list[str]:
        """Band flags other than plain 'clipped', as ``band:flag``."""
        return [f"{b.band}:{f}" for b in self.bands for f in b.flags if f != "clipped"]


def inspect_band(source: GleamSource, band: str) -> BandReport:
    """Run the shared clipping on one band and summarise what it found."""
    image = source.images[band]
    try:
        clipped = clip_band(image.data)
    except ValueError as exc:  # nothing to fit the noise on: all zero or all blank
        raise BadInputError(image.origin, f"unusable {band} MHz image: {exc}") from exc
    noise = clipped.noise
    flags = list(noise.flags)
    no_data = float(clipped.no_data.mean())
    if no_data > 0:
        flags.append("truncated")
    if np.isnan(image.data).any():
        flags.append("blank")
    if np.isinf(image.data).any():
        flags.append("inf")
    return BandReport(
        band, image.pixel_deg * 3600, noise.sigma * 1e3, noise.clip_threshold * 1e3,
        noise.nonzero_fraction, no_data, tuple(flags),
    )


def inspect_source(source: GleamSource) -> SourceReport:
    """The inspect row of one loaded source."""
    ra, dec = source.centre_radec
    return SourceReport(source.name, source.label, source.split, ra, dec, tuple(inspect_band(source, b) for b in BAND_NAMES))


def format_reports(reports: list[SourceReport], problems: list[str]) -> str:
    """Fixed-width text table, one row per source, then the sources that could not be read."""
    band_cols = "  ".join(f"{b + ' MHz':>27}" for b in BAND_NAMES)
    head = f"{'source':<26} {'class/split':<11} {'RA':>8} {'Dec':>8}  {band_cols}  flags"
    units = 'px"  sigma/T mJy   nonzero'
    sub = f"{'':<26} {'':<11} {'deg':>8} {'deg':>8}  " + "  ".join(f"{units:>27}" for _ in BAND_NAMES)
    lines = [head, sub]
    for r in reports:
        cls = f"{'' if r.label is None else r.label}/{r.split or ''}"
        cells = "  ".join(
            f"{b.pixel_arcsec:4.0f} {b.sigma_mjy:6.1f}/{b.clip_threshold_mjy:6.1f} {b.nonzero_fraction:5.3f}".rjust(27) for b in r.bands
        )
        lines.append(f"{r.name:<26} {cls:<11} {r.ra_deg:8.3f} {r.dec_deg:8.3f}  {cells}  {','.join(r.flags) or 'ok'}")
    counts: dict[tuple, int] = {}
    for r in reports:
        counts[(r.split, r.label)] = counts.get((r.split, r.label), 0) + 1
    summary = ", ".join(f"{split or '-'}/class {label if label is not None else '-'}: {n}" for (split, label), n in sorted(counts.items(), key=str))
    lines.append(f"\n{len(reports)} sources ({summary})")
    if problems:
        lines.append(f"{len(problems)} source(s) skipped:")
        lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)


def inspect_directory(directory: str | Path) -> tuple[list[SourceReport], list[str]]:
    """Scan ``directory`` and inspect every readable source; unreadable ones are reported."""
    scan = scan_directory(directory, allow_nonfinite=True)
    reports, problems = [], list(scan.problems)
    for source in scan.sources:
        try:
            reports.append(inspect_source(source))
        except BadInputError as exc:
            problems.append(SourceProblem(source.name, Path(exc.where).parent, str(exc)))
    return reports, [p.message for p in problems]
