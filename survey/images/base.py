"""Reading GLEAM images: one FITS/WCS shim, source discovery, and the ImageSource interface.

Everything that touches FITS headers or WCS objects lives here, so the rest of the code
sees only a 2-D float32 array plus a 2-D celestial WCS (``BandImage``). Radio images with
extra FREQ/STOKES axes are squeezed to two dimensions in this one file.
"""

from __future__ import annotations

import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from survey.sky.bands import BAND_NAMES, BANDS, Band, band_by_name
from survey.exceptions import BadInputError, MissingBandError

# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BandImage:
    """One band of one field: pixels and the celestial WCS that places them on the sky.

    Attributes
    ----------
    band : Band
        Which GLEAM band the pixels belong to.
    data : numpy.ndarray
        2-D float32 image, shape (ny, nx), in Jy/beam. May be a memory map.
    wcs : astropy.wcs.WCS
        2-D celestial WCS of ``data``.
    origin : str
        Where the pixels came from (a file path, ``"mock ..."``, ``"skyview ..."``); used in messages.
    """

    band: Band
    data: np.ndarray
    wcs: WCS
    origin: str

    @property
    def pixel_deg(self) -> float:
        """Pixel scale of this image in degrees (mean of |CDELT| along both axes)."""
        return float(np.mean(proj_plane_pixel_scales(self.wcs)))

    @property
    def centre_radec(self) -> tuple[float, float]:
        """(RA, Dec) in degrees of the image's central pixel."""
        ny, nx = self.data.shape
        sky = self.wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
        return float(sky.icrs.ra.deg), float(sky.icrs.dec.deg)


@dataclass(frozen=True)
class FieldRequest:
    """A square patch of sky that an ImageSource must cover in all four bands.

    Attributes
    ----------
    key : str
        Names the request in messages, cache keys and manifests (``"tile 5/1234"``, a cluster name).
    ra_deg, dec_deg : float
        Field centre (ICRS, degrees).
    width_deg : float
        Side of the square field, cut-out margin included.
    """

    key: str
    ra_deg: float
    dec_deg: float
    width_deg: float


class ImageSource(ABC):
    """Where four-band GLEAM pixels come from: SkyView, local FITS, or the mock sky.

    Implementations return one BandImage per band covering the requested field at the
    band's native pixel scale, and raise BadInputError / RemoteServiceError naming
    ``request.key`` when they cannot.
    """

    name: str = "abstract"

    @abstractmethod
    def read_field(self, request: FieldRequest) -> dict[str, BandImage]:
        """Return ``{band name: BandImage}`` for all four bands covering ``request``."""

    def describe(self) -> str:
        """One line for manifests and provenance."""
        return self.name


# --------------------------------------------------------------------------------------
# File names: three patterns in the paper's data set, one parser
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Reading one band file (the FITS/WCS shim)
# --------------------------------------------------------------------------------------


def _first_image_hdu(hdul: fits.HDUList, path: Path):
    for hdu in hdul:
        if getattr(hdu, "is_image", False) and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    raise BadInputError(path, "contains no image HDU with at least two dimensions")


def _celestial_wcs(header: fits.Header, path: Path) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several types for broken headers
            raise BadInputError(path, f"has an unreadable WCS ({exc})") from exc
    if not wcs.has_celestial:
        raise BadInputError(path, "has no celestial WCS (RA/Dec axes): cannot place it on the sky")
    return wcs.celestial


def _squeeze_to_2d(data: np.ndarray, path: Path) -> np.ndarray:
    """Drop length-1 axes (FREQ, STOKES) so a radio cube plane becomes a 2-D image."""
    squeezed = data.reshape([n for n in data.shape if n != 1]) if data.ndim > 2 else data
    if squeezed.ndim != 2:
        raise BadInputError(
            path, f"is not a 2-D image: shape {data.shape} has {squeezed.ndim} axes longer than 1; expected 2"
        )
    return squeezed


def read_band_file(path: str | Path, band: str | Band, *, allow_nonfinite: bool = False, lazy: bool = False) -> BandImage:
    """Read one band image: 2-D float32 pixels plus its celestial WCS.

    Parameters
    ----------
    path : path-like
        FITS file.
    band : str or Band
        Which GLEAM band the file holds (the files carry no frequency keywords).
    allow_nonfinite : bool
        Training files must be finite; survey images may have NaN blocks (no data), which
        the caller turns into flagged, zero-filled regions.
    lazy : bool
        Keep the pixels memory-mapped (mosaics); otherwise read them into memory.

    Raises
    ------
    BadInputError
        Naming the file: not FITS, no image, not 2-D, no celestial WCS, NaN/inf pixels.
    """
    path = Path(path)
    band = band if isinstance(band, Band) else band_by_name(band)
    try:
        hdul = fits.open(path, memmap=lazy, lazy_load_hdus=False)
    except FileNotFoundError as exc:
        raise BadInputError(path, "does not exist") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise BadInputError(path, f"is not a readable FITS file ({exc})") from exc
    with hdul:
        try:
            hdu = _first_image_hdu(hdul, path)
            data = _squeeze_to_2d(hdu.data, path)
        except (OSError, ValueError, TypeError) as exc:
            if isinstance(exc, BadInputError):
                raise
            raise BadInputError(path, f"has unreadable pixel data ({exc})") from exc
        wcs = _celestial_wcs(hdu.header, path)
        data = data if lazy else np.array(data, dtype=np.float32)
    if not allow_nonfinite:
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise BadInputError(path, f"has {bad} NaN/inf pixels ({bad / data.size:.1%}); expected a finite image")
    return BandImage(band=band, data=data, wcs=wcs, origin=str(path))


# --------------------------------------------------------------------------------------
# Sources: four band files grouped, loaded, reported
# --------------------------------------------------------------------------------------


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
        ra, dec = self.images[BAND_NAMES[0]].wcs.wcs.crval[:2]
        return float(ra), float(dec)


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


def load_source(record: SourceFiles) -> GleamSource:
    """Read all four bands of one source; raise (naming the files) if any is unusable."""
    if record.missing_bands:
        raise MissingBandError(
            record.folder / record.key,
            f"source {record.name!r} lacks band(s) {', '.join(record.missing_bands)} "
            f"(found: {', '.join(p.name for p in record.files.values())})",
        )
    images = {band: read_band_file(path, band) for band, path in record.files.items()}
    return GleamSource(record.name, record.label, record.split, images, dict(record.files))


def scan_directory(directory: str | Path) -> ScanResult:
    """Load every source under ``directory``; report the unusable ones and go on with the rest."""
    records, problems = find_source_files(directory)
    sources: list[GleamSource] = []
    for record in records:
        try:
            sources.append(load_source(record))
        except BadInputError as exc:
            problems.append(SourceProblem(record.name, record.folder, str(exc)))
    return ScanResult(sources, problems)
