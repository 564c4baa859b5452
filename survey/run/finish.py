"""Finishing a run: merge the detections of all tiles, cross-match the candidates, write the candidate catalogue.

The candidate catalogue is rebuilt from the work catalogue every time (it is small), so a
resumed run ends with exactly the rows of an uninterrupted one. Non-maximum suppression
runs over every tile's detections at once (``merged_peaks``), so a halo seen by windows of
two tiles becomes one candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table
from upath import UPath

from survey.catalogs.load import load_catalog
from survey.exceptions import HaloSurveyError
from survey.output import paths
from survey.output.store import CatalogWriter
from survey.run.arguments import SurveyArguments
from survey.run.candidates import match_columns, merge_detections, with_merge_and_matches
from survey.run.resume_plan import Outputs

logger = logging.getLogger(__name__)


def load_match_catalogs(names: Sequence[str], *, online: bool) -> dict[str, Table]:
    """The cluster catalogues to cross-match with; a missing one is skipped with a warning, not fatal."""
    loaded = {}
    for name in names:
        try:
            loaded[name] = load_catalog(name, online=online)
        except HaloSurveyError as exc:
            logger.warning("no %s cross-match: %s (use --online, or set HALO_DATA_DIR)", name, exc)
    return loaded


def read_detections(root: paths.PathLike, tiles: Iterable[int], *, order: int, columns: Sequence[str]) -> pa.Table:
    """Some columns of the work catalogue's rows in ``tiles`` (tiles without a file have no rows).

    Parameters
    ----------
    root : str, Path or UPath
        Root of the work (detections) catalogue.
    tiles : iterable of int
        NESTED tile indices at ``order``; read in ascending order.
    order : int
        HEALPix order of the catalogue's tiles.
    columns : sequence of str
        Columns to read.

    Returns
    -------
    pyarrow.Table
        The rows of every tile that has a file; when none has, an empty table whose
        columns are int64 (``score``: float32).
    """
    parts = []
    for tile in sorted(tiles):
        path = paths.tile_file(root, order=order, tile=tile)
        if path.exists():
            parts.append(pq.read_table(path.path, filesystem=path.fs, columns=list(columns)))
    if not parts:
        return pa.table({name: pa.array([], type=pa.int64() if name != "score" else pa.float32()) for name in columns})
    return pa.concat_tables(parts)


def merged_peaks(args: SurveyArguments, root: UPath, tiles: set[int]) -> dict[int, int]:
    """``{window_ipix: n_windows}`` of the candidates: NMS over every detection of the run at once.

    Parameters
    ----------
    args : SurveyArguments
        The run; its tile and window orders are used.
    root : UPath
        Root of the work (detections) catalogue.
    tiles : set of int
        Finished tiles whose detections are merged.

    Returns
    -------
    dict of int to int
        For each candidate's peak window (NESTED index at the window order), how many
        windows its group merged.
    """
    found = read_detections(root, tiles, order=args.tile_order, columns=["window_ipix", "score"])
    ipix = found.column("window_ipix").to_numpy()
    peaks, sizes = merge_detections(ipix, found.column("score").to_numpy(), order=args.window_order)
    return dict(zip(ipix[peaks].tolist(), sizes.tolist()))


def _read_tile(root: UPath, tile: int, order: int) -> pa.Table | None:
    path = paths.tile_file(root, order=order, tile=tile)
    return pq.read_table(path.path, filesystem=path.fs) if path.exists() else None


def final_rows(rows: pa.Table, *, args: SurveyArguments, peaks: Mapping[int, int] | None, catalogs) -> pa.Table:
    """A tile's candidate rows: its NMS peaks (scan) or all its targets, with cross-matches.

    Parameters
    ----------
    rows : pyarrow.Table
        The tile's rows from the work catalogue (candidate schema).
    args : SurveyArguments
        The run; ``match_radius_arcmin`` is used.
    peaks : mapping of int to int, optional
        ``merged_peaks`` of a scan: rows whose ``window_ipix`` is not a key are dropped and
        the others get its value as ``n_windows``; None (targets) keeps every row with
        ``n_windows`` 1.
    catalogs : mapping of str to astropy.table.Table
        Loaded cluster catalogues to cross-match with (``load_match_catalogs``).

    Returns
    -------
    pyarrow.Table
        The tile's candidate rows in the candidate schema.
    """
    ipix = rows.column("window_ipix").to_numpy()
    if peaks is not None:
        keep = np.array([p in peaks for p in ipix.tolist()], bool)
        rows, ipix = rows.filter(pa.array(keep)), ipix[keep]
    n_windows = [peaks[p] for p in ipix.tolist()] if peaks is not None else np.ones(rows.num_rows)
    ra, dec = rows.column("ra").to_numpy(), rows.column("dec").to_numpy()
    matches = match_columns(ra, dec, catalogs, radius_arcmin=args.match_radius_arcmin)
    return with_merge_and_matches(rows, n_windows=n_windows, matches=matches)


@dataclass(frozen=True, eq=False)
class FinishResult:
    """What the finish stage wrote: candidate rows, their positions, and whether the run is complete."""

    candidates: int
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    complete: bool


def finish_outputs(
    args: SurveyArguments, outputs: Outputs, *, provenance: Mapping[str, object], catalogs, complete: bool
) -> FinishResult:
    """Merge, cross-match and write the candidate catalogue from every finished tile.

    When every planned tile is done (``complete``) the scores catalogue is finished too;
    otherwise it stays open, so ``--resume`` can complete it. Removing the work catalogue
    of a complete run is the resume plan's job (``ResumePlan.clean_up``).

    Parameters
    ----------
    args : SurveyArguments
        The run: mode (scan merges by NMS, targets keeps every row), orders, match radius
        and whether cut-outs are stored.
    outputs : Outputs
        The run's open catalogues; the candidates go to ``<root>/candidates``, rewritten
        from the work catalogue each time.
    provenance : mapping
        What the candidate catalogue records (``run_provenance``).
    catalogs : mapping of str to astropy.table.Table
        Loaded cluster catalogues to cross-match with.
    complete : bool
        Every planned tile is done and none failed: also finish the scores catalogue.

    Returns
    -------
    FinishResult
        Candidate rows written, their positions (ICRS degrees) and ``complete``.
    """
    done = outputs.work.done_tiles()
    peaks = merged_peaks(args, outputs.work.root, done) if args.mode == "scan" else None
    writer = CatalogWriter(paths.catalog_dir(outputs.root, kind="candidates"), order=args.tile_order,
                           provenance=provenance, overwrite=True, with_cutout=args.store_cutouts)
    ra, dec, total = [], [], 0
    for tile in sorted(done):
        rows = _read_tile(outputs.work.root, tile, args.tile_order)
        table = final_rows(rows, args=args, peaks=peaks, catalogs=catalogs) if rows is not None else None
        total += writer.write_tile(tile, table if table is not None else writer.schema.empty_table())
        if table is not None:
            ra.append(table.column("ra").to_numpy())
            dec.append(table.column("dec").to_numpy())
    writer.finish(expected_rows=total)
    if complete and outputs.scores is not None:
        outputs.scores.finish()
    return FinishResult(total, np.concatenate(ra) if ra else np.zeros(0), np.concatenate(dec) if dec else np.zeros(0), complete)
