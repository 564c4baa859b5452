"""From scored windows to candidates: threshold, merging across windows and tiles, flags, matches.

Pure logic on numpy arrays (and the pyarrow tables the catalogue writer takes); no I/O.

Merging (non-maximum suppression). A halo scores high in the windows within a few
arcminutes of its centre, and windows are 3.4' apart at the default order 10, so one
source can fire a patch of neighbouring windows. Detections that are HEALPix neighbours
(``survey.sky.tiling.window_neighbours``) are linked, each connected group becomes one
candidate at its highest-scoring window, and ``n_windows`` says how many windows it merged.
The groups are formed over *all* detections of a run at once, after every tile is scored,
so a patch that straddles a tile boundary merges exactly as one inside a tile would; the
per-tile stage keeps only windows at or above the threshold, which are few, so this final
pass costs little. (The alternative, scoring a one-window margin around every tile, would
re-score about an eighth more windows at orders 5/10 and still cut patches wider than the margin.)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from astropy.table import Table
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from survey.catalogs.crossmatch import nearest_clusters
from survey.exceptions import CatalogError
from survey.model.badpixels import INF_PIXELS_COLUMN
from survey.model.modelcard import ModelCard
from survey.output.schema import (
    CATALOGS,
    CUTOUT_COLUMN,
    FLAG_NAMES,
    SPATIAL_INDEX_COLUMN,
    band_column,
    candidate_schema,
    conform,
    flags_column,
    score_schema,
    spatial_index,
)
from survey.sky.bands import BANDS
from survey.sky.tiling import window_neighbours

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]

TRUNCATED_MAX_FRACTION = 0.05
"""A cut-out with more than 5 % of its pixels outside the image or zero-filled (no data) in
any band is flagged ``truncated``: the classifiers never saw such holes in training."""

NOISE_RANGE_METRIC = "training_noise_jy_per_beam"
"""Model-card ``metrics`` key holding ``{band: [min, max]}`` noise sigma of the training images."""

DEFAULT_NOISE_FACTOR = 3.0
"""Without a training noise range in the card, ``noise_high`` means noise above this many
times the nominal GLEAM rms of the band (see ``default_noise_max_jy``)."""

NOMINAL_RMS_JY_AT_200MHZ = 0.010
"""GLEAM rms at 200 MHz, about 10 mJy/beam (data README, "GLEAM survey facts")."""


# --------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------


def default_noise_max_jy() -> dict[str, float]:
    """Per-band noise above which a window is flagged when the card gives no training range.

    Nominal rms is the README's ~10 mJy/beam at 200 MHz scaled as 1/nu (an assumption, the
    one ``survey.images.mock`` makes; the README says only that noise is higher at low frequency),
    times ``DEFAULT_NOISE_FACTOR``.

    >>> {k: round(v, 3) for k, v in default_noise_max_jy().items()}
    {'72-103': 0.069, '103-134': 0.051, '139-170': 0.039, '170-231': 0.03}
    """
    return {b.name: DEFAULT_NOISE_FACTOR * NOMINAL_RMS_JY_AT_200MHZ * 200.0 / b.centre_mhz for b in BANDS}


def noise_max_jy(card: ModelCard | None) -> dict[str, float]:
    """Upper noise limit per band: the card's training range (``metrics[NOISE_RANGE_METRIC]``) or the default."""
    stored = (card.metrics.get(NOISE_RANGE_METRIC) if card is not None else None) or {}
    limits = default_noise_max_jy()
    for band, value in stored.items():
        if band in limits:
            limits[band] = float(value[1] if isinstance(value, (list, tuple)) else value)
    return limits


