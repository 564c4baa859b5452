"""Resumable writer of the candidate catalogue in the HATS layout that lsdb reads.

The survey processes HEALPix NESTED tiles at one order k, and every row lies in the tile
that produced it, so each tile maps onto exactly one HATS partition
``dataset/Norder=k/Dir=d/Npix=p.parquet``. We therefore write the pixels ourselves (the
"write the pixels yourself" route of hats' directory scheme) instead of re-partitioning
through ``lsdb.from_dataframe``:

1. :meth:`CatalogWriter.write_tile` validates a tile's rows, sorts them by ``_healpix_29``,
   writes a temporary file beside the final one and renames it into place, and only
   then writes the tile's done marker (lsdb ``to_hats`` style). A killed run therefore
   leaves only complete files; a file without a marker is simply rewritten on resume.
2. :meth:`CatalogWriter.finish` reconciles the files with the markers (row counts must
   agree, as in hats-import ``reduce_pixel_shards``) and writes ``partition_info.csv``,
   ``_common_metadata``/``_metadata``, ``skymap.fits`` and, last, ``hats.properties``, so a
   crashed run is never read as a complete catalogue.

Filesystems: paths go through UPath (fsspec), as in hats and lsdb, so ``s3://`` or
``gs://`` work wherever the matching fsspec driver (s3fs, gcsfs) is installed, with the
same ``storage_options`` the readers take.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hats.catalog import PartitionInfo, TableProperties
from hats.catalog.dataset.hats_properties import HatsProperties
from hats.io import write_parquet_metadata
from hats.io.file_io import get_parquet_write_table_kwargs, remove_directory, write_fits_image
from hats.pixel_math import HealpixPixel
from upath import UPath

from survey.exceptions import BadInputError, CatalogError, NoDetectionsWarning
from survey.output import paths
from survey.output.schema import (
    CUTOUT_COLUMN,
    SPATIAL_INDEX_COLUMN,
    SPATIAL_INDEX_ORDER,
    column_units,
    conform,
    schema_for,
    spatial_index,
    tile_of,
)

__all__ = ["CatalogWriter", "FinishedCatalog", "check_same_settings", "check_writable", "is_halo_catalog", "package_version"]

PACKAGE = "halo-survey"
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 15
"""lsdb's and hats' default: ZSTD level 15, for catalogues written once and read many times."""
SCRATCH_COMPRESSION_LEVEL = 1
"""ZSTD level of a scratch catalogue that is read once (the run's per-tile detections).
The driver writes every tile, and with cut-out rows a tile's write at level 15 cost about
three times the CPU of level 1 (``bench/profile_tile.py``) for files only a little smaller."""
PROVENANCE_METADATA_KEY = b"halo_survey.provenance"
PROPERTY_PREFIX = "halo_"
RESUME_MAY_DIFFER = frozenset({"run_id"})
"""Provenance keys that may change when a run is resumed; every other key must match."""


@cache
def package_version() -> str:
    """Version of the installed ``halo-survey`` package (``"unknown"`` when run from a checkout).

    Cached: every tile's file records it, and reading the package metadata took 1.3 ms a
    time, a sixth of writing a tile (``TileSink.finish``).
    """
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _token() -> int:
    return secrets.randbits(62)


def check_writable(root: paths.PathLike, **storage_options) -> UPath:
    """Create ``root`` if needed and prove a file can be written and deleted in it.

    Call it before any compute: a wrong bucket or a read-only directory should fail in
    the first second of a run, not after the first tile.

    Raises
    ------
    BadInputError
        Naming the path and what to do (fix permissions, choose another location, or
        install the fsspec driver for the URI's protocol).
    """
    path = _resolve(root, storage_options)
    probe = paths.temp_sibling(path / "write-probe", token=_token())
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except ImportError as exc:
        raise BadInputError(str(path), f"no filesystem driver for this URI ({exc})") from exc
    except Exception as exc:  # fsspec backends raise OSError subclasses or their own errors
        raise BadInputError(
            str(path),
            f"cannot write the catalogue here ({type(exc).__name__}: {exc}); "
            "choose a writable output location or fix its permissions",
        ) from exc
    return path


def is_halo_catalog(root: paths.PathLike) -> bool:
    """Whether ``root`` holds a catalogue this writer made: finished (``hats.properties``) or in progress (``done/run.json``).

    Deleting is only safe for such a directory: a typo in ``--output`` must not erase
    someone's home directory.
    """
    return paths.properties_file(root).exists() or paths.run_state_file(root).exists()


def check_same_settings(
    stored: Mapping[str, object], current: Mapping[str, object], *, where: str, what: str, fix: str,
    may_differ: frozenset[str] = RESUME_MAY_DIFFER,
) -> None:
    """Raise BadInputError naming the first setting a resumed run changed (``may_differ`` aside).

    Parameters
    ----------
    stored, current : mapping
        The settings and provenance the earlier run recorded, and this run's.
    where : str
        The directory the message names.
    what : str
        How the message names the earlier run (``"cannot resume: the interrupted run"``).
    fix : str
        What the user can do, appended to the message.
    may_differ : frozenset of str
        Keys allowed to change (``run_id``).
    """
    for key in sorted(set(stored) | set(current)):
        if key in may_differ or stored.get(key) == current.get(key):
            continue
        raise BadInputError(
            where, f"{what} had {key}={stored.get(key)!r} but this run has {key}={current.get(key)!r}; {fix}"
        )


def _resolve(root: paths.PathLike, storage_options: Mapping[str, object] | None) -> UPath:
    """``root`` as a UPath, or a BadInputError for a URI whose protocol fsspec does not know."""
    try:
        return paths.as_upath(root, **dict(storage_options or {}))
    except ValueError as exc:  # UPath: "Unsupported filesystem: 'xyz'"
        raise BadInputError(str(root), f"no filesystem driver for this URI ({exc})") from exc


def _write_bytes_atomically(path: UPath, payload: bytes) -> None:
    """Write ``payload`` to a temporary sibling, then rename it onto ``path``."""
    temp = paths.temp_sibling(path, token=_token())
    temp.write_bytes(payload)
    temp.fs.mv(temp.path, path.path)


def _validate_provenance(provenance: Mapping[str, object]) -> dict[str, object]:
    """Provenance as a plain dict of simple values, keys usable as property names."""
    clean = {}
    for key, value in provenance.items():
        if not (isinstance(key, str) and key.isidentifier() and key == key.lower()):
            raise BadInputError("provenance", f"key {key!r} must be a lower-case identifier, e.g. 'model_sha256'")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise BadInputError("provenance", f"value of {key!r} must be a string or a number, got {type(value).__name__}")
        clean[key] = value
    return clean


@dataclass(frozen=True)
class FinishedCatalog:
    """What :meth:`CatalogWriter.finish` wrote.

    Attributes
    ----------
    root : str
        The catalogue directory or URI.
    total_rows : int
        Rows in the catalogue (``hats_nrows``).
    partitions : int
        Non-empty tiles, i.e. Parquet files.
    tiles : int
        Tiles with a done marker, empty ones included.
    """

    root: str
    total_rows: int
    partitions: int
    tiles: int


class CatalogWriter:
    """Write one tile at a time into a HATS catalogue that can be resumed after a crash.

    Construct it once, on the driver: construction checks that the root is writable
    and, on resume, removes stale temporary files. The object pickles, so Ray tasks can
    call :meth:`write_tile` on it concurrently (different tiles never share a file).

    Parameters
    ----------
    root : str, Path or UPath
        Catalogue directory, or a filesystem URI (``s3://``, ``gs://``, ``file://``, ``memory://``).
    order : int
        HEALPix order of the tiles, which becomes the catalogue's partition order.
    kind : {"candidates", "scores"}
        Which schema (:mod:`survey.output.schema`) the rows follow.
    provenance : mapping
        Model name and hash, image source, region, run id, code version, threshold...:
        lower-case keys, simple values. Stored in ``hats.properties`` (prefixed
        ``halo_``) and in every Parquet file's key-value metadata.
    resume : bool
        Continue an interrupted run in ``root``: tiles with a done marker are kept and
        :meth:`done_tiles` lists them. The stored provenance must match (except ``run_id``).
    overwrite : bool
        Delete an existing halo-survey catalogue in ``root`` first.
    with_cutout : bool
        Candidate rows carry the ``cutout`` column (see ``survey.output.schema.candidate_schema``).
    catalog_name : str or None
        ``obs_collection`` of the catalogue; defaults to ``gleam_halo_<kind>``.
    storage_options : mapping or None
        fsspec options for a remote ``root`` (credentials, endpoint).
    compression_level : int
        ZSTD level of the Parquet files: hats' default, or ``SCRATCH_COMPRESSION_LEVEL``
        for a catalogue that is read once and deleted.
    """

    def __init__(
        self,
        root: paths.PathLike,
        *,
        order: int,
        kind: str = "candidates",
        provenance: Mapping[str, object],
        resume: bool = False,
        overwrite: bool = False,
        with_cutout: bool = False,
        catalog_name: str | None = None,
        storage_options: Mapping[str, object] | None = None,
        compression_level: int = PARQUET_COMPRESSION_LEVEL,
    ):
        if overwrite and resume:
            raise BadInputError(
                str(root),
                "overwrite and resume cannot both be set: overwrite deletes the partial catalogue "
                "that resume would continue; pass only one of them",
            )
        if not 0 <= order <= SPATIAL_INDEX_ORDER:
            raise BadInputError("order", f"tile order must be within 0..{SPATIAL_INDEX_ORDER}, got {order}")
        self.root = _resolve(root, storage_options)
        self.order = int(order)
        self.kind = kind
        self.with_cutout = bool(with_cutout)
        self.schema = schema_for(kind, with_cutout=with_cutout)
        self.catalog_name = catalog_name or f"gleam_halo_{kind}"
        self.compression_level = int(compression_level)
        self.provenance = _validate_provenance(provenance)
        self.run_ids = [str(self.provenance.get("run_id"))] if self.provenance.get("run_id") else []
        self._finished = False
        self._prepare_root(resume=resume, overwrite=overwrite)

    # ---------------------------------------------------------------- set-up

    def _run_settings(self) -> dict[str, object]:
        return {"kind": self.kind, "order": self.order, "with_cutout": self.with_cutout}

    def _prepare_root(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse, wipe, or pick up ``root``, then record this run's settings in it."""
        check_writable(self.root)  # a bad location fails here, before any compute
        has_contents = any(True for _ in self.root.iterdir())
        if has_contents and not (resume or overwrite):
            raise BadInputError(
                str(self.root),
                "contains files; choose a different directory or set overwrite or resume to True",
            )
        if has_contents and overwrite:
            self._wipe()
            self.root.mkdir(parents=True, exist_ok=True)
        if has_contents and resume:
            self._load_run_state()
            self._remove_stale_temp_files()
        self._save_run_state()

    def _wipe(self) -> None:
        # Deleting is only safe for a directory we (or another HATS writer) made: a typo
        # in --output must not erase someone's home directory.
        if not is_halo_catalog(self.root):
            raise BadInputError(
                str(self.root),
                "overwrite refused: this directory holds files but no HATS catalogue "
                "(no hats.properties or done/run.json); choose another directory or empty it yourself",
            )
        remove_directory(self.root)

    def _load_run_state(self) -> None:
        """Check that the interrupted run wrote the same kind of catalogue with the same provenance."""
        if paths.properties_file(self.root).exists():
            raise BadInputError(
                str(self.root),
                "the catalogue is already complete (hats.properties exists), so there is nothing to resume; "
                "set overwrite=True to rebuild it or choose another directory",
            )
        state_file = paths.run_state_file(self.root)
        if not state_file.exists():
            raise BadInputError(
                str(self.root),
                "cannot resume: no done/run.json, so this is not an interrupted halo-survey catalogue; "
                "set overwrite=True or choose another directory",
            )
        state = json.loads(state_file.read_text())
        self._check_same_run(state)
        self.run_ids = [*state.get("run_ids", []), *[r for r in self.run_ids if r not in state.get("run_ids", [])]]

    def _check_same_run(self, state: Mapping[str, object]) -> None:
        check_same_settings({**state["settings"], **state["provenance"]}, {**self._run_settings(), **self.provenance},
                            where=str(self.root), what="cannot resume: the interrupted run",
                            fix="rerun with the same settings, or set overwrite=True to start again")

    def _save_run_state(self) -> None:
        state = {"settings": self._run_settings(), "provenance": self.provenance, "run_ids": self.run_ids}
        paths.done_dir(self.root).mkdir(parents=True, exist_ok=True)
        _write_bytes_atomically(paths.run_state_file(self.root), json.dumps(state, indent=1).encode())

    def _remove_stale_temp_files(self) -> None:
        """Delete temporary files left by killed or retried writes (never valid data)."""
        for directory in (paths.dataset_dir(self.root), paths.done_dir(self.root)):
            if directory.exists():
                for path in directory.rglob(f"{paths.TEMP_PREFIX}*{paths.TEMP_SUFFIX}"):
                    path.unlink()

    # ------------------------------------------------------------- per tile

    def write_tile(self, tile: int, table: pa.Table, *, mark_done: bool = True) -> int:
        """Validate, sort and write one tile's rows, then mark the tile done.

        Parameters
        ----------
        tile : int
            NESTED pixel index at the writer's order.
        table : pyarrow.Table
            The tile's rows (possibly none), following the writer's schema; every row's
            own ``ra``/``dec`` must lie in ``tile``.
        mark_done : bool
            Write the done marker now. False leaves it to ``mark_done`` (the survey's
            actors write rows, the driver marks them, so the manifest and the markers
            always agree); until marked, the tile counts as not done and is rewritten on resume.

        Returns
        -------
        int
            Rows written.

        Raises
        ------
        CatalogError
            A column is missing or of the wrong type, or a row lies outside ``tile``.
        BadInputError
            ``tile`` is not a pixel at the writer's order.
        """
        start = time.perf_counter()
        tile = self._check_tile_index(tile)
        table = conform(table, self.schema, tile=tile)
        _check_rows_in_tile(table, tile=tile, order=self.order)
        final = paths.tile_file(self.root, order=self.order, tile=tile)
        if table.num_rows:
            self._write_parquet(table.sort_by(SPATIAL_INDEX_COLUMN), final, tile=tile)
        elif final.exists():
            final.unlink()  # an earlier, interrupted attempt must not leave rows behind
        if mark_done:
            self.mark_done(tile, rows=table.num_rows, seconds=time.perf_counter() - start)
        return table.num_rows

    def mark_done(self, tile: int, *, rows: int, seconds: float = 0.0) -> None:
        """Write the done marker of a tile whose rows are written (``write_tile(..., mark_done=False)``).

        Parameters
        ----------
        tile : int
            NESTED pixel index at the writer's order.
        rows : int
            Rows its file holds (checked against the file when the catalogue is finished).
        seconds : float
            How long the tile took to write, recorded in the marker.
        """
        tile = self._check_tile_index(tile)
        marker = {"order": self.order, "tile": tile, "rows": int(rows), "seconds": round(float(seconds), 4)}
        _write_bytes_atomically(paths.done_marker(self.root, order=self.order, tile=tile),
                                (json.dumps(marker) + "\n").encode())

    def _check_tile_index(self, tile: int) -> int:
        if self._finished:
            raise CatalogError(f"{self.root}: the catalogue is finished; no more tiles can be written")
        if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)):
            raise TypeError(f"tile must be an integer pixel index, got {tile!r}")
        n_tiles = 12 * 4**self.order
        if not 0 <= int(tile) < n_tiles:
            raise BadInputError(f"tile {tile}", f"not a pixel at order {self.order} (0..{n_tiles - 1})")
        return int(tile)

    def _file_schema(self) -> pa.Schema:
        """The schema plus our provenance as Parquet key-value metadata."""
        provenance = {**self.provenance, "run_ids": self.run_ids, "builder": f"{PACKAGE} {package_version()}"}
        metadata = {**(self.schema.metadata or {}), PROVENANCE_METADATA_KEY: json.dumps(provenance).encode()}
        return self.schema.with_metadata(metadata)

    def _write_parquet(self, table: pa.Table, final: UPath, *, tile: int) -> None:
        table = table.replace_schema_metadata(self._file_schema().metadata)
        kwargs = get_parquet_write_table_kwargs(
            table.schema,
            write_table_kwargs={
                "compression": PARQUET_COMPRESSION,
                "compression_level": self.compression_level,
                "sorting_columns": pq.SortingColumn.from_ordering(table.schema, [(SPATIAL_INDEX_COLUMN, "ascending")]),
            },
        )
        temp = paths.tile_temp_file(self.root, order=self.order, tile=tile, token=_token())
        temp.parent.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, temp.path, filesystem=temp.fs, **kwargs)
            temp.fs.mv(temp.path, final.path)
        finally:
            if temp.exists():
                temp.unlink()

    def done_tiles(self) -> set[int]:
        """Tiles (at the writer's order) whose rows are written and marked done."""
        return set(self._read_markers())

    def _read_markers(self) -> dict[int, int]:
        """``{tile: rows}`` from the done markers."""
        rows = {}
        directory = paths.done_dir(self.root)
        if not directory.exists():
            return rows
        for path in directory.iterdir():
            parsed = paths.parse_done_marker(path.name)
            if parsed is None:
                continue
            order, tile = parsed
            if order != self.order:
                raise CatalogError(
                    f"{path}: done marker at order {order}, but this catalogue is written at order {self.order}"
                )
            rows[tile] = int(json.loads(path.read_text())["rows"])
        return rows

    # ---------------------------------------------------------------- finish

    def finish(self, *, expected_rows: int | None = None) -> FinishedCatalog:
        """Check every tile, then write the catalogue metadata, properties last.

        Parameters
        ----------
        expected_rows : int or None
            If given, the total the pipeline counted; a different number of rows on disk raises.

        Raises
        ------
        CatalogError
            A data file without a done marker (or the reverse), or row counts that disagree.
        """
        self._remove_stale_temp_files()
        markers = self._read_markers()
        histograms = self._tile_histograms()
        _reconcile(markers, {tile: len(ids) for tile, ids in histograms.items()}, root=self.root)
        total = sum(markers.values())
        if expected_rows is not None and total != expected_rows:
            raise CatalogError(f"{self.root}: expected {expected_rows} rows in total, found {total} in the written files")
        pixels = [HealpixPixel(self.order, tile) for tile in sorted(histograms)]
        partition_info = PartitionInfo(pixels)
        partition_info.write_to_file(paths.partition_info_file(self.root))
        self._write_parquet_metadata(has_files=bool(pixels))
        self._write_skymap(histograms)
        max_rows = max((len(ids) for ids in histograms.values()), default=0)
        self._properties(total, max_rows, partition_info).to_properties_file(self.root)
        remove_directory(paths.done_dir(self.root), ignore_errors=True)
        self._finished = True
        if total == 0:
            warnings.warn(
                f"{self.root}: no rows in any of {len(markers)} tiles; the catalogue is valid and empty",
                NoDetectionsWarning,
                stacklevel=2,
            )
        return FinishedCatalog(str(self.root), total, len(pixels), len(markers))

    def _tile_histograms(self) -> dict[int, np.ndarray]:
        """``{tile: _healpix_29 values}`` read back from every data file on disk."""
        found = {}
        for path in paths.dataset_dir(self.root).rglob(f"*{paths.NPIX_SUFFIX}"):
            parsed = paths.tile_from_path(path)
            if parsed is None or paths.is_temp_file(path):
                continue
            order, tile = parsed
            if order != self.order:
                raise CatalogError(f"{path}: data file at order {order}, but this catalogue is at order {self.order}")
            column = pq.read_table(path.path, filesystem=path.fs, columns=[SPATIAL_INDEX_COLUMN])
            found[tile] = column.column(0).to_numpy()
        return found

    def _write_parquet_metadata(self, *, has_files: bool) -> None:
        schema = self._file_schema()
        if has_files:
            write_parquet_metadata(self.root)
        else:
            # hats cannot derive a schema from zero files; write it ourselves, as lsdb
            # to_hats does for an empty catalogue.
            paths.dataset_dir(self.root).mkdir(parents=True, exist_ok=True)
            _write_metadata_file(schema, paths.metadata_file(self.root))
        # The merged provenance (all run ids) replaces the first file's in the schema file.
        _write_metadata_file(schema, paths.common_metadata_file(self.root))

    def _write_skymap(self, histograms: Mapping[int, np.ndarray]) -> None:
        """Candidate counts per tile, at the tile order (``hats_skymap_order``)."""
        counts = np.zeros(12 * 4**self.order, dtype=np.int64)
        for tile, ids in histograms.items():
            counts[tile] = len(ids)
        write_fits_image(counts, paths.skymap_file(self.root))

    def _properties(self, total: int, max_rows: int, partition_info: PartitionInfo) -> TableProperties:
        provenance = HatsProperties.new_provenance_dict(
            self.root, builder=f"{PACKAGE} v{package_version()}"
        )
        ours = {f"{PROPERTY_PREFIX}{key}": str(value) for key, value in self.provenance.items() if value is not None}
        ours[f"{PROPERTY_PREFIX}run_ids"] = " ".join(self.run_ids)
        ours[f"{PROPERTY_PREFIX}column_units"] = " ".join(f"{c}:{u}" for c, u in column_units(self.schema).items())
        defaults = [n for n in self.schema.names if n != CUTOUT_COLUMN] if self.with_cutout else None
        return TableProperties(
            catalog_name=self.catalog_name,
            catalog_type="object",
            total_rows=total,
            ra_column="ra",
            dec_column="dec",
            default_columns=defaults,
            healpix_column=SPATIAL_INDEX_COLUMN,
            healpix_order=SPATIAL_INDEX_ORDER,
            npix_suffix=paths.NPIX_SUFFIX,
            hats_max_rows=max_rows,
            moc_sky_fraction=round(partition_info.calculate_fractional_coverage(), 8) if total else 0.0,
            skymap_order=self.order,
            hats_order=self.order,
            **provenance,
            **ours,
        )


