"""Read a finished candidate catalogue back: filters, cone searches and output formats.

A cone search goes through ``lsdb.open_catalog(path, search_filter=lsdb.ConeSearch(...))``,
which picks the partitions that overlap the cone from the catalogue's partition list and
opens only those files, then keeps the rows whose exact angular distance is within the
radius. A score cut is pushed down to the Parquet reader as a row filter. The other
filters (names, matches, flags) are applied to the small result in pandas.
"""

from __future__ import annotations

import difflib
import io
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from survey.defaults import QUERY_FORMATS
from survey.exceptions import BadInputError, CatalogError, NoDetectionsWarning
from survey.output import paths
from survey.output.schema import CATALOGS, CUTOUT_COLUMN, FLAG_NAMES, FLAGS_OK, SPATIAL_INDEX_COLUMN, column_units

__all__ = [
    "format_candidates",
    "normalise_name",
    "query_command",
    "read_candidates",
    "read_schema",
    "to_astropy",
    "write_candidates",
]

TEXT_FORMATS = ("table", "csv", "votable")
"""Formats :func:`format_candidates` can return; FITS and Parquet need a file."""
TABLE_COLUMNS: tuple[str, ...] = (
    "ra", "dec", "score", "n_windows", "flags", "target_name",
    *[f"{cat}_{what}" for cat in CATALOGS for what in ("name", "sep_arcmin")],
)
"""The columns the terminal ``table`` format shows (when present); the other formats give all."""

TABLE_DISPLAY_FORMATS = {
    "ra": ".5f", "dec": ".5f", "score": ".4f",
    **{f"{cat}_sep_arcmin": ".2f" for cat in CATALOGS},
}
"""Digits the terminal ``table`` shows (0.04" in position, 0.01' in separation); the stored values and
the other formats keep full precision."""

Cone = tuple[float, float, float]


def read_schema(path: paths.PathLike) -> pa.Schema:
    """The catalogue's Arrow schema (with units in the field metadata), from ``_common_metadata``.

    Raises
    ------
    CatalogError
        If ``path`` holds no finished catalogue.
    """
    if not paths.properties_file(path).exists():
        raise CatalogError(
            f"{path}: no hats.properties, so this is not a finished catalogue; if a run was interrupted, "
            "rerun it with --resume to complete it"
        )
    common = paths.common_metadata_file(path)
    return pq.read_schema(common.path, filesystem=common.fs)


