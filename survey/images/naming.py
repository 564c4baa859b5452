"""GLEAM band file names: three patterns in the paper's data set, one parser.

The files carry no frequency keywords, so the band comes from the name; the source's
astronomer's spelling and, for training folders, its class and split come from the name
and folder too. Pure string handling: nothing here opens a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from survey.sky.bands import BAND_NAMES

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")

_BAND_TOKEN = re.compile(
    r"[_\s-]*(?:gleam[_\s-]*)?(?P<band>" + "|".join(re.escape(n) for n in BAND_NAMES) + r")(?:\s*mhz)?",
    re.IGNORECASE,
)
_SPLIT_FOLDER = re.compile(r"^(?P<split>train|test|val|valid|validation)[_-]?data[_-]?(?P<label>[01])$", re.IGNORECASE)
_DISPLAY_PREFIX = {"AQRCC": "AqrCC"}


@dataclass(frozen=True)
class BandFileName:
    """What a file name says: the source key (file-name spelling) and the band."""

    source_key: str
    band: str


def parse_band_filename(filename: str) -> BandFileName | None:
    """Source key and band of a GLEAM band file name, or None if it names no band.

    Handles the three patterns of the paper's data set:

    >>> parse_band_filename("abell_0122_Gleam103-134_clipped.fits")
    BandFileName(source_key='abell_0122', band='103-134')
    >>> parse_band_filename("3c 136.1_GLEAM_103-134MHz_clipped.fits")
    BandFileName(source_key='3c 136.1', band='103-134')
    >>> parse_band_filename("abell_s1063Gleam72-103_clipped.fits")
    BandFileName(source_key='abell_s1063', band='72-103')
    """
    lower = filename.lower()
    stem = next((filename[: -len(s)] for s in FITS_SUFFIXES if lower.endswith(s)), None)
    if stem is None:
        return None
    match = None
    for match in _BAND_TOKEN.finditer(stem):
        pass  # the last band token wins: source names may contain digits like 103-134 rarely
    if match is None:
        return None
    key = stem[: match.start()].strip(" _-")
    return BandFileName(key, match.group("band")) if key else None


def display_name(source_key: str) -> str:
    """Astronomer's spelling of a file-name source key.

    >>> display_name("abell_s1063"), display_name("abell_0122"), display_name("rxc j0137.2-0912")
    ('AS1063', 'A0122', 'RXC J0137.2-0912')
    >>> display_name("aqrcc 087"), display_name("plck G287.0+32.9")
    ('AqrCC 087', 'PLCK G287.0+32.9')
    """
    key = source_key.strip()
    abell = re.fullmatch(r"abell[_\s]*(s?)[_\s]*(\d+)", key, re.IGNORECASE)
    if abell:
        return f"A{abell.group(1).upper()}{abell.group(2)}"
    prefix, _, rest = key.replace("_", " ").partition(" ")
    prefix = _DISPLAY_PREFIX.get(prefix.upper(), prefix.upper())
    return f"{prefix} {rest.upper()}".strip()


def label_and_split(folder: Path) -> tuple[int | None, str | None]:
    """Class label and split a folder name states (``TRAIN_DATA_1`` -> (1, 'train'))."""
    match = _SPLIT_FOLDER.match(folder.name)
    if not match:
        return None, None
    split = match.group("split").lower()
    return int(match.group("label")), {"valid": "val", "validation": "val"}.get(split, split)
