"""``--source fits:DIR``: serve survey fields from a directory of local GLEAM FITS files.

Two layouts work, because both are "sets of four band files" to
``survey.images.discovery.find_source_files``:

* four-band cut-out sets like the paper's data (``abell_0122_Gleam72-103_clipped.fits`` ...),
  one set per source, each a few degrees wide;
* one mosaic per band (``mosaic_72-103.fits`` ... ``mosaic_170-231.fits``), a single big set.

Construction reads only headers (shape and celestial WCS of every file). A field request
is served by the one image set that covers most of the field: its four files are opened
memory-mapped and only the pixels under the field are read, so a mosaic of any size costs
only the field. Nothing is regridded or mosaicked: where the chosen set does not cover the
field, the cut-outs report the missing part (``outside_fraction``) and the candidates are
flagged. Set names (with spaces, slashes or anything else) are only ever used in messages
and target names, never in paths.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from astropy.table import Table

from survey.exceptions import BadInputError, MissingBandError
from survey.images.base import BandImage, ImageSource, crop_wcs, pixel_to_world, read_band_file, tan_wcs, world_to_pixel
from survey.images.discovery import SourceFiles, find_source_files
from survey.sky.bands import BAND_NAMES, band_by_name
from survey.sky.fields import FieldRequest
from survey.sky.geometry import angular_distance_deg

if TYPE_CHECKING:
    from astropy.wcs import WCS

logger = logging.getLogger(__name__)

FIELD_GRID_POINTS = 9
"""Sample points per side of a field when measuring how much of it an image covers."""

PIXEL_SCALE_TOLERANCE = 1.25
"""A band file whose pixel scale differs from the band's native one by more than this factor
(either way) is refused: the classifiers take 64-pixel cut-outs at the native scales
(``survey.sky.bands``), so another scale shows them another sky area and another beam."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class BandFile:
    """One band file as indexed: where it is, its pixel shape and its celestial WCS.

    Attributes
    ----------
    path : Path
        The FITS file.
    band : str
        GLEAM band name (from the file name).
    shape : tuple of int
        (ny, nx) of the 2-D image.
    wcs : astropy.wcs.WCS
        Its 2-D celestial WCS.
    """

    path: Path
    band: str
    shape: tuple[int, int]
    wcs: WCS

    def contains(self, ra_deg: FloatArray, dec_deg: FloatArray) -> BoolArray:
        """True where a sky position falls on a pixel of this image."""
        x, y = world_to_pixel(self.wcs, ra_deg, dec_deg)
        ny, nx = self.shape
        with np.errstate(invalid="ignore"):
            return (x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """The band files of one source (or one set of mosaics), as indexed.

    Attributes
    ----------
    name : str
        Display name of the set (``"A2744"``, ``"ORC 2"``, ``"MOSAIC"``).
    folder : Path
        Folder holding the files.
    files : dict[str, BandFile]
        Readable band files, by band name.
    problems : dict[str, str]
        Bands that could not be used and why (missing, unreadable), each message naming the file.
    """

    name: str
    folder: Path
    files: dict[str, BandFile]
    problems: dict[str, str]

    @property
    def complete(self) -> bool:
        """All four bands are present and readable."""
        return not self.problems and set(self.files) == set(BAND_NAMES)

    @property
    def placeable(self) -> bool:
        """Some band is readable, so the set has a place on the sky (an incomplete set still fails its own fields)."""
        return bool(self.files)

    @property
    def problem(self) -> str:
        """One line naming the set and why it cannot be used ("" for a complete set)."""
        if self.complete:
            return ""
        where = "" if self.placeable else " (no band readable, so it cannot even be placed on the sky)"
        return f"image set {self.name!r} in {self.folder} is unusable{where}: {'; '.join(self.problems.values())}"

    @property
    def centre_radec(self) -> tuple[float, float]:
        """(RA, Dec) in degrees of the central pixel of the set's first readable band.

        Raises
        ------
        BadInputError
            No band of the set is readable (``placeable`` is False).
        """
        if not self.files:
            raise BadInputError(self.folder, self.problem)
        first = next(iter(self.files.values()))
        ny, nx = first.shape
        ra, dec = pixel_to_world(first.wcs, [(nx - 1) / 2.0], [(ny - 1) / 2.0])
        return float(ra[0]) % 360.0, float(dec[0])

    def coverage(self, ra_deg: FloatArray, dec_deg: FloatArray) -> float:
        """Fraction of the given points that every readable band of the set covers."""
        if not self.files:
            return 0.0
        inside = np.logical_and.reduce([f.contains(ra_deg, dec_deg) for f in self.files.values()])
        return float(np.mean(inside))


# --------------------------------------------------------------------------------------
# Indexing (headers only)
# --------------------------------------------------------------------------------------


def _index_file(path: Path, band: str) -> BandFile:
    """Shape and WCS of one file; the pixels stay on disk (memory-mapped, never read here)."""
    image = read_band_file(path, band, lazy=True, allow_nonfinite=True)
    check_pixel_scale(image)
    return BandFile(path=path, band=band, shape=tuple(image.data.shape), wcs=image.wcs)


def check_pixel_scale(image: BandImage, *, tolerance: float = PIXEL_SCALE_TOLERANCE) -> None:
    """Refuse a band image whose pixel scale is not its band's native one (within ``tolerance``).

    Raises
    ------
    BadInputError
        Naming the file, its scale, the band's native scale and the fix.
    """
    native = image.band.pixel_deg
    scale = image.pixel_deg
    ratio = scale / native if native > 0 else float("nan")
    if not 1.0 / tolerance <= ratio <= tolerance:
        raise BadInputError(
            image.origin,
            f"pixel scale {scale * 3600:.1f}\" is {ratio:.2g} times the {image.band.name} MHz band's native "
            f"{native * 3600:.0f}\" (the classifiers take cut-outs at the native scale); reproject the image "
            f"to {native * 3600:.0f}\"/px or fix its CDELT/CD keywords",
        )


def _index_set(record: SourceFiles) -> ImageSet:
    files: dict[str, BandFile] = {}
    problems = {band: f"{record.folder}: set {record.name!r} has no {band} MHz file" for band in record.missing_bands}
    for band, path in record.files.items():
        try:
            files[band] = _index_file(path, band)
        except BadInputError as exc:
            problems[band] = str(exc)
    return ImageSet(name=record.name, folder=record.folder, files=files, problems=problems)


def index_directory(directory: str | Path) -> tuple[list[ImageSet], list[str]]:
    """Every image set under ``directory`` (recursively) and the files that fit no set.

    Raises
    ------
    BadInputError
        ``directory`` is not a directory or holds no GLEAM band file at all.
    """
    records, problems = find_source_files(directory)
    sets = [_index_set(record) for record in records]
    if not sets:
        raise BadInputError(
            directory, "holds no GLEAM band FITS files (names like NAME_Gleam72-103.fits or mosaic_170-231.fits)"
        )
    return sets, [p.message for p in problems]


# --------------------------------------------------------------------------------------
# Fields (pure geometry)
# --------------------------------------------------------------------------------------


def field_grid(request: FieldRequest, *, points: int = FIELD_GRID_POINTS) -> tuple[FloatArray, FloatArray]:
    """(RA, Dec) of a ``points`` x ``points`` grid spanning the field square, edges included."""
    step = request.width_deg / (points - 1)
    wcs = tan_wcs(ra_deg=request.ra_deg, dec_deg=request.dec_deg, pixel_deg=step, shape=(points, points))
    y, x = np.mgrid[0:points, 0:points].astype(float)
    ra, dec = pixel_to_world(wcs, x.ravel(), y.ravel())
    return ra % 360.0, dec


def best_set(sets: list[ImageSet], request: FieldRequest) -> tuple[ImageSet | None, float]:
    """The set covering most of the field (ties: the nearest centre) and its covered fraction.

    Sets with no readable band cannot be placed on the sky and are never chosen; with no
    placeable set at all the answer is ``(None, 0.0)``.
    """
    sets = [s for s in sets if s.placeable]
    if not sets:
        return None, 0.0
    ra, dec = field_grid(request)

    def rank(item: ImageSet) -> tuple[float, float]:
        distance = angular_distance_deg(*item.centre_radec, request.ra_deg, request.dec_deg)
        return item.coverage(ra, dec), -float(distance)

    chosen = max(sets, key=rank)
    return chosen, chosen.coverage(ra, dec)


def crop_to_field(image: BandImage, request: FieldRequest) -> BandImage:
    """The part of ``image`` under the field (plus one pixel), read into memory as float32.

    On a memory-mapped mosaic this reads only those pixels. The WCS is sliced with the
    data, so sky positions map to the same pixels as before.
    """
    ra, dec = field_grid(request)
    x, y = world_to_pixel(image.wcs, ra, dec)
    ny, nx = image.data.shape
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        raise BadInputError(image.origin, f"the field of {request.key} does not project onto this image")
    x0, x1 = (int(np.clip(v, 0, nx)) for v in (np.floor(x[finite].min()) - 1, np.ceil(x[finite].max()) + 2))
    y0, y1 = (int(np.clip(v, 0, ny)) for v in (np.floor(y[finite].min()) - 1, np.ceil(y[finite].max()) + 2))
    if x1 <= x0 or y1 <= y0:
        raise BadInputError(image.origin, f"does not overlap the field of {request.key}")
    data = np.array(image.data[y0:y1, x0:x1], dtype=np.float32)
    return BandImage(band=image.band, data=data, wcs=crop_wcs(image.wcs, x0=x0, y0=y0, x1=x1, y1=y1), origin=image.origin)


# --------------------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------------------


class FitsDirectorySource(ImageSource):
    """An ImageSource over a directory of GLEAM FITS files (cut-out sets or mosaics).

    Parameters
    ----------
    directory : str or Path
        Searched recursively; file names must carry the band (``survey.images.naming.parse_band_filename``).

    Attributes
    ----------
    sets : list of ImageSet
        The indexed image sets, complete or not.
    skipped : list of str
        Files that fit no set (no band in the name, a second file for one band).
    problems : list of str
        ``skipped`` and one line per unusable image set, naming its files (``ImageSource.problems``).

    Notes
    -----
    Pickles with its index only (paths, shapes, WCS), so Ray workers re-open the files
    themselves; nothing is read until ``read_field``.
    """

    name = "fits"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        self.sets, self.skipped = index_directory(self.directory)
        for message in self.skipped:
            logger.warning("skipped %s", message)
        for item in self.sets:
            for message in item.problems.values():
                logger.warning("image set %r is incomplete: %s", item.name, message)

    @property
    def problems(self) -> list[str]:
        """The files that fit no set, and one line per unusable set naming its files and why."""
        return [*self.skipped, *(s.problem for s in self.sets if not s.complete)]

    @property
    def unplaceable(self) -> list[ImageSet]:
        """Sets with no readable band: nothing says where on the sky they are."""
        return [s for s in self.sets if not s.placeable]

    def unplaced_targets(self) -> list[str]:
        """The unplaceable sets' problems: image sets ``targets --catalog images`` cannot score."""
        return [s.problem for s in self.unplaceable]

    def describe(self) -> str:
        complete = sum(s.complete for s in self.sets)
        return f"fits:{self.directory} ({len(self.sets)} image sets, {complete} complete)"

    def read_field(self, request: FieldRequest) -> dict[str, BandImage]:
        """The four band images of the set covering most of ``request``, cropped to the field.

        Raises
        ------
        BadInputError
            No set covers any of the field (naming the request and the directory), or a
            chosen file turns out unreadable (naming the file).
        MissingBandError
            The covering set lacks a band or has an unreadable one (naming the files).
        """
        chosen, covered = best_set(self.sets, request)
        if chosen is None or covered == 0.0:
            lost = self.unplaceable
            also = (f"; {len(lost)} image set(s) there cannot be placed on the sky ({', '.join(repr(s.name) for s in lost[:5])}"
                    f"{', ...' if len(lost) > 5 else ''}: see the run's source problems)") if lost else ""
            raise BadInputError(
                request.key,
                f"no image set under {self.directory} covers the field at RA {request.ra_deg:.4f}, "
                f"Dec {request.dec_deg:.4f} (width {request.width_deg:.2f} deg){also}",
            )
        if not chosen.complete:
            raise MissingBandError(
                request.key, f"the image set {chosen.name!r} covering it is unusable: {'; '.join(chosen.problems.values())}"
            )
        return {
            band: crop_to_field(read_band_file(f.path, band_by_name(band), lazy=True, allow_nonfinite=True), request)
            for band, f in chosen.files.items()
        }

    def covers(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        """True where a position lies on every readable band of some image set, complete or not.

        An incomplete set (a band missing, truncated, not FITS, without WCS) covers its
        readable bands' area, so a target there is planned and fails naming the set's
        files, as a scanned tile does, instead of being dropped as "outside the images".
        """
        ra = np.atleast_1d(np.asarray(ra_deg, float))
        dec = np.atleast_1d(np.asarray(dec_deg, float))
        inside = np.zeros(ra.shape, bool)
        for item in self.sets:
            if item.placeable:
                inside |= np.logical_and.reduce([f.contains(ra, dec) for f in item.files.values()])
        return inside

    def targets(self) -> Table:
        """One row per placeable image set: ``name``, ``ra``, ``dec`` (its centre), for ``targets --catalog images``.

        Incomplete sets are targets too (they fail, naming their files); sets with no
        readable band have no position and are left out (``unplaceable``, ``problems``).
        """
        placed = [s for s in self.sets if s.placeable]
        centres = np.array([s.centre_radec for s in placed], float).reshape(-1, 2)
        return Table({"name": [s.name for s in placed], "ra": centres[:, 0], "dec": centres[:, 1]})
