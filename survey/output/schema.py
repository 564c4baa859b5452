"""Column schemas of the candidate and window-score catalogues, with units.

Each column is a pyarrow field whose metadata carries ``unit`` (an astropy unit string;
empty for dimensionless) and ``description``; the query side turns them into VOTable
and FITS units, so the units live in exactly one place. ``_healpix_29`` comes first and
every file is sorted by it, as hats-import does, so that lsdb can open the catalogue
without any conversion.

The pipeline builds its rows to :func:`candidate_schema`; :func:`conform` checks a
table against a schema and names the tile and the column at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
from hats.pixel_math.spatial_index import (
    SPATIAL_INDEX_COLUMN,
    SPATIAL_INDEX_ORDER,
    compute_spatial_index,
)

from survey.exceptions import CatalogError
from survey.sky import healpix
from survey.sky.bands import BAND_NAMES, BANDS, CUTOUT_SIZE, band_column

__all__ = [
    "CATALOGS",
    "CUTOUT_COLUMN",
    "CUTOUT_LENGTH",
    "FLAG_NAMES",
    "SPATIAL_INDEX_COLUMN",
    "SPATIAL_INDEX_ORDER",
    "candidate_schema",
    "column_units",
    "conform",
    "empty_table",
    "flags_column",
    "schema_for",
    "score_schema",
    "spatial_index",
    "synthetic_table",
    "tile_of",
]

CATALOGS: tuple[str, ...] = ("psz2", "mgcls", "mcxc", "cosmos")
"""Cluster catalogues each candidate is cross-matched with; each gives three columns."""

FLAG_NAMES: tuple[str, ...] = ("truncated", "noise_high", "edge", "bad_pixels")
"""Quality flags; each has a bool column ``flag_<name>`` and may appear in ``flags``."""

FLAGS_OK = "ok"
CUTOUT_COLUMN = "cutout"
CUTOUT_LENGTH = CUTOUT_SIZE * CUTOUT_SIZE * len(BANDS)
SCHEMA_KIND_KEY = b"halo_survey.kind"


def _field(name: str, dtype: pa.DataType, unit: str, description: str, *, nullable: bool = True) -> pa.Field:
    return pa.field(name, dtype, nullable=nullable, metadata={"unit": unit, "description": description})


def _position_fields() -> list[pa.Field]:
    return [
        _field(
            SPATIAL_INDEX_COLUMN,
            pa.int64(),
            "",
            "HEALPix NESTED index at order 29 of this row's own (ra, dec); the HATS spatial index",
            nullable=False,
        ),
        _field("ra", pa.float64(), "deg", "Right ascension (ICRS)", nullable=False),
        _field("dec", pa.float64(), "deg", "Declination (ICRS)", nullable=False),
    ]


def _band_fields() -> list[pa.Field]:
    noise = [
        _field(band_column("noise", b.name), pa.float32(), "Jy/beam", f"Noise sigma of the {b.name} MHz image")
        for b in BANDS
    ]
    peak = [
        _field(band_column("peak", b.name), pa.float32(), "Jy/beam", f"Peak brightness in the {b.name} MHz cut-out")
        for b in BANDS
    ]
    return noise + peak


def _quality_fields() -> list[pa.Field]:
    fields = [
        _field("outside_fraction", pa.float32(), "", "Fraction of the cut-out outside the image"),
        _field("zero_fraction", pa.float32(), "", "Fraction of the cut-out in zero-filled (no data) regions"),
    ]
    fields += [_field(f"flag_{n}", pa.bool_(), "", f"Quality flag: {n.replace('_', ' ')}") for n in FLAG_NAMES]
    fields.append(_field("flags", pa.string(), "", "'ok' or the comma-joined names of the raised flags"))
    return fields


def _match_fields() -> list[pa.Field]:
    fields = []
    for cat in CATALOGS:
        fields += [
            _field(f"{cat}_name", pa.string(), "", f"Nearest {cat.upper()} cluster within the match radius, or null"),
            _field(f"{cat}_sep_arcmin", pa.float32(), "arcmin", f"Separation to that {cat.upper()} cluster"),
            _field(f"{cat}_z", pa.float32(), "", f"Redshift of that {cat.upper()} cluster"),
        ]
    return fields


def candidate_schema(*, with_cutout: bool = False) -> pa.Schema:
    """Schema of the candidate catalogue (one row per NMS-merged candidate or per target).

    Parameters
    ----------
    with_cutout : bool
        Append ``cutout``: the clipped (64, 64, 4) stack of ``survey.model.preprocess.stack_cutouts``
        (bands in ``BANDS`` order), flattened in C order, for the plot gallery. A catalogue
        either has it in every file or in none, so this is fixed per writer.
    """
    fields = _position_fields() + [
        _field("window_order", pa.int8(), "", "HEALPix order of the scanning windows"),
        _field("window_ipix", pa.int64(), "", "NESTED index of the window at window_order"),
        _field("tile_order", pa.int8(), "", "HEALPix order of the processing tiles"),
        _field("tile", pa.int64(), "", "NESTED index of the processing tile at tile_order"),
        _field("score", pa.float32(), "", "Classifier halo probability", nullable=False),
        _field("n_windows", pa.int16(), "", "Number of windows merged into this candidate by NMS"),
    ]
    fields += _band_fields() + _quality_fields() + _match_fields()
    fields += [
        _field("target_name", pa.string(), "", "Name of the requested target (null in blind scans)"),
        _field("target_catalog", pa.string(), "", "Catalogue the target came from (null in blind scans)"),
        _field("run_id", pa.string(), "", "Identifier of the run that produced this row", nullable=False),
    ]
    if with_cutout:
        fields.append(
            _field(
                CUTOUT_COLUMN,
                pa.list_(pa.float32(), CUTOUT_LENGTH),
                "Jy/beam",
                f"Clipped cut-out stack, shape ({CUTOUT_SIZE}, {CUTOUT_SIZE}, {len(BANDS)}) in C order, "
                f"bands {', '.join(BAND_NAMES)}",
            )
        )
    return pa.schema(fields, metadata={SCHEMA_KIND_KEY: b"candidates"})


def score_schema() -> pa.Schema:
    """Schema of the window-score catalogue (``--all-scores``: one row per scanned window)."""
    fields = _position_fields() + [
        _field("window_ipix", pa.int64(), "", "NESTED index of the window at the run's window order"),
        _field("tile", pa.int64(), "", "NESTED index of the processing tile at the run's tile order"),
        _field("score", pa.float32(), "", "Classifier halo probability", nullable=False),
        _field("zero_fraction", pa.float32(), "", "Fraction of the cut-out in zero-filled (no data) regions"),
        _field("run_id", pa.string(), "", "Identifier of the run that produced this row", nullable=False),
    ]
    return pa.schema(fields, metadata={SCHEMA_KIND_KEY: b"scores"})


def schema_for(kind: str, *, with_cutout: bool = False) -> pa.Schema:
    """The schema of a catalogue kind: ``"candidates"`` or ``"scores"``."""
    if kind == "candidates":
        return candidate_schema(with_cutout=with_cutout)
    if kind == "scores":
        if with_cutout:
            raise ValueError("the window-score catalogue has no cutout column; use with_cutout=False")
        return score_schema()
    raise ValueError(f"unknown catalogue kind {kind!r}; expected 'candidates' or 'scores'")


def empty_table(schema: pa.Schema) -> pa.Table:
    """A zero-row table of ``schema`` (what an empty tile contributes)."""
    return schema.empty_table()


def column_units(schema: pa.Schema) -> dict[str, str]:
    """``{column: unit}`` for the columns of ``schema`` that have a unit."""
    units = {}
    for field in schema:
        unit = (field.metadata or {}).get(b"unit", b"").decode()
        if unit:
            units[field.name] = unit
    return units


def spatial_index(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Order-29 NESTED HEALPix index of each position (the ``_healpix_29`` column).

    Uses hats' own function, so the index (and so the partition a row belongs to) is
    computed exactly as hats and lsdb compute it.
    """
    return np.asarray(compute_spatial_index(np.asarray(ra_deg), np.asarray(dec_deg)), dtype=np.int64)


