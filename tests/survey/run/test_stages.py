"""The stages on plain dicts, no Ray (survey.run.stages): a tile's rows, failed tiles, Predictor, TileWriter, TileScorer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from survey.exceptions import BadInputError, CatalogError, ModelCardError
from survey.images.mock import MockSky, MockSource
from survey.model.normalisation import Normalisation
from survey.model.preprocess import IMAGE_COLUMN
from survey.run.candidates import default_noise_max_jy
from survey.run.resume_plan import ResumePlan
from survey.run.stages import (
    Predictor,
    TileScorer,
    TileWriter,
    keep_detections,
    preprocess_batch,
    preprocess_parts,
    preprocess_tile,
    whole_tiles,
)
from survey.run.tiles import TileAssembler, TileSink, TileSummary
from survey.sky.tiling import parse_region, windows_in_tile
from tests.survey.model.test_preprocess import assert_same_columns
from tests.survey.run.helpers import LOG_SCALING, FailingSource, OfflineSource, ZeroSource, tile_rows
from tests.survey.survey_helpers import NORMALISATION, expected_score, write_standin


def test_a_batch_of_tiles_gives_each_tiles_rows_in_order_as_a_block_of_its_own():
    options = {"source": MockSource(MockSky(seed=2)), "tile_order": 5, "window_order": 8,
               "region": parse_region("allsky")}
    tiles = [6000, 6001]
    alone = [preprocess_tile({"tile": t, "targets": ""}, **options) for t in tiles]
    one = list(preprocess_batch({"tile": np.array(tiles[:1]), "targets": np.array([""])}, **options))
    two = list(preprocess_batch({"tile": np.array(tiles), "targets": np.array(["", ""])}, **options))
    assert [len(one), len(two)] == [1, 2]  # a block per tile, whole
    for got, expected in zip([*one, *two], [*alone[:1], *alone]):
        assert_same_columns({name: got[name] for name in expected if name != "tile_seconds"},
                            {name: values for name, values in expected.items() if name != "tile_seconds"})
    assert [rows["tile"].tolist() for rows in two] == [[6000] * 64, [6001] * 64]


def test_a_tile_cut_in_parts_gives_the_rows_of_one_cut():
    options = {"source": MockSource(MockSky(seed=2)), "tile_order": 5, "window_order": 8,
               "region": parse_region("allsky"), "normalisation": Normalisation("minmax", -0.05, 2.0)}
    whole = preprocess_tile({"tile": 6000, "targets": ""}, **options)
    parts = list(preprocess_parts({"tile": 6000, "targets": ""}, max_rows=25, **options))
    assert [p["tile"].size for p in parts] == [25, 25, 14]
    assert all((p["tile_rows"] == 64).all() for p in parts)  # every part announces the whole tile
    expected = {name: values for name, values in whole.items() if name != "tile_seconds"}
    assert_same_columns({name: np.concatenate([p[name] for p in parts]) for name in expected}, expected)


def test_a_failed_tile_is_one_part_however_it_is_cut():
    class Unreadable(MockSource):
        def read_field(self, request):
            raise BadInputError(f"{request.key} (/data/x.fits)", "is not a readable FITS file")

    options = {"source": Unreadable(), "tile_order": 5, "window_order": 8, "region": parse_region("allsky")}
    (part,) = preprocess_parts({"tile": 6000, "targets": ""}, max_rows=25, **options)
    assert part["tile_rows"].tolist() == [1] and "tile 5/6000 (/data/x.fits)" in part["error"][0]



def test_a_tile_emits_one_row_per_window_of_the_region(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile)
    windows = windows_in_tile(tile, region=args.region_spec)
    assert rows["window_ipix"].tolist() == windows.ipix.tolist() == list(rows["window_ipix"])
    assert rows[IMAGE_COLUMN].shape == (len(windows), 4, 64, 64)  # band planes, as the Predictor feeds them
    assert set(rows["error"]) == {""} and (rows["tile_rows"] == len(windows)).all()
    # Mock fields carry the cut-out margin: no window reaches past an image edge.
    assert (rows["outside_fraction"] == 0).all()


def test_a_zero_filled_band_fails_the_tile_naming_tile_and_file(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile, ZeroSource(MockSky(seed=0)))
    assert rows["tile"].tolist() == [tile] and rows["tile_rows"].tolist() == [1]
    assert f"tile 5/{tile}" in rows["error"][0] and "zeros.fits" in rows["error"][0] and "103-134" in rows["error"][0]


def test_an_unreachable_service_fails_the_tile_with_its_message(small_plan):
    args, work = small_plan
    tile = int(work.tiles[0])
    rows = tile_rows(args, tile, OfflineSource())
    assert rows["error"][0] == f"SkyView could not be reached for tile 5/{tile} (connection refused)"


def test_an_unreadable_field_fails_the_tile_and_a_bug_stops_the_run(small_plan):
    args, work = small_plan
    tile = int(work.tiles[1])
    rows = tile_rows(args, tile, FailingSource(bad_tile=tile))
    assert f"field {tile}.fits" in rows["error"][0]
    with pytest.raises(RuntimeError, match="simulated crash"):
        tile_rows(args, tile, FailingSource(crash_tile=tile))


def test_predictor_scores_a_plain_batch_and_keeps_only_detections_cutouts(small_plan, model):
    args, work = small_plan
    batch = tile_rows(args, int(work.tiles[2]))
    batch["error"][0] = "tile 5/0: pretend this row failed"
    table = Predictor(model, input_normalisation=NORMALISATION, providers="cpu", keep_above=0.95)(batch)
    expected = expected_score(batch[IMAGE_COLUMN])
    scores = table.column("score").to_numpy()
    np.testing.assert_allclose(scores[1:], expected[1:], atol=1e-5)
    assert scores[0] == 0.0
    kept = ~np.asarray(table.column(IMAGE_COLUMN).is_null())
    assert kept.tolist() == ((scores >= 0.95) & (np.arange(len(scores)) > 0)).tolist()
    assert set(table.column("provider").to_pylist()) == {"CPUExecutionProvider"}
    assert IMAGE_COLUMN in table.column_names and table.num_rows == len(batch["tile"])


def test_a_tile_scorer_gives_the_rows_of_the_two_stages_it_fuses(small_plan, model):
    """Scored in slices smaller than a tile, with a tile that fails among them."""
    args, work = small_plan
    tiles = [int(work.tiles[2]), int(work.tiles[1])]
    source = FailingSource(bad_tile=tiles[1])
    preprocess = {"source": source, "tile_order": args.tile_order, "window_order": args.window_order,
                  "region": args.region_spec, "normalisation": NORMALISATION}
    predictor = {"model_path": model, "input_normalisation": NORMALISATION, "providers": "cpu", "keep_above": 0.95}
    items = {"tile": np.array(tiles), "targets": np.array(["", ""], dtype=object)}
    fused = TileScorer(preprocess=preprocess, predictor=predictor, batch_size=100)(items)
    blocks = list(preprocess_batch(items, **preprocess))
    split = Predictor(**predictor)({name: np.concatenate([rows[name] for rows in blocks]) for name in blocks[0]})
    small = [name for name in fused.column_names if name not in ("tile_seconds", IMAGE_COLUMN)]  # timed apart
    pd.testing.assert_frame_equal(fused.select(small).to_pandas(), split.select(small).to_pandas())
    assert fused.column(IMAGE_COLUMN).to_pylist() == split.column(IMAGE_COLUMN).to_pylist()
    assert fused.column(IMAGE_COLUMN).null_count < fused.num_rows  # some cut-outs kept, and compared
    assert fused.num_rows == len(windows_in_tile(tiles[0], region=args.region_spec)) + 1
    assert f"field {tiles[1]}.fits" in fused.column("error")[-1].as_py()


def test_keep_detections_leaves_detections_failures_and_one_counting_row_per_tile():
    table = pa.table({"tile": [7, 7, 7, 9, 9, 9, 9], "score": pa.array([0.1, 0.97, 0.2, 0.3, 0.0, 0.99, 0.5], pa.float32()),
                      "error": ["", "", "", "", "tile 5/9: bad", "", ""], "x": list(range(7))})
    kept = keep_detections(table, threshold=0.95)
    assert kept.column("x").to_pylist() == [0, 1, 3, 4, 5]  # tile 7: stand-in 0, detection 1; tile 9: stand-in 3, failure 4, detection 5
    assert kept.column("stands_for").to_pylist() == [2, 1, 2, 1, 1]
    assert sum(kept.column("stands_for").to_pylist()) == table.num_rows
    tile_7 = kept.slice(0, 2).append_column("tile_rows", pa.array([3, 3]))  # its 2 rows stand for its 3 windows
    [(tile, rows)] = TileAssembler().add(tile_7)
    assert tile == 7 and rows.num_rows == 2


def test_a_tile_scorer_with_a_sink_writes_its_tiles_and_returns_one_row_each(small_plan, model, tmp_path):
    """The rows go to the catalogue from the actor; the done marker waits for the driver."""
    args, work = small_plan
    args = replace(args, output=tmp_path / "out")
    outputs = ResumePlan.prepare(args, provenance={"run_id": args.run_id}).open(provenance={"run_id": args.run_id})
    sink = TileSink(outputs, args=args, threshold=0.0, noise_max=default_noise_max_jy())  # 0: all are detections
    good, bad = int(work.tiles[2]), int(work.tiles[1])
    preprocess = {"source": FailingSource(bad_tile=bad), "tile_order": args.tile_order,
                  "window_order": args.window_order, "region": args.region_spec, "normalisation": NORMALISATION}
    predictor = {"model_path": model, "input_normalisation": NORMALISATION, "providers": "cpu", "keep_above": 0.0}
    scorer = TileScorer(preprocess=preprocess, predictor=predictor, batch_size=100, sink=sink)
    planned = [work.rows_per_tile[good], work.rows_per_tile[bad]]
    table = scorer({"tile": np.array([good, bad]), "targets": np.array(["", ""], dtype=object),
                    "rows": np.array(planned)})
    written, failed = (TileSummary.from_table(table.slice(i, 1)) for i in range(2))
    assert written.windows == written.written == planned[0] and not written.error
    assert failed.windows == failed.written == 0 and f"field {bad}.fits" in failed.error
    assert outputs.done_tiles() == set()  # not done until the driver counts it
    sink.mark_done(written)
    assert outputs.done_tiles() == {good}
    with pytest.raises(CatalogError, match=f"tile {good}: planned {planned[0] + 1} windows but {planned[0]}"):
        scorer({"tile": np.array([good]), "targets": np.array([""], dtype=object), "rows": np.array([planned[0] + 1])})


def test_whole_tiles_are_told_from_the_rows_of_tiles_a_batch_holds_only_part_of():
    table = pa.table({"tile": [9, 7, 7, 9, 11, 7], "tile_rows": [4, 3, 3, 4, 1, 3], "x": list(range(6))})
    whole, partial = whole_tiles(table)
    assert [t.column("x").to_pylist() for t in whole] == [[1, 2, 5], [4]]  # tile 7, then the failed tile 11
    assert partial.column("x").to_pylist() == [0, 3]  # 2 of tile 9's 4 rows: the driver assembles it
    assert whole_tiles(table.slice(0, 0))[1].num_rows == 0


def test_a_split_stage_writer_writes_the_tiles_it_holds_whole_and_returns_the_rest(small_plan, model, tmp_path):
    """One whole tile is written and summarised (done only once the driver counts it); a part of another goes on."""
    args, work = small_plan
    args = replace(args, output=tmp_path / "out")
    outputs = ResumePlan.prepare(args, provenance={"run_id": args.run_id}).open(provenance={"run_id": args.run_id})
    sink = TileSink(outputs, args=args, threshold=0.5, noise_max=default_noise_max_jy())
    whole, split = (tile_rows(args, int(work.tiles[i])) for i in (2, 3))
    part = {name: values[:10] for name, values in split.items()}
    batch = {name: np.concatenate([whole[name], part[name]]) for name in whole}
    predictor = {"model_path": model, "input_normalisation": NORMALISATION, "providers": "cpu", "keep_above": 0.5}
    summaries, rest = TileWriter(sink=sink, rows_above=0.5, **predictor)(batch)
    summary = TileSummary.from_table(summaries)
    detected = int((expected_score(whole[IMAGE_COLUMN]) >= 0.5).sum())
    assert summaries.num_rows == 1 and (summary.tile, summary.windows) == (int(work.tiles[2]), whole["tile"].size)
    assert summary.written == detected > 0 and not summary.error
    assert outputs.done_tiles() == set()
    sink.mark_done(summary)
    assert outputs.done_tiles() == {int(work.tiles[2])}
    assert set(rest.column("tile").to_pylist()) == {int(work.tiles[3])}
    assert sum(rest.column("stands_for").to_pylist()) == 10  # its detections and one row counting the others


def test_a_predictor_scores_a_large_batch_in_onnx_runtime_calls_of_its_batch_size(small_plan, model):
    args, work = small_plan
    batch = tile_rows(args, int(work.tiles[2]))
    whole = Predictor(model, input_normalisation=NORMALISATION, providers="cpu")
    sliced = Predictor(model, input_normalisation=NORMALISATION, providers="cpu", batch_size=7)
    calls = []
    predict = sliced.classifier.predict
    sliced.classifier.predict = lambda images: calls.append(len(images)) or predict(images)
    np.testing.assert_allclose(sliced(batch).column("score").to_numpy(), whole(batch).column("score").to_numpy(), atol=1e-6)
    assert max(calls) == 7 and sum(calls) == len(batch["tile"]) > 7


def test_predictor_refuses_windows_normalised_otherwise_than_its_card(model):
    with pytest.raises(ModelCardError, match="normalised with .*log-minmax-sym.* card says .*minmax"):
        Predictor(model, input_normalisation=LOG_SCALING, providers="cpu")


def test_predictor_returns_kept_cut_outs_in_jy_per_beam(small_plan, tmp_path):
    """Windows arrive normalised (here signed-log) as band planes; the kept cut-outs go back to
    clipped Jy/beam in the catalogue's (64, 64, 4)."""
    args, work = small_plan
    tile = int(work.tiles[2])
    raw = np.moveaxis(tile_rows(args, tile, normalisation=NORMALISATION)[IMAGE_COLUMN], 1, -1)  # identity: Jy/beam
    batch = tile_rows(args, tile, normalisation=LOG_SCALING)
    log_model = write_standin(tmp_path, normalisation=LOG_SCALING)
    table = Predictor(log_model, input_normalisation=LOG_SCALING, providers="cpu", keep_above=0.0)(batch)
    kept = np.array(table.column(IMAGE_COLUMN).to_pylist(), np.float32).reshape(raw.shape)
    np.testing.assert_allclose(kept, raw, rtol=2e-6, atol=0)
    assert ((kept == 0) == (raw == 0)).all()