def quality_flags(columns: Mapping[str, np.ndarray], *, noise_max: Mapping[str, float]) -> dict[str, BoolArray]:
    """The four quality flags of each window.

    ``truncated``: more than ``TRUNCATED_MAX_FRACTION`` of the cut-out lies outside the image
    or in zero-filled regions; ``noise_high``: some band's noise sigma exceeds ``noise_max``;
    ``edge``: the cut-out reaches past an image edge in some band; ``bad_pixels``: the
    cut-out holds +inf or -inf pixels in some band (``survey.model.badpixels``: corrupt
    values, zero-filled for the model), counted in the ``inf_pixels`` column (rows without
    that column have none).
    """
    # Compared in the columns' own float32, so a fraction stored as exactly the limit is not over it.
    outside = np.asarray(columns["outside_fraction"])
    zero = np.asarray(columns["zero_fraction"])
    noise = np.stack([np.asarray(columns[band_column("noise", b.name)], float) for b in BANDS], axis=1)
    limits = np.array([noise_max[b.name] for b in BANDS])
    with np.errstate(invalid="ignore"):
        noise_high = np.any(noise > limits, axis=1)
    inf = columns.get(INF_PIXELS_COLUMN)
    bad_pixels = np.asarray(inf) > 0 if inf is not None else np.zeros(zero.shape, bool)
    return {"truncated": zero > TRUNCATED_MAX_FRACTION, "noise_high": noise_high, "edge": outside > 0.0,
            "bad_pixels": bad_pixels}


# --------------------------------------------------------------------------------------
# Threshold and merging
# --------------------------------------------------------------------------------------


def detections(score: npt.ArrayLike, *, threshold: float) -> BoolArray:
    """True where a window's halo probability reaches the threshold (``score >= threshold``)."""
    return np.asarray(score, dtype=np.float32) >= np.float32(threshold)


