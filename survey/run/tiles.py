"""A tile's rows on the driver: reassembled from whatever batches Ray Data streams back, then written.

Every row carries ``tile`` and ``tile_rows`` (the rows its tile emits), so completeness is a
count (``TileAssembler``). A complete tile goes to the run's catalogues (``TileSink``): its
window scores (``--all-scores``) and its detections (scan) or target rows, each with a done
marker, so a killed run loses only the tiles in flight.
"""

from __future__ import annotations

from collections.abc import Mapping

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
        complete = []
        for tile in np.unique(tiles):
            mask = tiles == tile
            expected = int(announced[mask][0])
            self._parts.setdefault(int(tile), []).append(table.filter(pa.array(mask)))
            self._counts[int(tile)] = self._counts.get(int(tile), 0) + int(mask.sum())
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


def tile_error(rows: pa.Table) -> str:
    """The error message of a failed tile's rows, or "" when the tile is fine."""
    errors = [e for e in rows.column("error").to_pylist() if e]
    return errors[0] if errors else ""


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

    def write(self, tile: int, rows: pa.Table) -> int:
        """Write ``tile``; returns how many rows went to the work catalogue (detections or targets)."""
        if self.outputs.scores is not None:
            self.outputs.scores.write_tile(tile, score_rows(rows, run_id=self.args.run_id))
        if self.args.mode == "scan":
            rows = rows.filter(pa.array(detections(rows.column("score").to_numpy(), threshold=self.threshold)))
        table = candidate_rows(rows, run_id=self.args.run_id, tile_order=self.args.tile_order,
                               window_order=self.args.window_order, noise_max=self.noise_max,
                               with_cutout=self.args.store_cutouts)
        # The work catalogue's marker is written last: it is what makes the tile "done".
        return self.outputs.work.write_tile(tile, table)