def tile_of(index: np.ndarray, *, order: int) -> np.ndarray:
    """NESTED pixel at ``order`` containing each ``_healpix_29`` value (a bit shift).

    >>> int(tile_of(np.array([3 << 48]), order=5)[0])
    3
    """
    if not 0 <= order <= SPATIAL_INDEX_ORDER:
        raise ValueError(f"order must be within 0..{SPATIAL_INDEX_ORDER}, got {order}")
    return np.asarray(index, dtype=np.int64) >> (2 * (SPATIAL_INDEX_ORDER - order))


def flags_column(flags: Mapping[str, Sequence[bool]]) -> list[str]:
    """The ``flags`` strings from the per-flag booleans: ``"ok"`` or e.g. ``"truncated,edge"``.

    >>> flags_column({"truncated": [False, True], "noise_high": [False, False], "edge": [False, True],
    ...               "bad_pixels": [False, False]})
    ['ok', 'truncated,edge']
    """
    unknown = set(flags) - set(FLAG_NAMES)
    if unknown:
        raise ValueError(f"unknown flag(s) {sorted(unknown)}; expected {', '.join(FLAG_NAMES)}")
    columns = {name: np.asarray(flags.get(name, []), dtype=bool) for name in FLAG_NAMES}
    n_rows = max(len(values) for values in columns.values())
    out = []
    for row in range(n_rows):
        raised = [name for name in FLAG_NAMES if len(columns[name]) and columns[name][row]]
        out.append(",".join(raised) if raised else FLAGS_OK)
    return out