def read_candidates(
    path: paths.PathLike,
    *,
    min_score: float | None = None,
    cone: Cone | None = None,
    near: str | None = None,
    matched_to: str | None = None,
    flags: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of a finished catalogue that pass every given filter, in ``_healpix_29`` order.

    Parameters
    ----------
    path : str, Path or UPath
        Catalogue root (local path or filesystem URI).
    min_score : float or None
        Keep rows with ``score >= min_score``.
    cone : (ra_deg, dec_deg, radius_deg) or None
        Keep rows within this cone; only the partitions overlapping it are read.
    near : str or None
        Keep rows whose ``target_name`` or any ``<catalogue>_name`` equals this name, ignoring
        case and spaces (``"psz2 g008.94-81.22"`` finds ``"PSZ2 G008.94-81.22"``).
    matched_to : {"psz2", "mgcls", "mcxc", "cosmos"} or None
        Keep rows with a match in that cluster catalogue.
    flags : str or None
        ``"ok"`` keeps unflagged rows; a flag name (``"truncated"``, ``"noise_high"``,
        ``"edge"``) keeps rows carrying that flag.
    columns : sequence of str or None
        Columns to return; default all but ``cutout``.

    Returns
    -------
    pandas.DataFrame
        With ``_healpix_29`` as a column. An empty result warns ``NoDetectionsWarning``.

    Raises
    ------
    BadInputError
        A bad filter value, or ``near`` names no row (the message says how to search instead).
    """
    schema = read_schema(path)
    wanted = _output_columns(schema, columns, path=path)
    needed = list(dict.fromkeys([*wanted, *_filter_columns(near, matched_to, flags)]))
    _check_filters(schema, min_score=min_score, cone=cone, matched_to=matched_to, flags=flags, needed=needed, path=path)
    frame = _read(path, schema=schema, columns=needed, min_score=min_score, cone=cone)
    frame = _apply_table_filters(frame, matched_to=matched_to, flags=flags)
    if near is not None:
        frame = _select_near(frame, near, path=path)
    if frame.empty:
        warnings.warn(f"{path}: no candidates pass the filters", NoDetectionsWarning, stacklevel=2)
    return frame[wanted].reset_index(drop=True)


def _output_columns(schema: pa.Schema, columns: Sequence[str] | None, *, path) -> list[str]:
    if columns is None:
        return [name for name in schema.names if name != CUTOUT_COLUMN]
    unknown = [name for name in columns if name not in schema.names]
    if unknown:
        raise BadInputError(str(path), f"unknown column(s) {unknown}; the catalogue has {', '.join(schema.names)}")
    return list(columns)


def _filter_columns(near: str | None, matched_to: str | None, flags: str | None) -> list[str]:
    needed = []
    if near is not None:
        needed += ["target_name", *[f"{cat}_name" for cat in CATALOGS]]
    if matched_to is not None:
        needed.append(f"{matched_to}_name")
    if flags is not None:
        needed.append("flags")
    return needed


def _check_filters(schema: pa.Schema, *, min_score, cone, matched_to, flags, needed, path) -> None:
    """Reject bad filter values before reading anything."""
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise BadInputError("min_score", f"a halo probability must lie in [0, 1], got {min_score}")
    if cone is not None:
        ra_deg, dec_deg, radius_deg = cone
        if not -90.0 <= dec_deg <= 90.0 or not 0.0 < radius_deg <= 180.0:
            raise BadInputError("cone", f"need -90 <= dec <= 90 and 0 < radius_deg <= 180, got {cone}")
    if matched_to is not None and matched_to not in CATALOGS:
        raise BadInputError("matched_to", f"unknown catalogue {matched_to!r}; choose one of {', '.join(CATALOGS)}")
    if flags is not None and flags not in (FLAGS_OK, *FLAG_NAMES):
        raise BadInputError("flags", f"unknown flag {flags!r}; choose {FLAGS_OK!r} or one of {', '.join(FLAG_NAMES)}")
    missing = [name for name in needed if name not in schema.names]
    if missing:
        raise BadInputError(str(path), f"this catalogue has no column(s) {missing} to filter on")


def _read(path, *, schema: pa.Schema, columns: list[str], min_score, cone) -> pd.DataFrame:
    """Read the needed columns, pruning partitions by the cone and rows by the score."""
    import lsdb  # heavy (dask); only the query side needs it

    read_columns = list(dict.fromkeys([SPATIAL_INDEX_COLUMN, *columns]))
    search = None if cone is None else lsdb.ConeSearch(cone[0], cone[1], radius_arcsec=cone[2] * 3600.0)
    filters = None if min_score is None else [("score", ">=", float(min_score))]
    catalog = lsdb.open_catalog(
        paths.as_upath(path),
        search_filter=search,
        columns=read_columns,
        filters=filters,
        error_empty_filter=False,
    )
    frame = catalog.compute(progress_bar=False)
    frame = pd.DataFrame(frame).reset_index()
    if frame.empty:  # lsdb's empty frame may lack the index column's dtype
        return pd.DataFrame({name: pd.Series(dtype=pd.ArrowDtype(schema.field(name).type)) for name in read_columns})
    return frame.sort_values(SPATIAL_INDEX_COLUMN, kind="stable")


def _apply_table_filters(frame: pd.DataFrame, *, matched_to: str | None, flags: str | None) -> pd.DataFrame:
    if matched_to is not None:
        frame = frame[frame[f"{matched_to}_name"].notna().to_numpy(dtype=bool)]
    if flags == FLAGS_OK:
        frame = frame[(frame["flags"] == FLAGS_OK).fillna(False).to_numpy(dtype=bool)]
    elif flags is not None:
        has_flag = frame["flags"].map(lambda text: flags in str(text).split(","), na_action="ignore")
        frame = frame[has_flag.fillna(False).to_numpy(dtype=bool)]
    return frame


def normalise_name(name: str) -> str:
    """Case- and space-insensitive form of a source name.

    >>> normalise_name(" PSZ2  G008.94-81.22 ")
    'psz2g008.94-81.22'
    """
    return re.sub(r"\s+", "", str(name)).casefold()


def _select_near(frame: pd.DataFrame, near: str, *, path) -> pd.DataFrame:
    """Rows whose target or matched-cluster name equals ``near``; raise with suggestions if none."""
    key = normalise_name(near)
    name_columns = ["target_name", *[f"{cat}_name" for cat in CATALOGS]]
    hits = np.zeros(len(frame), dtype=bool)
    known: set[str] = set()
    for column in name_columns:
        names = frame[column].dropna().astype(str)
        known.update(names)
        hits |= frame[column].map(normalise_name, na_action="ignore").eq(key).fillna(False).to_numpy(dtype=bool)
    if hits.any():
        return frame[hits]
    close = difflib.get_close_matches(near, sorted(known), n=5, cutoff=0.6)
    hint = f" Close names in this selection: {', '.join(close)}." if close else ""
    raise BadInputError(
        str(path),
        f"no candidate is named {near!r} (compared, ignoring case and spaces, with target_name and "
        f"{', '.join(f'{c}_name' for c in CATALOGS)}).{hint} Check the spelling, or search by position "
        "instead with cone=(ra_deg, dec_deg, radius_deg) (CLI: --cone RA DEC RADIUS); a blind scan "
        "only names candidates that matched a cluster catalogue.",
    )


# ------------------------------------------------------------------ output


def _check_format(fmt: str) -> None:
    if fmt not in QUERY_FORMATS:
        raise BadInputError("format", f"unknown output format {fmt!r}; choose one of {', '.join(QUERY_FORMATS)}")


def to_astropy(frame: pd.DataFrame, *, units: dict[str, str] | None = None):
    """``frame`` as an astropy Table with units, nulls as masked entries.

    The ``cutout`` list column becomes a 2-D column (one row of 16 384 values per candidate).
    """
    from astropy.table import Column, MaskedColumn, Table

    table = Table()
    for name in frame.columns:
        values = pa.array(frame[name], from_pandas=True)
        data, mask = _numpy_with_mask(values)
        unit = (units or {}).get(name) or None
        table[name] = MaskedColumn(data, mask=mask, unit=unit) if mask.any() else Column(data, unit=unit)
    return table


def _numpy_with_mask(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A numpy array for an Arrow column (nulls filled) and its null mask."""
    mask = values.is_null().to_numpy(zero_copy_only=False)
    kind = values.type
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind):
        width = kind.list_size if pa.types.is_fixed_size_list(kind) else 0
        rows = [np.zeros(width, np.float32) if v is None else np.asarray(v, np.float32) for v in values.to_pylist()]
        return (np.stack(rows) if rows else np.zeros((0, width), np.float32)), mask
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array(["" if v is None else v for v in values.to_pylist()], dtype=str), mask
    if pa.types.is_int8(kind):  # neither VOTable nor FITS has a signed byte
        values = values.cast(pa.int16())
    fill = False if pa.types.is_boolean(kind) else 0
    return values.fill_null(fill).to_numpy(zero_copy_only=False), mask