def neighbour_groups(ipix: npt.ArrayLike, *, order: int) -> IntArray:
    """Group label of each window: windows linked through chains of HEALPix neighbours share one.

    ``ipix`` are the detected windows (any order of rows, no duplicates). Labels are 0..k-1.
    """
    ipix = np.asarray(ipix, dtype=np.int64)
    n = ipix.size
    if n == 0:
        return np.zeros(0, np.int64)
    order_of = np.argsort(ipix)
    neighbours = window_neighbours(ipix, order=order)
    position = np.searchsorted(ipix[order_of], neighbours)
    position = np.clip(position, 0, n - 1)
    linked = (neighbours >= 0) & (ipix[order_of][position] == neighbours)
    rows = np.repeat(np.arange(n), neighbours.shape[1])[linked.ravel()]
    cols = order_of[position[linked]]
    graph = coo_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def merge_detections(ipix: npt.ArrayLike, score: npt.ArrayLike, *, order: int) -> tuple[IntArray, IntArray]:
    """Non-maximum suppression over neighbouring windows: one candidate per group, at its peak.

    Parameters
    ----------
    ipix : array of int
        Detected windows (NESTED indices at ``order``), from any number of tiles.
    score : array of float
        Their halo probabilities.
    order : int
        HEALPix NESTED order of the windows (the run's window order), for their neighbours.

    Returns
    -------
    peaks : numpy.ndarray
        Row indices (into ``ipix``) of the candidates, in ascending ``ipix`` order. A tie in
        score goes to the lower ``ipix``, so the result does not depend on row order.
    n_windows : numpy.ndarray
        Windows merged into each candidate (its group's size).
    """
    ipix = np.asarray(ipix, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    labels = neighbour_groups(ipix, order=order)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Sort by group, then best score first, then lowest ipix: the first row of each group is its peak.
    ranked = np.lexsort((ipix, -score, labels))
    first = np.ones(ranked.size, bool)
    first[1:] = labels[ranked][1:] != labels[ranked][:-1]
    peaks = ranked[first]
    sizes = np.bincount(labels)[labels[peaks]]
    keep = np.argsort(ipix[peaks])
    return peaks[keep].astype(np.int64), sizes[keep].astype(np.int64)


# --------------------------------------------------------------------------------------
# Cross-match columns
# --------------------------------------------------------------------------------------


def match_columns(
    ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, catalogs: Mapping[str, Table], *, radius_arcmin: float
) -> dict[str, pa.Array]:
    """``<cat>_name/_sep_arcmin/_z`` for every schema catalogue; null where no cluster (or no catalogue).

    Catalogues missing from ``catalogs`` (not loaded) give all-null columns rather than
    empty strings, so "not matched" and "not searched" both read as null.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Candidate positions, ICRS degrees, scalars or 1-D arrays of one length.
    catalogs : mapping of str to astropy.table.Table
        Loaded cluster catalogues in the common form, keyed by ``CATALOGS`` names; other
        keys add no columns.
    radius_arcmin : float
        Match radius in arcmin.

    Returns
    -------
    dict of str to pyarrow.Array
        ``<cat>_name`` (string) and ``<cat>_sep_arcmin``, ``<cat>_z`` (float32) for each of
        ``CATALOGS``, as long as the positions; null where nothing matched (a match without
        a redshift has a null ``_z``).

    Raises
    ------
    BadInputError
        Positions or radius that ``nearest_clusters`` rejects (only when a catalogue is
        given and there are positions).
    """
    ra = np.atleast_1d(np.asarray(ra_deg, float))
    dec = np.atleast_1d(np.asarray(dec_deg, float))
    found = nearest_clusters(ra, dec, dict(catalogs), radius_arcmin=radius_arcmin) if catalogs and ra.size else {}
    columns: dict[str, pa.Array] = {}
    for cat in CATALOGS:
        names = found.get(f"{cat}_name", np.full(ra.size, "", dtype=object))
        matched = np.asarray(names).astype(str) != ""
        columns[f"{cat}_name"] = pa.array(np.asarray(names).astype(str).tolist(), type=pa.string(), mask=~matched)
        for what in ("sep_arcmin", "z"):
            values = np.asarray(found.get(f"{cat}_{what}", np.full(ra.size, np.nan)), float)
            columns[f"{cat}_{what}"] = pa.array(values, mask=~matched | ~np.isfinite(values), type=pa.float32())
    return columns


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _nullable_strings(values: np.ndarray) -> pa.Array:
    text = np.asarray(values).astype(str)
    return pa.array(text.tolist(), type=pa.string(), mask=text == "")


def candidate_rows(
    windows: pa.Table,
    *,
    run_id: str,
    tile_order: int,
    window_order: int,
    noise_max: Mapping[str, float],
    n_windows: npt.ArrayLike | None = None,
    matches: Mapping[str, pa.Array] | None = None,
    with_cutout: bool = True,
) -> pa.Table:
    """Candidate-schema rows (``survey.output.schema.candidate_schema``) from scored window rows.

    ``windows`` is what the inference stage returns (``survey.run.stages.Predictor``): position,
    window, tile, score, fractions, per-band noise and peak, target name and catalogue
    (empty for a blind scan), and the ``image`` list column holding each kept cut-out.
    Cross-match columns are null unless ``matches`` (``match_columns``) is given.

    Parameters
    ----------
    windows : pyarrow.Table
        Scored window rows, already selected (detections, or a tile's targets).
    run_id : str
        The run's identifier, written into every row.
    tile_order, window_order : int
        HEALPix NESTED orders of the run's tiles and windows.
    noise_max : mapping of str to float
        Per-band noise sigma in Jy/beam above which a row is flagged ``noise_high``
        (``noise_max_jy``).
    n_windows : array_like, optional
        Windows merged into each row; default 1 each (the final stage fills it in).
    matches : mapping of str to pyarrow.Array, optional
        Cross-match columns (``match_columns``); default all null.
    with_cutout : bool
        Write the ``cutout`` column from ``image``.

    Returns
    -------
    pyarrow.Table
        Rows conformed to ``candidate_schema(with_cutout=with_cutout)``, with quality flags.

    Raises
    ------
    CatalogError
        ``with_cutout`` and a row has no cut-out, or the rows do not fit the schema.
    """
    n = windows.num_rows
    ra, dec = _column(windows, "ra"), _column(windows, "dec")
    flags = quality_flags({name: _column(windows, name) for name in _flag_inputs() if name in windows.column_names},
                          noise_max=noise_max)
    columns: dict[str, object] = {
        SPATIAL_INDEX_COLUMN: spatial_index(ra, dec),
        "ra": ra,
        "dec": dec,
        "window_order": np.full(n, window_order, np.int8),
        "window_ipix": _column(windows, "window_ipix"),
        "tile_order": np.full(n, tile_order, np.int8),
        "tile": _column(windows, "tile"),
        "score": _column(windows, "score"),
        "n_windows": np.ones(n, np.int16) if n_windows is None else np.asarray(n_windows, np.int16),
        **{name: _column(windows, name) for name in _band_columns()},
        "outside_fraction": _column(windows, "outside_fraction"),
        "zero_fraction": _column(windows, "zero_fraction"),
        **{f"flag_{name}": flags[name] for name in FLAG_NAMES},
        "flags": flags_column(flags),
        **(dict(matches) if matches is not None else match_columns(ra, dec, {}, radius_arcmin=1.0)),
        "target_name": _nullable_strings(_column(windows, "target_name")),
        "target_catalog": _nullable_strings(_column(windows, "target_catalog")),
        "run_id": [run_id] * n,
    }
    schema = candidate_schema(with_cutout=with_cutout)
    if with_cutout:
        cutouts = windows.column("image")
        if cutouts.null_count:
            raise CatalogError(
                f"{cutouts.null_count} of {n} candidate rows came without their cutout; the inference stage "
                "must keep the cut-out of every row scoring at or above the threshold (Predictor keep_above)"
            )
        columns[CUTOUT_COLUMN] = cutouts
    return conform(pa.table({name: columns[name] for name in schema.names}), schema)


def score_rows(windows: pa.Table, *, run_id: str) -> pa.Table:
    """Window-score rows (``survey.output.schema.score_schema``) for ``--all-scores``."""
    ra, dec = _column(windows, "ra"), _column(windows, "dec")
    columns = {
        SPATIAL_INDEX_COLUMN: spatial_index(ra, dec),
        "ra": ra,
        "dec": dec,
        "window_ipix": _column(windows, "window_ipix"),
        "tile": _column(windows, "tile"),
        "score": _column(windows, "score"),
        "zero_fraction": _column(windows, "zero_fraction"),
        "run_id": [run_id] * windows.num_rows,
    }
    schema = score_schema()
    return conform(pa.table({name: columns[name] for name in schema.names}), schema)


def _band_columns() -> list[str]:
    return [band_column(kind, b.name) for kind in ("noise", "peak") for b in BANDS]


def _flag_inputs() -> list[str]:
    return ["outside_fraction", "zero_fraction", *[band_column("noise", b.name) for b in BANDS], INF_PIXELS_COLUMN]


def with_merge_and_matches(rows: pa.Table, *, n_windows: npt.ArrayLike, matches: Mapping[str, pa.Array]) -> pa.Table:
    """Candidate rows with ``n_windows`` and the cross-match columns filled in (the final stage).

    Parameters
    ----------
    rows : pyarrow.Table
        Candidate-schema rows (``candidate_rows``), e.g. a tile's NMS peaks.
    n_windows : array_like
        Windows merged into each row (int16), aligned with ``rows``.
    matches : mapping of str to pyarrow.Array
        Columns to replace by name (``match_columns``), cast to the schema's types.

    Returns
    -------
    pyarrow.Table
        ``rows`` with those columns replaced, conformed to its own schema.

    Raises
    ------
    CatalogError
        A replaced column does not fit the schema.
    """
    schema = rows.schema
    updates = {"n_windows": pa.array(np.asarray(n_windows, np.int16)), **matches}
    for name, values in updates.items():
        index = schema.get_field_index(name)
        rows = rows.set_column(index, schema.field(index), pa.array(values).cast(schema.field(index).type))
    return conform(rows, schema)
