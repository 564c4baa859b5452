"""Every path and URI of a run directory and of its catalogues, built in one place.

A run directory (``--output``)::

    <output>/
      manifest.json        the run's report (survey.run.manifest)
      candidates/          the candidate catalogue (HATS, below)
      scores/              every window's score (--all-scores; HATS)
      work/detections/     per-tile detections of a run in progress (HATS, resumable); removed when complete
      plots/               halo-survey plot's PNGs (local runs)

Each catalogue's layout is the HATS one that ``hats`` and ``lsdb`` read (IVOA HATS Note)::

    <root>/
      hats.properties, properties      written last: their presence means "complete"
      partition_info.csv               "Norder,Npix", one row per non-empty tile
      skymap.fits                      candidate counts per tile
      dataset/
        _common_metadata, _metadata
        Norder=<k>/Dir=<d>/Npix=<p>.parquet      d = (p // 10000) * 10000
      done/                            only while a run is in progress
        run.json                       settings and provenance of the run (for --resume)
        <k>_<p>_done                   one JSON line per finished tile

Only integers (orders and pixel indices) ever become path components: target names
such as ``"PSZ2 G008.94-81.22"`` or ``"A/B"`` live in table columns, never in paths.
The Norder/Dir/Npix part is delegated to :mod:`hats.io.paths`, so our files sit
exactly where ``hats`` and ``lsdb`` look for them; the rest (done markers, temporary
files) follows lsdb ``to_hats``.
"""

from __future__ import annotations

import operator
import re
from pathlib import Path

from hats.io import paths as hats_paths
from hats.io.file_io import get_upath
from hats.pixel_math import HealpixPixel
from upath import UPath

KINDS: tuple[str, ...] = ("candidates", "scores")
"""The two catalogues a run can write: NMS-merged candidates and (``--all-scores``) every window."""

MANIFEST_FILENAME = "manifest.json"
WORK_DIR = "work"
DETECTIONS_DIR = "detections"
PLOTS_DIR = "plots"

PROPERTIES_FILENAME = "hats.properties"
PROPERTIES_COPY_FILENAME = "properties"
DONE_DIR = "done"
RUN_STATE_FILENAME = "run.json"
NPIX_SUFFIX = ".parquet"
TEMP_PREFIX = "."
"""Temporary files start with a dot: pyarrow's dataset discovery and hats' validation glob
(``Npix*``) both skip them, so a half-written file is never mistaken for a partition."""
TEMP_SUFFIX = ".tmp"

_DONE_MARKER = re.compile(r"^(\d+)_(\d+)_done$")

PathLike = str | Path | UPath


