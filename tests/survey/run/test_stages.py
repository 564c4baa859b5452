"""The stage functions on plain dicts: a tile's rows, in parts, and a failed tile's single row."""

from __future__ import annotations

import numpy as np

from survey.exceptions import BadInputError
from survey.images.mock import MockSky, MockSource
from survey.model.normalisation import Normalisation
from survey.run.stages import preprocess_batch, preprocess_parts, preprocess_tile
from survey.sky.tiling import parse_region
from tests.survey.model.test_preprocess import assert_same_columns


def test_a_batch_of_tiles_gives_each_tiles_rows_in_order():
    options = {"source": MockSource(MockSky(seed=2)), "tile_order": 5, "window_order": 8,
               "region": parse_region("allsky")}
    tiles = [6000, 6001]
    alone = [preprocess_tile({"tile": t, "targets": ""}, **options) for t in tiles]
    one = preprocess_batch({"tile": np.array(tiles[:1]), "targets": np.array([""])}, **options)
    two = preprocess_batch({"tile": np.array(tiles), "targets": np.array(["", ""])}, **options)
    for got, parts in ((one, alone[:1]), (two, alone)):
        expected = {name: np.concatenate([p[name] for p in parts]) for name in parts[0] if name != "tile_seconds"}
        assert_same_columns({name: got[name] for name in expected}, expected)
    assert two["tile"].tolist() == [6000] * 64 + [6001] * 64


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
