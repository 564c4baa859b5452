"""CatalogWriter: HATS layout that hats and lsdb accept, resume after a kill, refusals."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re

import hats
import lsdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from hats.io.validation import is_valid_catalog

from survey.exceptions import BadInputError, CatalogError, NoDetectionsWarning
from survey.output import paths
from survey.output.schema import SPATIAL_INDEX_COLUMN, candidate_schema, empty_table, synthetic_table
from survey.output.store import PARQUET_COMPRESSION_LEVEL, SCRATCH_COMPRESSION_LEVEL, CatalogWriter, check_writable

ORDER = 3
ROWS_PER_TILE = {0: 40, 1: 25, 100: 60, 101: 55, 102: 0, 300: 45, 767: 30, 400: 0}
"""A few hundred rows over scattered order-3 tiles, two of them empty; 100-102 are siblings."""
PROVENANCE = {"run_id": "run-1", "model_name": "cnn-a", "model_sha256": "ab" * 32, "threshold": 0.5}


@pytest.fixture(scope="module")
def sky() -> dict[int, pa.Table]:
    """One synthetic table per tile (positions at order-6 window centres inside the tile)."""
    return {
        tile: synthetic_table(order=ORDER, tile=tile, n_rows=n, seed=tile, run_id="run-1")
        for tile, n in ROWS_PER_TILE.items()
    }


def _expected(sky: dict[int, pa.Table]) -> pd.DataFrame:
    table = pa.concat_tables(sky.values()).sort_by(SPATIAL_INDEX_COLUMN)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _write(root, sky, tiles=None, **kwargs) -> CatalogWriter:
    writer = CatalogWriter(root, order=ORDER, provenance=PROVENANCE, **kwargs)
    for tile in sky if tiles is None else tiles:
        writer.write_tile(tile, sky[tile])
    return writer


@pytest.fixture(scope="module")
def catalog(sky, tmp_path_factory):
    """A finished catalogue of the whole synthetic sky."""
    root = tmp_path_factory.mktemp("cat") / "candidates"
    _write(root, sky).finish(expected_rows=sum(ROWS_PER_TILE.values()))
    return root


def _all_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- layout


def test_hats_strict_validation_passes(catalog, caplog):
    with caplog.at_level(logging.WARNING):
        assert is_valid_catalog(catalog, strict=True), caplog.text


def test_round_trip_through_hats_and_lsdb_returns_the_rows_sorted(catalog, sky):
    expected = _expected(sky)
    hc_catalog = hats.read_hats(catalog)
    non_empty = sorted(t for t, n in ROWS_PER_TILE.items() if n)
    assert [p.pixel for p in hc_catalog.get_healpix_pixels()] == non_empty
    assert hc_catalog.catalog_info.total_rows == len(expected)

    frame = lsdb.open_catalog(catalog).compute(progress_bar=False)
    assert frame.index.name == SPATIAL_INDEX_COLUMN
    frame = pd.DataFrame(frame).reset_index().sort_values(SPATIAL_INDEX_COLUMN).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected[frame.columns.tolist()], check_dtype=False)
    assert frame.columns.tolist() == expected.columns.tolist()


def test_each_file_is_sorted_zstd_and_declares_its_sort(catalog):
    files = sorted(catalog.glob("dataset/Norder=3/Dir=0/Npix=*.parquet"))
    assert len(files) == sum(1 for n in ROWS_PER_TILE.values() if n)
    for path in files:
        parquet = pq.ParquetFile(path)
        index = parquet.read(columns=[SPATIAL_INDEX_COLUMN]).column(0).to_numpy()
        assert np.all(np.diff(index) >= 0)
        row_group = parquet.metadata.row_group(0)
        assert row_group.column(0).compression == "ZSTD"
        assert row_group.sorting_columns == (pq.SortingColumn(0),)
        assert parquet.schema_arrow.names[0] == SPATIAL_INDEX_COLUMN


def test_layout_has_exactly_the_hats_files_and_no_progress_left(catalog):
    files = _all_files(catalog)
    for name in ("hats.properties", "properties", "partition_info.csv", "skymap.fits",
                 "dataset/_common_metadata", "dataset/_metadata"):
        assert name in files
    assert not any(f.startswith("done") or paths.is_temp_file(f) for f in files)
    assert (catalog / "partition_info.csv").read_text().splitlines()[0] == "Norder,Npix"


def test_properties_carry_hats_keys_and_our_provenance(catalog, sky):
    text = (catalog / "hats.properties").read_text()
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert props["dataproduct_type"] == "object"
    assert props["hats_nrows"] == str(sum(ROWS_PER_TILE.values()))
    assert props["hats_col_healpix"] == SPATIAL_INDEX_COLUMN and props["hats_col_healpix_order"] == "29"
    assert props["hats_order"] == str(ORDER) and props["hats_npix_suffix"] == ".parquet"
    assert props["hats_max_rows"] == str(max(ROWS_PER_TILE.values()))
    assert props["hats_builder"].startswith("halo-survey v")
    assert props["halo_model_sha256"] == PROVENANCE["model_sha256"]
    assert "ra:deg" in props["halo_column_units"].split()
    assert (catalog / "properties").read_text() == text


def test_parquet_metadata_holds_provenance_and_units(catalog):
    schema = pq.read_schema(catalog / "dataset" / "_common_metadata")
    provenance = json.loads(schema.metadata[b"halo_survey.provenance"])
    assert provenance["model_name"] == "cnn-a" and provenance["run_ids"] == ["run-1"]
    assert schema.field("dec").metadata[b"unit"] == b"deg"
    assert schema.field("noise_72_103").metadata[b"unit"] == b"Jy/beam"


def test_lsdb_cone_search_returns_exactly_the_rows_in_the_cone(catalog, sky):
    expected = _expected(sky)
    ra_deg, dec_deg, radius_deg = expected["ra"].iloc[100], expected["dec"].iloc[100], 6.0
    found = lsdb.open_catalog(catalog, search_filter=lsdb.ConeSearch(ra_deg, dec_deg, radius_deg * 3600))
    found = found.compute(progress_bar=False)
    centre = SkyCoord(ra_deg, dec_deg, unit="deg")
    inside = centre.separation(SkyCoord(expected["ra"].to_numpy(float), expected["dec"].to_numpy(float), unit="deg")).deg
    brute = set(expected[SPATIAL_INDEX_COLUMN][inside <= radius_deg])
    assert 0 < len(brute) < len(expected)
    assert set(found.index) == brute


# ---------------------------------------------------------------- resume


def test_resume_after_a_kill_gives_the_rows_of_an_uninterrupted_run(sky, catalog, tmp_path):
    root = tmp_path / "candidates"
    first = _write(root, sky, tiles=[0, 100, 102])  # 102 is empty
    # The kill: a half-written temporary file, and a tile renamed into place but not marked.
    stray = paths.tile_temp_file(root, order=ORDER, tile=300, token=7)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a parquet file")
    unmarked = paths.tile_file(root, order=ORDER, tile=101)
    pq.write_table(sky[101], unmarked.path)
    assert first.done_tiles() == {0, 100, 102}

    resumed = CatalogWriter(root, order=ORDER, provenance={**PROVENANCE, "run_id": "run-2"}, resume=True)
    assert not stray.exists()
    assert resumed.done_tiles() == {0, 100, 102}
    for tile in sorted(set(sky) - resumed.done_tiles()):
        resumed.write_tile(tile, sky[tile])
    result = resumed.finish(expected_rows=sum(ROWS_PER_TILE.values()))

    assert result.total_rows == sum(ROWS_PER_TILE.values()) and result.tiles == len(sky)
    assert is_valid_catalog(root, strict=True)
    frame = pd.DataFrame(lsdb.open_catalog(root).compute(progress_bar=False)).reset_index()
    assert frame[SPATIAL_INDEX_COLUMN].is_unique
    pd.testing.assert_frame_equal(frame.sort_values(SPATIAL_INDEX_COLUMN).reset_index(drop=True),
                                  _expected(sky), check_dtype=False)
    assert [f for f in _all_files(root) if f.startswith("dataset/Norder")] == \
        [f for f in _all_files(catalog) if f.startswith("dataset/Norder")]
    assert not any(paths.is_temp_file(f) or f.startswith("done") for f in _all_files(root))
    props = (root / "hats.properties").read_text()
    assert "halo_run_ids=run-1 run-2" in props


def test_resume_refuses_a_run_with_other_settings(sky, tmp_path):
    _write(tmp_path, sky, tiles=[0])
    changed = {**PROVENANCE, "model_sha256": "cd" * 32}
    with pytest.raises(BadInputError, match="cannot resume.*model_sha256"):
        CatalogWriter(tmp_path, order=ORDER, provenance=changed, resume=True)
    with pytest.raises(BadInputError, match="cannot resume.*order=3.*order=4"):
        CatalogWriter(tmp_path, order=4, provenance=PROVENANCE, resume=True)


def test_resume_of_a_finished_catalogue_is_refused(catalog):
    with pytest.raises(BadInputError, match="already complete.*overwrite"):
        CatalogWriter(catalog, order=ORDER, provenance=PROVENANCE, resume=True)


def test_resume_into_an_empty_directory_starts_afresh(sky, tmp_path):
    writer = _write(tmp_path / "new", sky, tiles=[], resume=True)
    assert writer.done_tiles() == set()


# ---------------------------------------------------------------- refusals


def test_overwrite_and_resume_together_are_refused(tmp_path):
    with pytest.raises(BadInputError, match=rf"{re.escape(str(tmp_path))}.*overwrite and resume cannot both"):
        CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE, overwrite=True, resume=True)


def test_a_non_empty_root_needs_overwrite_or_resume(sky, tmp_path):
    _write(tmp_path, sky, tiles=[0])
    with pytest.raises(BadInputError, match="contains files.*set overwrite or resume"):
        CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)


def test_overwrite_replaces_our_catalogue_but_not_a_foreign_directory(sky, tmp_path):
    _write(tmp_path / "cat", sky, tiles=[0, 1])
    writer = _write(tmp_path / "cat", sky, tiles=[100], overwrite=True)
    assert writer.done_tiles() == {100}
    assert not paths.tile_file(tmp_path / "cat", order=ORDER, tile=0).exists()

    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(BadInputError, match="overwrite refused.*no HATS catalogue"):
        CatalogWriter(tmp_path / "home", order=ORDER, provenance=PROVENANCE, overwrite=True)
    assert (tmp_path / "home" / "thesis.tex").exists()


def test_a_row_outside_its_tile_is_refused_naming_tile_and_row(sky, tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    mixed = pa.concat_tables([sky[100].slice(0, 3), sky[300].slice(0, 1)])
    with pytest.raises(CatalogError, match=r"tile 100 \(order 3\): row 3 at ra=.* lies in tile 300"):
        writer.write_tile(100, mixed)
    assert writer.done_tiles() == set()
    assert not paths.tile_file(tmp_path, order=ORDER, tile=100).exists()


def test_a_spatial_index_that_disagrees_with_ra_dec_is_refused(sky, tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    table = sky[100]
    wrong = table.set_column(0, SPATIAL_INDEX_COLUMN, pa.array(np.roll(table.column(0).to_numpy(), 1)))
    with pytest.raises(CatalogError, match="tile 100: row 0 .* _healpix_29=.*spatial_index"):
        writer.write_tile(100, wrong)


def test_schema_errors_name_the_tile_and_the_column(sky, tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    with pytest.raises(CatalogError, match=r"tile 100: missing column\(s\) \['score'\]"):
        writer.write_tile(100, sky[100].drop_columns(["score"]))
    as_text = sky[100].set_column(7, "score", pa.array(["0.5"] * sky[100].num_rows))
    with pytest.raises(CatalogError, match="tile 100: column 'score' has type string, expected float"):
        writer.write_tile(100, as_text)
    with pytest.raises(BadInputError, match="not a pixel at order 3"):
        writer.write_tile(12 * 4**ORDER, sky[100])


# ---------------------------------------------------------------- empty


def test_an_empty_tile_writes_a_marker_but_no_file(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    assert writer.write_tile(5, empty_table(writer.schema)) == 0
    assert writer.done_tiles() == {5}
    assert not paths.tile_file(tmp_path, order=ORDER, tile=5).exists()
    marker = json.loads(paths.done_marker(tmp_path, order=ORDER, tile=5).read_text())
    assert marker["rows"] == 0 and marker["seconds"] >= 0


def test_a_catalogue_with_no_rows_is_valid_and_openable_with_a_warning(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    for tile in (5, 6):
        writer.write_tile(tile, empty_table(writer.schema))
    with pytest.warns(NoDetectionsWarning, match="no rows in any of 2 tiles"):
        result = writer.finish(expected_rows=0)
    assert result.total_rows == 0 and result.partitions == 0
    assert is_valid_catalog(tmp_path, strict=True)
    assert hats.read_hats(tmp_path).catalog_info.total_rows == 0
    frame = lsdb.open_catalog(tmp_path).compute(progress_bar=False)
    assert len(frame) == 0 and "score" in frame.columns


# ---------------------------------------------------------------- finish checks


def test_finish_refuses_counts_that_disagree(sky, tmp_path):
    writer = _write(tmp_path, sky, tiles=[0, 1])
    with pytest.raises(CatalogError, match="expected 1000 rows in total, found 65"):
        writer.finish(expected_rows=1000)
    marker = paths.done_marker(tmp_path, order=ORDER, tile=1)
    marker.write_text(json.dumps({"order": ORDER, "tile": 1, "rows": 99, "seconds": 0.0}))
    with pytest.raises(CatalogError, match="tile 1 was marked done with 99 rows but its file holds 25"):
        writer.finish()
    assert not (tmp_path / "hats.properties").exists()


def test_finish_refuses_a_data_file_without_a_marker(sky, tmp_path):
    writer = _write(tmp_path, sky, tiles=[0])
    pq.write_table(sky[1], paths.tile_file(tmp_path, order=ORDER, tile=1).path)
    with pytest.raises(CatalogError, match=r"tile\(s\) \[1\] have data files but no done marker"):
        writer.finish()


def test_no_more_tiles_after_finish(sky, tmp_path):
    writer = _write(tmp_path, sky, tiles=[0])
    writer.finish()
    with pytest.raises(CatalogError, match="finished"):
        writer.write_tile(1, sky[1])


# ---------------------------------------------------------------- names, filesystems


def test_target_names_with_spaces_and_slashes_never_become_paths(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    table = synthetic_table(order=ORDER, tile=100, n_rows=3, seed=1)
    names = ["PSZ2 G008.94-81.22", "A/B", "../../etc"]
    table = table.set_column(table.schema.get_field_index("target_name"), "target_name", pa.array(names))
    writer.write_tile(100, table)
    writer.finish()
    allowed = re.compile(r"^(hats\.properties|properties|partition_info\.csv|skymap\.fits|dataset/_(common_)?metadata"
                         r"|dataset/Norder=\d+/Dir=\d+/Npix=\d+\.parquet)$")
    assert all(allowed.match(f) for f in _all_files(tmp_path)), _all_files(tmp_path)
    assert sorted(lsdb.open_catalog(tmp_path).compute(progress_bar=False)["target_name"]) == sorted(names)
    with pytest.raises(TypeError, match="only integers go into output paths"):
        paths.tile_file(tmp_path, order=ORDER, tile="A/B")


def test_the_writer_pickles_for_ray_workers(sky, tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE)
    clone = pickle.loads(pickle.dumps(writer))
    clone.write_tile(100, sky[100])
    assert writer.done_tiles() == {100}


def test_a_filesystem_uri_root_works(sky):
    root = "memory://halo-test/candidates"
    writer = _write(root, sky, tiles=[0, 100, 102])
    result = writer.finish()
    assert result.total_rows == ROWS_PER_TILE[0] + ROWS_PER_TILE[100]
    assert hats.read_hats(root).catalog_info.total_rows == result.total_rows
    paths.as_upath(root).fs.rm("/halo-test", recursive=True)


def test_a_root_under_a_regular_file_is_unwritable(tmp_path):
    regular = tmp_path / "a-file"
    regular.write_text("")
    with pytest.raises(BadInputError, match=rf"{re.escape(str(regular))}/cat: cannot write the catalogue here"):
        check_writable(regular / "cat")
    with pytest.raises(BadInputError, match="cannot write"):
        CatalogWriter(regular / "cat", order=ORDER, provenance=PROVENANCE)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_directory_is_unwritable(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(BadInputError, match="cannot write the catalogue here.*Permission"):
            check_writable(tmp_path / "cat")
    finally:
        tmp_path.chmod(0o755)


def test_a_missing_filesystem_driver_is_named():
    with pytest.raises(BadInputError, match="nosuchproto://bucket/cat: no filesystem driver"):
        check_writable("nosuchproto://bucket/cat")
    with pytest.raises(BadInputError, match="no filesystem driver"):
        CatalogWriter("nosuchproto://bucket/cat", order=ORDER, provenance=PROVENANCE)


def test_cutout_column_round_trips_and_is_not_a_default_column(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, provenance=PROVENANCE, with_cutout=True)
    table = synthetic_table(order=ORDER, tile=100, n_rows=4, seed=3, with_cutout=True)
    writer.write_tile(100, table)
    writer.finish()
    assert is_valid_catalog(tmp_path, strict=True)
    default = lsdb.open_catalog(tmp_path).compute(progress_bar=False)
    assert "cutout" not in default.columns and "score" in default.columns
    full = pd.DataFrame(lsdb.open_catalog(tmp_path, columns="all").compute(progress_bar=False)).reset_index()
    full = full.sort_values(SPATIAL_INDEX_COLUMN)
    expected = table.sort_by(SPATIAL_INDEX_COLUMN).column("cutout").to_pylist()
    assert np.allclose(np.stack(full["cutout"].to_list()), np.array(expected))
    assert candidate_schema(with_cutout=True).field("cutout").type.list_size == 64 * 64 * 4


def test_a_window_score_catalogue_is_valid_too(tmp_path):
    writer = CatalogWriter(tmp_path, order=ORDER, kind="scores", provenance=PROVENANCE)
    for tile in (0, 100):
        writer.write_tile(tile, synthetic_table(order=ORDER, tile=tile, n_rows=20, seed=tile, kind="scores"))
    assert writer.finish(expected_rows=40).partitions == 2
    assert is_valid_catalog(tmp_path, strict=True)
    assert "obs_collection=gleam_halo_scores" in (tmp_path / "hats.properties").read_text()
    assert lsdb.open_catalog(tmp_path).columns.tolist() == ["ra", "dec", "window_ipix", "tile", "score",
                                                           "zero_fraction", "run_id"]


def test_a_scratch_compression_level_changes_the_bytes_but_not_the_rows(tmp_path):
    table = synthetic_table(order=ORDER, tile=100, n_rows=6, seed=5, with_cutout=True)
    files = {}
    for level in (PARQUET_COMPRESSION_LEVEL, SCRATCH_COMPRESSION_LEVEL):
        writer = CatalogWriter(tmp_path / str(level), order=ORDER, provenance=PROVENANCE, with_cutout=True,
                               compression_level=level)
        writer.write_tile(100, table)
        files[level] = paths.tile_file(writer.root, order=ORDER, tile=100)
    scratch, default = (files[level].read_bytes() for level in (SCRATCH_COMPRESSION_LEVEL, PARQUET_COMPRESSION_LEVEL))
    assert scratch != default
    assert pq.read_table(files[SCRATCH_COMPRESSION_LEVEL]).equals(pq.read_table(files[PARQUET_COMPRESSION_LEVEL]))