def _where(tile: int | None) -> str:
    return "table" if tile is None else f"tile {tile}"


def _conform_column(column: pa.ChunkedArray, field: pa.Field, where: str) -> pa.ChunkedArray:
    """``column`` cast to ``field``'s type, or a CatalogError naming the column."""
    if not field.nullable and column.null_count:
        raise CatalogError(f"{where}: column {field.name!r} has {column.null_count} null value(s); it may not be null")
    if column.type == field.type:
        return column
    if not _same_kind(column.type, field.type):
        raise CatalogError(f"{where}: column {field.name!r} has type {column.type}, expected {field.type}")
    try:
        return column.cast(field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CatalogError(
            f"{where}: column {field.name!r} has type {column.type}, expected {field.type} "
            f"and it cannot be cast safely ({exc})"
        ) from None


def _type_family(dtype: pa.DataType) -> str:
    """A coarse family of an arrow type: casts stay within a family (or go int -> float)."""
    t = pa.types
    families = (
        ("null", t.is_null),
        ("bool", t.is_boolean),
        ("int", t.is_integer),
        ("float", t.is_floating),
        ("text", lambda d: t.is_string(d) or t.is_large_string(d)),
        ("list", lambda d: t.is_list(d) or t.is_large_list(d) or t.is_fixed_size_list(d)),
    )
    return next((name for name, test in families if test(dtype)), str(dtype))


def _same_kind(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether a cast keeps the meaning: numbers to numbers, text to text, lists to lists.

    pyarrow would also parse the string "5" into an integer; a schema check must not.
    An all-null column (pyarrow type ``null``, e.g. no cluster matched in a whole tile)
    casts to anything.
    """
    src, dst = _type_family(source), _type_family(target)
    return src in ("null", dst) or (src, dst) == ("int", "float")


def conform(table: pa.Table, schema: pa.Schema, *, tile: int | None = None) -> pa.Table:
    """Check ``table`` against ``schema`` and return it in the schema's column order and types.

    Safe casts (int32 to int64, a float64 score to float32, large_string to string) are
    applied; a missing or extra column, a null in a non-null column, or a cast that would
    lose integer values raises.

    Parameters
    ----------
    table : pyarrow.Table
        Rows to check, e.g. one tile's candidates.
    schema : pyarrow.Schema
        Target schema (:func:`schema_for`); its field order, types and units are kept.
    tile : int, optional
        HEALPix NESTED index of the tile the rows belong to, only for messages; None says
        ``table``.

    Returns
    -------
    pyarrow.Table
        ``table`` with ``schema``'s columns, order and types (and its field metadata).

    Raises
    ------
    CatalogError
        Naming ``tile`` and the column at fault.
    """
    where = _where(tile)
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise CatalogError(f"{where}: missing column(s) {missing}; build rows with survey.output.schema")
    extra = [name for name in table.column_names if name not in schema.names]
    if extra:
        raise CatalogError(f"{where}: unexpected column(s) {extra}; the schema has {len(schema)} columns")
    arrays = [_conform_column(table.column(f.name), f, where) for f in schema]
    _check_flags(table, where)
    return pa.Table.from_arrays(arrays, schema=schema)


def _check_flags(table: pa.Table, where: str) -> None:
    """The ``flags`` string must agree with the ``flag_*`` booleans (when the table has them)."""
    if "flags" not in table.column_names or table.num_rows == 0:
        return
    booleans = {name: table.column(f"flag_{name}").to_numpy(zero_copy_only=False) for name in FLAG_NAMES}
    expected = flags_column({name: np.asarray(v, dtype=bool) for name, v in booleans.items()})
    actual = table.column("flags").to_pylist()
    for row, (want, got) in enumerate(zip(expected, actual)):
        if want != got:
            raise CatalogError(
                f"{where}: row {row} column 'flags' is {got!r} but the flag_* columns say {want!r}; "
                "fill it with survey.output.schema.flags_column"
            )


def synthetic_table(
    *,
    order: int,
    tile: int,
    n_rows: int,
    seed: int | None = None,
    kind: str = "candidates",
    window_order: int | None = None,
    run_id: str = "synthetic",
    with_cutout: bool = False,
) -> pa.Table:
    """Rows of a valid table for one tile, with positions at window centres inside the tile.

    For tests and examples: positions are HEALPix pixel centres at ``window_order``
    (default ``order + 3``) drawn without replacement from the children of ``tile``, so
    every row falls inside its tile; other columns are random but consistent (``flags``
    agrees with ``flag_*``; a matched catalogue has a name, a separation and a redshift).

    Parameters
    ----------
    order : int
        HEALPix NESTED order of the tiles.
    tile : int
        NESTED index of the tile at ``order``.
    n_rows : int
        Rows to make, at most ``4 ** (window_order - order)``.
    seed : int, optional
        Seed of the random draws; None draws fresh ones.
    kind : {"candidates", "scores"}
        Which catalogue's schema to follow.
    window_order : int, optional
        NESTED order of the window centres; default ``order + 3``.
    run_id : str
        Value of the ``run_id`` column.
    with_cutout : bool
        Add a random ``cutout`` column (candidates only).

    Returns
    -------
    pyarrow.Table
        ``n_rows`` rows conformed to ``schema_for(kind, with_cutout=with_cutout)``.

    Raises
    ------
    ValueError
        ``n_rows`` exceeds the windows in a tile, ``kind`` is unknown, or a cut-out was
        asked of the scores schema.
    """
    rng = np.random.default_rng(seed)
    window_order = order + 3 if window_order is None else window_order
    children = 4 ** (window_order - order)
    if n_rows > children:
        raise ValueError(f"at most {children} windows fit in one tile at window order {window_order}")
    window_ipix = tile * children + rng.choice(children, size=n_rows, replace=False)
    ra, dec = healpix.pix2ang(window_order, window_ipix)
    columns: dict[str, object] = {
        SPATIAL_INDEX_COLUMN: spatial_index(ra, dec),
        "ra": ra,
        "dec": dec,
        "window_ipix": window_ipix,
        "tile": np.full(n_rows, tile),
        "score": rng.uniform(0.0, 1.0, n_rows),
        "zero_fraction": rng.uniform(0.0, 0.2, n_rows),
        "run_id": [run_id] * n_rows,
    }
    if kind == "candidates":
        columns |= _synthetic_candidate_columns(rng, n_rows, order=order, window_order=window_order)
    schema = schema_for(kind, with_cutout=with_cutout)
    if with_cutout:
        columns[CUTOUT_COLUMN] = list(rng.normal(0, 0.01, (n_rows, CUTOUT_LENGTH)).astype(np.float32))
    return conform(pa.table({name: columns[name] for name in schema.names}), schema, tile=tile)


def _synthetic_candidate_columns(rng: np.random.Generator, n_rows: int, *, order: int, window_order: int) -> dict:
    flags = {name: rng.uniform(size=n_rows) < 0.2 for name in FLAG_NAMES}
    columns: dict[str, object] = {
        "window_order": np.full(n_rows, window_order),
        "tile_order": np.full(n_rows, order),
        "n_windows": rng.integers(1, 5, n_rows),
        "outside_fraction": rng.uniform(0.0, 0.1, n_rows),
        **{f"flag_{name}": values for name, values in flags.items()},
        "flags": flags_column(flags),
        "target_name": [None] * n_rows,
        "target_catalog": [None] * n_rows,
    }
    for band in BAND_NAMES:
        columns[band_column("noise", band)] = rng.uniform(0.01, 0.05, n_rows)
        columns[band_column("peak", band)] = rng.uniform(0.05, 1.0, n_rows)
    for cat in CATALOGS:
        matched = rng.uniform(size=n_rows) < 0.3
        ids = rng.integers(0, 10**6, n_rows)
        columns[f"{cat}_name"] = [f"{cat.upper()} J{i:06d}" if m else None for i, m in zip(ids, matched)]
        columns[f"{cat}_sep_arcmin"] = pa.array(rng.uniform(0, 5, n_rows), mask=~matched)
        columns[f"{cat}_z"] = pa.array(rng.uniform(0.02, 0.6, n_rows), mask=~matched)
    return columns
