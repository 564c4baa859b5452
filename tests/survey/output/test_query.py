"""Query side: filters, cone pruning of partitions, output formats read back with astropy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse_single_table
from astropy.table import Table
from hats.io.file_io import file_io as hats_file_io

from survey.exceptions import BadInputError, CatalogError, NoDetectionsWarning
from survey.output import paths
from survey.output.query import format_candidates, normalise_name, query_command, read_candidates, write_candidates
from survey.output.schema import SPATIAL_INDEX_COLUMN, empty_table, synthetic_table
from survey.output.store import CatalogWriter
from survey.sky import healpix

ORDER = 4
TILES = {1000: 30, 1001: 30, 1002: 30, 1003: 30, 2000: 25, 2500: 0, 3000: 20}
"""Four sibling tiles (one order-3 pixel) and three scattered ones at order 4."""
TARGETS = {(1000, 0): "PSZ2 G008.94-81.22", (2000, 1): "A/B"}
PROVENANCE = {"run_id": "q-1", "model_name": "cnn-a"}


def _tile_table(tile: int, n_rows: int) -> pa.Table:
    table = synthetic_table(order=ORDER, tile=tile, n_rows=n_rows, seed=tile, run_id="q-1")
    names = [TARGETS.get((tile, row)) for row in range(n_rows)]
    return table.set_column(table.schema.get_field_index("target_name"), "target_name", pa.array(names, pa.string()))


@pytest.fixture(scope="module")
def sky() -> pd.DataFrame:
    tables = [_tile_table(tile, n) for tile, n in TILES.items()]
    return pa.concat_tables(tables).sort_by(SPATIAL_INDEX_COLUMN).to_pandas(types_mapper=pd.ArrowDtype)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("q") / "candidates"
    writer = CatalogWriter(root, order=ORDER, provenance=PROVENANCE)
    for tile, n_rows in TILES.items():
        writer.write_tile(tile, _tile_table(tile, n_rows))
    writer.finish()
    return root


def _ids(frame: pd.DataFrame) -> list[int]:
    return sorted(int(i) for i in frame[SPATIAL_INDEX_COLUMN])


# ---------------------------------------------------------------- filters


def test_no_filter_returns_every_row_without_the_cutout(catalog, sky):
    frame = read_candidates(catalog)
    assert _ids(frame) == _ids(sky)
    assert frame.columns.tolist() == sky.columns.tolist()
    assert frame[SPATIAL_INDEX_COLUMN].is_monotonic_increasing


def test_min_score_keeps_only_higher_scores(catalog, sky):
    frame = read_candidates(catalog, min_score=0.7)
    assert _ids(frame) == _ids(sky[sky["score"] >= 0.7])
    assert 0 < len(frame) < len(sky)


def test_cone_returns_the_brute_force_rows_and_opens_only_overlapping_partitions(catalog, sky, monkeypatch):
    opened = []
    original = hats_file_io.read_parquet_file_to_pandas

    def spy(path, *args, **kwargs):
        opened.append(paths.tile_from_path(path)[1])
        return original(path, *args, **kwargs)

    monkeypatch.setattr(hats_file_io, "read_parquet_file_to_pandas", spy)
    ra_deg, dec_deg = healpix.pix2ang(ORDER, [1001])
    cone = (float(ra_deg[0]), float(dec_deg[0]), 1.5)
    frame = read_candidates(catalog, cone=cone)

    separation = SkyCoord(cone[0], cone[1], unit="deg").separation(
        SkyCoord(sky["ra"].to_numpy(float), sky["dec"].to_numpy(float), unit="deg")
    ).deg
    assert _ids(frame) == _ids(sky[separation <= cone[2]])
    touching = set(healpix.query_disc(ORDER, ra_deg=cone[0], dec_deg=cone[1], radius_deg=cone[2]).tolist())
    non_empty = {t for t, n in TILES.items() if n}
    assert opened and set(opened) <= touching & non_empty
    assert not set(opened) & {2000, 3000}


def test_near_matches_names_ignoring_case_and_spaces(catalog):
    frame = read_candidates(catalog, near="psz2  g008.94-81.22")
    assert frame["target_name"].tolist() == ["PSZ2 G008.94-81.22"]
    assert read_candidates(catalog, near="a/b")["target_name"].tolist() == ["A/B"]


def test_near_also_matches_cluster_catalogue_names(catalog, sky):
    name = sky["mcxc_name"].dropna().iloc[0]
    frame = read_candidates(catalog, near=name.lower())
    assert len(frame) >= 1 and (frame["mcxc_name"] == name).all()


def test_near_an_unknown_name_says_how_to_resolve(catalog):
    with pytest.raises(BadInputError, match=r"no candidate is named 'PSZ2 G008.94-81.2'.*Close names.*PSZ2 G008.94-81.22.*--cone"):
        read_candidates(catalog, near="PSZ2 G008.94-81.2")


def test_matched_to_keeps_rows_with_that_match(catalog, sky):
    frame = read_candidates(catalog, matched_to="psz2")
    assert _ids(frame) == _ids(sky[sky["psz2_name"].notna()])


def test_flags_ok_or_a_flag_name(catalog, sky):
    assert _ids(read_candidates(catalog, flags="ok")) == _ids(sky[sky["flags"] == "ok"])
    edge = read_candidates(catalog, flags="edge")
    assert _ids(edge) == _ids(sky[sky["flag_edge"]])


def test_filters_combine(catalog, sky):
    frame = read_candidates(catalog, min_score=0.3, flags="ok", matched_to="mgcls", columns=["ra", "dec", "score"])
    keep = (sky["score"] >= 0.3) & (sky["flags"] == "ok") & sky["mgcls_name"].notna()
    assert frame.columns.tolist() == ["ra", "dec", "score"]
    assert sorted(frame["score"].tolist()) == sorted(sky.loc[keep, "score"].tolist())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_score": 1.5}, "halo probability must lie in"),
        ({"cone": (10.0, 95.0, 1.0)}, "need -90 <= dec <= 90"),
        ({"matched_to": "abell"}, "unknown catalogue 'abell'"),
        ({"flags": "bad"}, "unknown flag 'bad'"),
        ({"columns": ["nope"]}, r"unknown column\(s\) \['nope'\]"),
    ],
)
def test_bad_filter_values_are_refused(catalog, kwargs, message):
    with pytest.raises(BadInputError, match=message):
        read_candidates(catalog, **kwargs)


def test_an_empty_selection_warns_and_keeps_the_columns(catalog):
    with pytest.warns(NoDetectionsWarning, match="no candidates pass"):
        frame = read_candidates(catalog, cone=(0.0, -89.0, 0.5))
    assert frame.empty and "score" in frame.columns


def test_an_unfinished_catalogue_is_refused(tmp_path):
    CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE).write_tile(5, _tile_table(5, 3))
    with pytest.raises(CatalogError, match="not a finished catalogue.*--resume"):
        read_candidates(tmp_path)


def test_an_empty_catalogue_reads_as_an_empty_frame(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    writer.write_tile(5, empty_table(writer.schema))
    with pytest.warns(NoDetectionsWarning):
        writer.finish()
    with pytest.warns(NoDetectionsWarning):
        frame = read_candidates(tmp_path, cone=(10.0, 10.0, 2.0))
    assert frame.empty


def test_normalise_name():
    assert normalise_name("  Abell 2744 ") == normalise_name("ABELL2744")


# ---------------------------------------------------------------- formats


def test_csv_round_trips(catalog, sky):
    text = query_command(catalog, fmt="csv", min_score=0.5)
    frame = pd.read_csv(io.StringIO(text))
    expected = sky[sky["score"] >= 0.5].sort_values("score", ascending=False)
    assert frame[SPATIAL_INDEX_COLUMN].tolist() == expected[SPATIAL_INDEX_COLUMN].tolist()
    assert np.allclose(frame["ra"], expected["ra"].to_numpy(float))


def test_table_shows_units_and_best_first(catalog, sky):
    text = query_command(catalog, fmt="table", matched_to="psz2")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["ra", "dec", "score"] and lines[1].split()[:2] == ["deg", "deg"]
    scores = [float(line.split()[2]) for line in lines[3:]]
    assert scores == sorted(scores, reverse=True) and len(scores) == sky["psz2_name"].notna().sum()
    # Positions to 0.04", scores to 4 digits: no float noise such as -16.401388999999995 on a terminal.
    assert all(len(line.split()[1].split(".")[1]) == 5 and len(line.split()[2].split(".")[1]) == 4 for line in lines[3:])


def test_votable_reads_back_with_units_and_masked_numbers(catalog, sky):
    text = query_command(catalog, fmt="votable")
    table = parse_single_table(io.BytesIO(text.encode())).to_table()
    assert len(table) == len(sky)
    assert str(table["ra"].unit) == "deg" and str(table["noise_72_103"].unit) == "Jy / beam"
    # VOTable has no null for text: a missing name comes back as an empty string.
    names = table["psz2_name"].filled("") if hasattr(table["psz2_name"], "filled") else table["psz2_name"]
    assert sum(name == "" for name in names) == int(sky["psz2_name"].isna().sum())
    assert int(np.ma.count_masked(table["psz2_z"])) == int(sky["psz2_z"].isna().sum())
    assert sorted(table[SPATIAL_INDEX_COLUMN].tolist()) == _ids(sky)


def test_fits_and_parquet_need_a_file_and_read_back(catalog, sky, tmp_path):
    with pytest.raises(BadInputError, match="fits output needs a file"):
        query_command(catalog, fmt="fits")
    assert query_command(catalog, fmt="fits", out=tmp_path / "c.fits") is None
    table = Table.read(tmp_path / "c.fits")
    assert len(table) == len(sky) and str(table["psz2_sep_arcmin"].unit) == "arcmin"
    assert set(table["target_name"][~table["target_name"].mask]) == set(TARGETS.values())

    query_command(catalog, fmt="parquet", out=tmp_path / "c.parquet", near="A/B")
    parquet = pq.read_table(tmp_path / "c.parquet")
    assert parquet.column("target_name").to_pylist() == ["A/B"]
    assert parquet.schema.field("dec").metadata[b"unit"] == b"deg"


def test_write_candidates_refuses_to_overwrite(tmp_path):
    frame = pd.DataFrame({"ra": [1.0], "dec": [2.0], "score": [0.5]})
    out = write_candidates(frame, "csv", tmp_path / "c.csv")
    with pytest.raises(BadInputError, match="file exists"):
        write_candidates(frame, "csv", out)


def test_unknown_format_and_binary_formats_as_text_are_refused():
    frame = pd.DataFrame({"ra": [1.0]})
    with pytest.raises(BadInputError, match="unknown output format 'xml'"):
        format_candidates(frame, "xml")
    with pytest.raises(BadInputError, match="parquet output needs a file"):
        format_candidates(frame, "parquet")
