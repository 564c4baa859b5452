"""A finished tile: written where it was scored, and summarised for the driver in one row.

Every row carries ``tile`` and ``tile_rows`` (the rows its tile emits), so completeness is a
count (``TileAssembler``). A complete tile goes to the run's catalogues (``TileSink``): its
window scores (``--all-scores``) and its detections (scan) or target rows, each with a done
marker, so a killed run loses only the tiles in flight.

Who writes: an inference actor that holds a whole tile (fused stages always; split stages
take one tile per task) writes it itself and sends the driver one ``TileSummary`` row
(``tile_rows`` 1). The driver then handles tiles, not windows: one process's per-window work
would cap the whole cluster's rate whatever the number of nodes (BENCHMARKS.md, "The
driver"). Where the actors cannot write the output, or a split tile's rows arrive in
several blocks, the rows travel to the driver, which reassembles and writes the tile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from survey.exceptions import CatalogError
from survey.run.arguments import SurveyArguments
from survey.run.candidates import candidate_rows, detections, score_rows
from survey.run.resume_plan import Outputs


class TileAssembler:
    """Collects scored rows, whatever batches they arrive in, and hands back each tile once complete.

    Every row carries ``tile`` and ``tile_rows`` (the rows its tile emits), so completeness is
    a count. A tile that delivers more rows than it announced raises CatalogError.
    """

    def __init__(self) -> None:
        self._parts: dict[int, list[pa.Table]] = {}
        self._counts: dict[int, int] = {}

    def add(self, table: pa.Table) -> list[tuple[int, pa.Table]]:
        """Take one batch; return ``(tile, rows)`` for every tile it completed."""
        tiles = table.column("tile").to_numpy()
        announced = table.column("tile_rows").to_numpy()
        stands_for = window_counts(table)
        complete = []
        for tile in np.unique(tiles):
            mask = tiles == tile
            expected = int(announced[mask][0])
            self._parts.setdefault(int(tile), []).append(table.filter(pa.array(mask)))
            self._counts[int(tile)] = self._counts.get(int(tile), 0) + int(stands_for[mask].sum())
            if self._counts[int(tile)] > expected:
                raise CatalogError(f"tile {tile}: received {self._counts[int(tile)]} rows, but it announced {expected}")
            if self._counts[int(tile)] == expected:
                del self._counts[int(tile)]
                complete.append((int(tile), pa.concat_tables(self._parts.pop(int(tile)))))
        return complete

    @property
    def incomplete(self) -> list[int]:
        """Tiles with some but not all rows received."""
        return sorted(self._parts)


STANDS_FOR_COLUMN = "stands_for"
"""How many scored windows a row stands for (``survey.run.stages.keep_detections``): 1, or a tile's dropped windows."""


def window_counts(rows: pa.Table) -> np.ndarray:
    """How many windows each row stands for: its ``STANDS_FOR_COLUMN``, else 1."""
    if STANDS_FOR_COLUMN in rows.column_names:
        return rows.column(STANDS_FOR_COLUMN).to_numpy()
    return np.ones(rows.num_rows, np.int64)


def tile_error(rows: pa.Table) -> str:
    """The error message of a failed tile's rows, or "" when the tile is fine."""
    errors = [e for e in rows.column("error").to_pylist() if e]
    return errors[0] if errors else ""


SUMMARY_COLUMNS = ("tile", "tile_rows", "windows", "written", "error", "provider", "node", "tile_seconds")
"""The one row a tile sends the driver when it was written where it was scored (``TileSummary``)."""


@dataclass(frozen=True)
class TileSummary:
    """What the driver needs of a finished tile: counts, where it ran, whether it failed.

    Attributes
    ----------
    tile : int
        NESTED index at the run's tile order.
    windows : int
        Windows (or targets) scored; 0 for a failed tile.
    written : int
        Rows written to the work catalogue (detections, or targets).
    error : str
        Why the tile failed ("" when it did not); nothing of it was written.
    providers : tuple of str
        ONNX Runtime providers that scored it.
    node : str
        The node whose actor scored it.
    seconds : float
        Read, preprocess and score time of the tile.
    """

    tile: int
    windows: int
    written: int
    error: str
    providers: tuple[str, ...]
    node: str
    seconds: float

    @classmethod
    def of_rows(cls, rows: pa.Table, *, written: int = 0) -> TileSummary:
        """The summary of a tile's scored rows (``written``: what went to the work catalogue)."""
        error = tile_error(rows)
        providers = tuple(sorted(p for p in rows.column("provider").unique().to_pylist() if p))
        windows = 0 if error else int(window_counts(rows).sum())
        return cls(int(rows.column("tile")[0].as_py()), windows, written, error, providers,
                   str(rows.column("node")[0].as_py()), float(rows.column("tile_seconds")[0].as_py()))

    def to_table(self) -> pa.Table:
        """One row in ``SUMMARY_COLUMNS``, what an actor streams back instead of the tile's rows."""
        values = (self.tile, 1, self.windows, self.written, self.error, ",".join(self.providers), self.node,
                  self.seconds)
        return pa.table({name: [value] for name, value in zip(SUMMARY_COLUMNS, values)})

    @classmethod
    def from_table(cls, table: pa.Table) -> TileSummary:
        """Inverse of ``to_table``."""
        row = table.slice(0, 1).to_pylist()[0]
        providers = tuple(p for p in row["provider"].split(",") if p)
        return cls(int(row["tile"]), int(row["windows"]), int(row["written"]), row["error"], providers, row["node"],
                   float(row["tile_seconds"]))


