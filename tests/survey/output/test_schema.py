"""Candidate/score schemas: column names and units, conform() casts and refusals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.exceptions import CatalogError
from survey.output.schema import (
    CATALOGS,
    SPATIAL_INDEX_COLUMN,
    candidate_schema,
    column_units,
    conform,
    flags_column,
    schema_for,
    score_schema,
    spatial_index,
    synthetic_table,
    tile_of,
)
from survey.sky import healpix
from survey.sky.bands import BAND_NAMES


def test_candidate_columns_follow_the_bands_and_catalogues():
    names = candidate_schema().names
    assert names[:3] == [SPATIAL_INDEX_COLUMN, "ra", "dec"]
    for band in BAND_NAMES:
        assert f"noise_{band.replace('-', '_')}" in names and f"peak_{band.replace('-', '_')}" in names
    for cat in CATALOGS:
        assert {f"{cat}_name", f"{cat}_sep_arcmin", f"{cat}_z"} <= set(names)
    assert "cutout" not in names and candidate_schema(with_cutout=True).names[-1] == "cutout"
    assert score_schema().names == [SPATIAL_INDEX_COLUMN, "ra", "dec", "window_ipix", "tile", "score",
                                    "zero_fraction", "run_id"]


def test_units_and_descriptions_live_in_field_metadata():
    units = column_units(candidate_schema())
    assert units["ra"] == "deg" and units["noise_170_231"] == "Jy/beam" and units["psz2_sep_arcmin"] == "arcmin"
    assert "score" not in units  # a probability has no unit
    assert all(field.metadata[b"description"] for field in candidate_schema())


def test_conform_applies_safe_casts_and_orders_columns():
    table = synthetic_table(order=3, tile=10, n_rows=4, seed=0, kind="scores")
    loose = pa.table({
        "score": table["score"].cast(pa.float64()),
        **{n: table[n] for n in table.column_names if n not in ("score", "tile")},
        "tile": table["tile"].cast(pa.int32()),
    })
    conformed = conform(loose, score_schema(), tile=10)
    assert conformed.schema == score_schema() and conformed.equals(table)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), r"unexpected column\(s\) \['extra'\]"),
        (lambda t: t.set_column(1, "ra", pa.array([None] * t.num_rows, pa.float64())), "column 'ra' has 4 null"),
        (lambda t: t.set_column(4, "tile", pa.array(["10"] * t.num_rows)), "column 'tile' has type string"),
    ],
)
def test_conform_refuses_and_names_tile_and_column(change, message):
    table = synthetic_table(order=3, tile=10, n_rows=4, seed=0, kind="scores")
    with pytest.raises(CatalogError, match=f"tile 10: {message}"):
        conform(change(table), score_schema(), tile=10)


def test_flags_string_must_agree_with_the_booleans():
    table = synthetic_table(order=3, tile=10, n_rows=6, seed=0)
    wrong = table.set_column(table.schema.get_field_index("flags"), "flags", pa.array(["ok"] * 6))
    with pytest.raises(CatalogError, match="tile 10: row .* column 'flags'"):
        conform(wrong, candidate_schema(), tile=10)
    assert flags_column({"edge": [True], "truncated": [True]}) == ["truncated,edge"]
    with pytest.raises(ValueError, match="unknown flag"):
        flags_column({"cloudy": [True]})


def test_schema_for_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="unknown catalogue kind 'galaxies'"):
        schema_for("galaxies")


@settings(max_examples=50, deadline=None)
@given(order=st.integers(0, 8), data=st.data())
def test_the_spatial_index_of_a_pixel_centre_lies_in_that_pixel(order, data):
    ipix = data.draw(st.integers(0, 12 * 4**order - 1))
    ra_deg, dec_deg = healpix.pix2ang(order, [ipix])
    assert tile_of(spatial_index(ra_deg, dec_deg), order=order).tolist() == [ipix]
    assert healpix.ang2pix(order, ra_deg, dec_deg).tolist() == [ipix]


def test_synthetic_rows_lie_in_their_tile():
    table = synthetic_table(order=5, tile=4321, n_rows=50, seed=2)
    assert set(tile_of(table[SPATIAL_INDEX_COLUMN].to_numpy(), order=5)) == {4321}
    assert np.all(table["tile"].to_numpy() == 4321)
