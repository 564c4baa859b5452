"""Reassembling tiles from the batches Ray Data streams back (survey.run.tiles)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from survey.exceptions import HaloSurveyError
from survey.run.tiles import TileAssembler, TileSummary, is_summary


def test_the_assembler_rebuilds_tiles_from_any_batches():
    rows = {"tile": [7] * 5 + [9] * 3, "tile_rows": [5] * 5 + [3] * 3, "x": list(range(8))}
    table = pa.table(rows).take(pa.array([5, 0, 6, 1, 7, 2, 3, 4]))
    assembler = TileAssembler()
    done = [assembler.add(table.slice(i, 3)) for i in range(0, 8, 3)]
    assert [[t for t, _ in d] for d in done] == [[], [9], [7]]
    assert sorted(done[2][0][1].column("x").to_pylist()) == [0, 1, 2, 3, 4]
    with pytest.raises(HaloSurveyError, match="tile 9: received 4 rows, but it announced 3"):
        TileAssembler().add(pa.table({"tile": [9] * 4, "tile_rows": [3] * 4}))


def test_a_tile_summary_travels_as_one_row_and_comes_back_the_same():
    summary = TileSummary(tile=41, windows=1024, written=3, error="", providers=("CPUExecutionProvider",),
                          node="10.0.0.7", seconds=0.82)
    table = summary.to_table()
    assert table.num_rows == 1 and table.column("tile_rows").to_pylist() == [1]  # complete on arrival
    assert is_summary(table) and not is_summary(pa.table({"tile": [41], "tile_rows": [1]}))
    assert TileSummary.from_table(table) == summary
    [(tile, rows)] = TileAssembler().add(table)
    assert tile == 41 and TileSummary.from_table(rows) == summary