def is_summary(table: pa.Table) -> bool:
    """Whether a tile arrived as a ``TileSummary`` row (written already) rather than its scored rows."""
    return "written" in table.column_names


class TileSink:
    """Writes one finished tile: its window scores (optional) and its detections, each with a done marker.

    Parameters
    ----------
    outputs : Outputs
        The run's open catalogues (work, and scores with ``--all-scores``).
    args : SurveyArguments
        The run: mode, run id, orders, whether cut-outs are stored.
    threshold : float
        Halo probability a scanned window needs to be a detection (``score >= threshold``).
    noise_max : mapping of str to float
        Per-band noise sigma in Jy/beam above which a row is flagged ``noise_high``.
    """

    def __init__(self, outputs: Outputs, *, args: SurveyArguments, threshold: float, noise_max: Mapping[str, float]):
        self.outputs = outputs
        self.args = args
        self.threshold = threshold
        self.noise_max = dict(noise_max)

    def finish(self, rows: pa.Table, *, expected: int | None = None, mark_done: bool = True) -> TileSummary:
        """Write one tile's scored rows unless the tile failed; returns its summary.

        Parameters
        ----------
        rows : pyarrow.Table
            Every scored row of one tile (``Predictor`` output).
        expected : int, optional
            Rows the plan says the tile has; a different count raises before anything is
            written, so a done marker never covers a short tile.
        mark_done : bool
            Write the done markers too. An actor passes False and the driver calls
            ``mark_done`` when the summary reaches it: a tile is done when the driver has
            counted it, so an interrupted run's manifest and markers agree.

        Returns
        -------
        TileSummary
            Its windows, rows written, where it ran; ``error`` set (nothing written) for a failed tile.

        Raises
        ------
        CatalogError
            The tile delivered another number of rows than planned.
        """
        summary = TileSummary.of_rows(rows)
        if summary.error:
            return summary
        if expected is not None and expected >= 0 and summary.windows != expected:
            raise CatalogError(f"tile {summary.tile}: planned {expected} windows but {summary.windows} were scored")
        return replace(summary, written=self.write(summary.tile, rows, mark_done=mark_done))

    def write(self, tile: int, rows: pa.Table, *, mark_done: bool = True) -> int:
        """Write ``tile``'s window scores (``--all-scores``) and its detections (scan) or target rows.

        Parameters
        ----------
        tile : int
            NESTED index at the run's tile order.
        rows : pyarrow.Table
            The tile's scored rows.
        mark_done : bool
            Write the done markers too (see ``finish``).

        Returns
        -------
        int
            Rows that went to the work catalogue (detections or targets).
        """
        if self.outputs.scores is not None:
            self.outputs.scores.write_tile(tile, score_rows(rows, run_id=self.args.run_id), mark_done=mark_done)
        if self.args.mode == "scan":
            rows = rows.filter(pa.array(detections(rows.column("score").to_numpy(), threshold=self.threshold)))
        table = candidate_rows(rows, run_id=self.args.run_id, tile_order=self.args.tile_order,
                               window_order=self.args.window_order, noise_max=self.noise_max,
                               with_cutout=self.args.store_cutouts)
        # The work catalogue's marker is written last: it is what makes the tile "done".
        return self.outputs.work.write_tile(tile, table, mark_done=mark_done)

    def mark_done(self, summary: TileSummary) -> None:
        """Mark a tile an actor wrote (``finish(..., mark_done=False)``) as done, work catalogue last."""
        if self.outputs.scores is not None:
            self.outputs.scores.mark_done(summary.tile, rows=summary.windows)
        self.outputs.work.mark_done(summary.tile, rows=summary.written, seconds=summary.seconds)