def _integer(value: object, name: str) -> int:
    """``value`` as a non-negative int, refusing strings, floats and bools (which are ints)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not a bool ({value!r})")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer (only integers go into output paths), got {value!r}"
        ) from None
    if number < 0:
        raise ValueError(f"{name} must be non-negative, got {number}")
    return number


def as_upath(root: PathLike, **storage_options) -> UPath:
    """A local path or a filesystem URI (``s3://``, ``gs://``, ``file://``) as a UPath.

    UPath (fsspec) is what hats and lsdb use, so the same object (and the same
    ``storage_options``) works for writing here and for reading with ``lsdb.open_catalog``.
    """
    if isinstance(root, UPath) and not storage_options:
        return root
    return get_upath(str(root) if isinstance(root, Path) else root, **storage_options)


def catalog_dir(output_dir: PathLike, *, kind: str) -> UPath:
    """The catalogue root of one kind inside a run's output directory, e.g. ``out/candidates``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return as_upath(output_dir) / kind


def candidates_root(path: PathLike) -> PathLike:
    """The candidate catalogue of ``path``: ``path/candidates`` for a run directory, else ``path``."""
    inside = catalog_dir(path, kind="candidates")
    return inside if properties_file(inside).exists() else path


def work_dir(output_dir: PathLike) -> UPath:
    """``<output>/work/detections``: the per-tile detections of a run in progress (a resumable HATS catalogue)."""
    return as_upath(output_dir) / WORK_DIR / DETECTIONS_DIR


def work_root(output_dir: PathLike) -> UPath:
    """``<output>/work``: everything a run keeps only until it is complete."""
    return as_upath(output_dir) / WORK_DIR


def manifest_file(output_dir: PathLike) -> UPath:
    """``<output>/manifest.json``."""
    return as_upath(output_dir) / MANIFEST_FILENAME


def plots_dir(path: PathLike) -> UPath:
    """``<path>/plots``: where ``halo-survey plot`` writes for a run directory or catalogue."""
    return as_upath(path) / PLOTS_DIR


def dataset_dir(root: PathLike) -> UPath:
    """``<root>/dataset``: the Parquet data and its ``_metadata`` files."""
    return hats_paths.dataset_directory(as_upath(root))


def tile_file(root: PathLike, *, order: int, tile: int) -> UPath:
    """``<root>/dataset/Norder=<order>/Dir=<d>/Npix=<tile>.parquet`` for one tile.

    Parameters
    ----------
    root : str, Path or UPath
        Catalogue root (local path or filesystem URI).
    order : int
        HEALPix NESTED order of the catalogue's tiles, 0..29.
    tile : int
        NESTED pixel index of the tile at ``order``; ``d`` is ``(tile // 10000) * 10000``.

    Returns
    -------
    UPath
        The partition file's path; nothing is created or checked on the filesystem.

    Raises
    ------
    TypeError
        ``order`` or ``tile`` is not an integer (a bool or float included).
    ValueError
        ``order`` or ``tile`` is negative, or ``order`` exceeds 29.
    """
    # Same components as hats.io.paths.pixel_catalog_file, without touching the
    # filesystem (that function instantiates it to check for HTTP).
    pixel = HealpixPixel(_integer(order, "order"), _integer(tile, "tile"))
    return (
        dataset_dir(root)
        / f"{hats_paths.PARTITION_ORDER}={pixel.order}"
        / f"{hats_paths.PARTITION_DIR}={pixel.dir}"
        / f"{hats_paths.PARTITION_PIXEL}={pixel.pixel}{NPIX_SUFFIX}"
    )


def tile_temp_file(root: PathLike, *, order: int, tile: int, token: int) -> UPath:
    """A temporary sibling of :func:`tile_file`, renamed into place once complete.

    It lives in the same directory as the final file so the rename never crosses
    filesystems; ``token`` (an integer, e.g. random bits) keeps concurrent attempts at
    the same tile (a retried Ray task) from clobbering each other.

    Parameters
    ----------
    root : str, Path or UPath
        Catalogue root (local path or filesystem URI).
    order, tile : int
        HEALPix NESTED order and pixel index of the tile, as for :func:`tile_file`.
    token : int
        Non-negative integer unique to this attempt.

    Returns
    -------
    UPath
        ``.Npix=<tile>.parquet.<token>.tmp`` beside the final file (the leading dot hides
        it from dataset discovery).

    Raises
    ------
    TypeError
        ``order``, ``tile`` or ``token`` is not an integer.
    ValueError
        One of them is negative, or ``order`` exceeds 29.
    """
    final = tile_file(root, order=order, tile=tile)
    return final.parent / f"{TEMP_PREFIX}{final.name}.{_integer(token, 'token')}{TEMP_SUFFIX}"


def is_temp_file(path: PathLike) -> bool:
    """True for a file name made by :func:`tile_temp_file` or :func:`temp_sibling`."""
    name = as_upath(path).name
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def temp_sibling(path: PathLike, *, token: int) -> UPath:
    """A temporary name next to ``path`` for any small file written by rename."""
    path = as_upath(path)
    return path.parent / f"{TEMP_PREFIX}{path.name}.{_integer(token, 'token')}{TEMP_SUFFIX}"


def done_dir(root: PathLike) -> UPath:
    """``<root>/done``: progress of a run in progress (removed when the catalogue is finished)."""
    return as_upath(root) / DONE_DIR


def done_marker(root: PathLike, *, order: int, tile: int) -> UPath:
    """``<root>/done/<order>_<tile>_done``, the lsdb ``to_hats`` marker name.

    Parameters
    ----------
    root : str, Path or UPath
        Catalogue root (local path or filesystem URI).
    order, tile : int
        HEALPix NESTED order and pixel index of the finished tile.

    Returns
    -------
    UPath
        The marker's path; nothing is created.

    Raises
    ------
    TypeError
        ``order`` or ``tile`` is not an integer.
    ValueError
        ``order`` or ``tile`` is negative.
    """
    return done_dir(root) / f"{_integer(order, 'order')}_{_integer(tile, 'tile')}_done"


def parse_done_marker(name: str) -> tuple[int, int] | None:
    """``(order, tile)`` of a done-marker file name, or None if ``name`` is not one.

    >>> parse_done_marker("5_1234_done")
    (5, 1234)
    >>> parse_done_marker("run.json") is None
    True
    """
    match = _DONE_MARKER.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def run_state_file(root: PathLike) -> UPath:
    """``<root>/done/run.json``: the settings a resumed run must match."""
    return done_dir(root) / RUN_STATE_FILENAME


def partition_info_file(root: PathLike) -> UPath:
    """``<root>/partition_info.csv``."""
    return hats_paths.get_partition_info_pointer(as_upath(root))


def common_metadata_file(root: PathLike) -> UPath:
    """``<root>/dataset/_common_metadata`` (the schema)."""
    return hats_paths.get_common_metadata_pointer(as_upath(root))


def metadata_file(root: PathLike) -> UPath:
    """``<root>/dataset/_metadata`` (all row-group footers)."""
    return hats_paths.get_parquet_metadata_pointer(as_upath(root))


def properties_file(root: PathLike) -> UPath:
    """``<root>/hats.properties``: hats reads this first; it is written last."""
    return as_upath(root) / PROPERTIES_FILENAME


def properties_files(root: PathLike) -> tuple[UPath, UPath]:
    """Both properties files: ``hats.properties`` and its older-name copy ``properties``."""
    root = as_upath(root)
    return root / PROPERTIES_FILENAME, root / PROPERTIES_COPY_FILENAME


def skymap_file(root: PathLike) -> UPath:
    """``<root>/skymap.fits``."""
    return hats_paths.get_skymap_file_pointer(as_upath(root))


def tile_from_path(path: PathLike) -> tuple[int, int] | None:
    """``(order, tile)`` encoded in a data-file path, or None if it is not a partition file."""
    pixel = hats_paths.get_healpix_from_path(str(path))
    if pixel.order < 0 or pixel.pixel < 0:
        return None
    return pixel.order, pixel.pixel