def format_candidates(frame: pd.DataFrame, fmt: str, *, units: dict[str, str] | None = None) -> str | bytes:
    """Render candidates as text (``table``, ``csv``) or bytes (``votable``).

    ``table`` is for reading on a terminal and shows only :data:`TABLE_COLUMNS`; ``csv``
    leaves out the ``cutout`` column (16 384 numbers a row); VOTable keeps every column.
    FITS and Parquet are binary files: use :func:`write_candidates`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Candidates, as :func:`read_candidates` returns them.
    fmt : {"table", "csv", "votable"}
        Output format.
    units : dict of str to str, optional
        Astropy unit string per column (:func:`column_units` of the catalogue's schema),
        shown by ``table`` and written into VOTable; CSV has no units.

    Returns
    -------
    str or bytes
        Text for ``table`` (ending in a newline) and ``csv``; VOTable XML as bytes.

    Raises
    ------
    BadInputError
        ``fmt`` is unknown, or is ``fits`` / ``parquet`` (they need a file).
    """
    _check_format(fmt)
    if fmt in ("fits", "parquet"):
        raise BadInputError("format", f"{fmt} output needs a file: use write_candidates(df, {fmt!r}, out) (CLI: --out)")
    units = units or {}
    if fmt == "csv":
        return frame.drop(columns=[CUTOUT_COLUMN], errors="ignore").to_csv(index=False)
    if fmt == "table":
        shown = [name for name in TABLE_COLUMNS if name in frame.columns]
        table = to_astropy(frame[shown], units=units)
        for name, display in TABLE_DISPLAY_FORMATS.items():
            if name in table.colnames:
                table[name].info.format = display
        return "\n".join(table.pformat(max_lines=-1, max_width=-1, show_unit=True)) + "\n"
    buffer = io.BytesIO()
    to_astropy(frame, units=units).write(buffer, format="votable")
    return buffer.getvalue()