def _write_metadata_file(schema: pa.Schema, path: UPath) -> None:
    pq.write_metadata(schema, path.path, filesystem=path.fs)


def _check_rows_in_tile(table: pa.Table, *, tile: int, order: int) -> None:
    """Every row's ``_healpix_29`` must match its own position, and lie in ``tile``."""
    if table.num_rows == 0:
        return
    ra = table.column("ra").to_numpy()
    dec = table.column("dec").to_numpy()
    bad = np.flatnonzero(~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90.0))
    if bad.size:
        row = int(bad[0])
        raise CatalogError(f"tile {tile}: row {row} has an invalid position ra={ra[row]}, dec={dec[row]}")
    index = table.column(SPATIAL_INDEX_COLUMN).to_numpy()
    recomputed = spatial_index(ra, dec)
    bad = np.flatnonzero(index != recomputed)
    if bad.size:
        row = int(bad[0])
        raise CatalogError(
            f"tile {tile}: row {row} (ra={ra[row]:.6f}, dec={dec[row]:.6f}) has {SPATIAL_INDEX_COLUMN}="
            f"{index[row]} but its position gives {recomputed[row]}; fill it with survey.output.schema.spatial_index"
        )
    tiles = tile_of(index, order=order)
    bad = np.flatnonzero(tiles != tile)
    if bad.size:
        row = int(bad[0])
        raise CatalogError(
            f"tile {tile} (order {order}): row {row} at ra={ra[row]:.6f}, dec={dec[row]:.6f} lies in tile "
            f"{tiles[row]}; write each row to the tile containing its own position (survey.output.schema.tile_of)"
        )


def _reconcile(markers: Mapping[int, int], on_disk: Mapping[int, int], *, root: UPath) -> None:
    """Raise unless every data file has a marker with the same row count, and vice versa."""
    unmarked = sorted(set(on_disk) - set(markers))
    if unmarked:
        raise CatalogError(
            f"{root}: tile(s) {unmarked[:10]} have data files but no done marker (the run stopped between "
            "writing and marking them); resume the run to rewrite them"
        )
    for tile, rows in sorted(markers.items()):
        found = on_disk.get(tile, 0)
        if found != rows:
            raise CatalogError(
                f"{root}: tile {tile} was marked done with {rows} rows but its file holds {found}; "
                "rerun with overwrite=True to rebuild the catalogue"
            )