def write_candidates(
    frame: pd.DataFrame, fmt: str, out: paths.PathLike, *, units: dict[str, str] | None = None, overwrite: bool = False
) -> Path:
    """Write candidates to a local file in any of :data:`QUERY_FORMATS` (refusing to overwrite by default).

    Parameters
    ----------
    frame : pandas.DataFrame
        Candidates, as :func:`read_candidates` returns them.
    fmt : {"table", "csv", "votable", "fits", "parquet"}
        File format; the text formats are written as :func:`format_candidates` renders them.
    out : path-like
        Local file to write.
    units : dict of str to str, optional
        Astropy unit string per column, written into Parquet field metadata, FITS and
        VOTable.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    BadInputError
        Unknown ``fmt``, ``out`` exists and ``overwrite`` is False, or ``out`` cannot be
        written (no such directory, no permission, disk full); nothing half-written is left.
    """
    _check_format(fmt)
    out = Path(out)
    if out.exists() and not overwrite:
        raise BadInputError(str(out), "file exists; choose another --out or pass overwrite=True")
    if out.is_dir():
        raise BadInputError(str(out), "is a directory; give --out a file name")
    if not out.parent.is_dir():
        raise BadInputError(str(out), f"cannot be written: directory {out.parent} does not exist; create it or "
                            "choose another --out")
    units = units or {}
    existed = out.exists()
    try:
        if fmt == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            fields = [f.with_metadata({"unit": units[f.name]}) if f.name in units else f for f in table.schema]
            pq.write_table(table.cast(pa.schema(fields, metadata=table.schema.metadata)), out)
        elif fmt == "fits":
            to_astropy(frame, units=units).write(out, format="fits", overwrite=overwrite)
        else:
            payload = format_candidates(frame, fmt, units=units)
            out.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
    except OSError as exc:  # permissions, a full disk, a read-only file system
        if not existed:
            out.unlink(missing_ok=True)  # no half-written file left behind
        raise BadInputError(str(out), f"cannot be written ({exc.strerror or exc}); choose a writable --out") from exc
    return out


def query_command(
    path: paths.PathLike,
    *,
    min_score: float | None = None,
    cone: Cone | None = None,
    near: str | None = None,
    matched_to: str | None = None,
    flags: str | None = None,
    fmt: str = "table",
    out: paths.PathLike | None = None,
) -> str | None:
    """``halo-survey query``: filter, sort by score (best first), then print or write.

    Returns the rendered text when ``out`` is None (FITS and Parquet need ``out``),
    otherwise writes ``out`` and returns None.

    Parameters
    ----------
    path : str, Path or UPath
        Candidate catalogue root (the CLI passes ``candidates_root`` of its argument).
    min_score, cone, near, matched_to, flags : optional
        Filters, as in :func:`read_candidates`; ``cone`` is (ra_deg, dec_deg, radius_deg)
        in ICRS degrees.
    fmt : str
        One of :data:`QUERY_FORMATS`; ``fits`` and ``parquet`` need ``out``.
    out : path-like, optional
        Local file to write instead of returning text; an existing file is refused.

    Returns
    -------
    str or None
        The selected rows, best score first, rendered in ``fmt`` (VOTable decoded to str);
        None when ``out`` was written.

    Raises
    ------
    BadInputError
        Unknown format, a binary format without ``out``, an existing ``out``, or a bad
        filter value.
    CatalogError
        ``path`` holds no finished catalogue.
    """
    _check_format(fmt)
    if out is None and fmt not in TEXT_FORMATS:
        raise BadInputError("format", f"{fmt} output needs a file: pass --out PATH")
    frame = read_candidates(path, min_score=min_score, cone=cone, near=near, matched_to=matched_to, flags=flags)
    frame = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    units = column_units(read_schema(path))
    if out is not None:
        write_candidates(frame, fmt, out, units=units)
        return None
    rendered = format_candidates(frame, fmt, units=units)
    return rendered.decode() if isinstance(rendered, bytes) else rendered
