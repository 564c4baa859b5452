"""Every path of a run directory and of its HATS catalogues (survey.output.paths), built in one place."""

from __future__ import annotations

import pytest

from survey.output import paths


def test_a_run_directory_holds_its_manifest_catalogues_work_and_plots(tmp_path):
    run = tmp_path / "run dir"
    assert paths.manifest_file(run).path.endswith("run dir/manifest.json")
    assert paths.catalog_dir(run, kind="candidates").path.endswith("run dir/candidates")
    assert paths.catalog_dir(run, kind="scores").path.endswith("run dir/scores")
    assert paths.work_dir(run).path.endswith("run dir/work/detections")
    assert paths.work_root(run).path.endswith("run dir/work")
    assert paths.plots_dir(run).path.endswith("run dir/plots")
    with pytest.raises(ValueError, match="kind must be one of candidates, scores"):
        paths.catalog_dir(run, kind="detections")


def test_tile_files_follow_the_hats_layout_and_hats_reads_their_pixel_back():
    path = paths.tile_file("cat", order=5, tile=12345)
    assert path.path.endswith("cat/dataset/Norder=5/Dir=10000/Npix=12345.parquet")
    assert paths.tile_from_path(path) == (5, 12345)
    assert paths.tile_from_path("cat/dataset/_metadata") is None


def test_only_integers_become_path_components():
    with pytest.raises(TypeError, match="only integers go into output paths"):
        paths.tile_file("cat", order=5, tile="A2744")
    with pytest.raises(TypeError, match="must be an integer, not a bool"):
        paths.done_marker("cat", order=True, tile=1)
    with pytest.raises(ValueError, match="must be non-negative"):
        paths.tile_file("cat", order=5, tile=-1)


def test_done_markers_and_temporary_files_are_told_apart_from_data():
    marker = paths.done_marker("cat", order=5, tile=42)
    assert marker.name == "5_42_done" and paths.parse_done_marker(marker.name) == (5, 42)
    temp = paths.tile_temp_file("cat", order=5, tile=42, token=7)
    assert paths.is_temp_file(temp) and not paths.is_temp_file(paths.tile_file("cat", order=5, tile=42))
    assert temp.parent == paths.tile_file("cat", order=5, tile=42).parent  # the rename never crosses filesystems
    assert paths.is_temp_file(paths.temp_sibling(paths.manifest_file("run"), token=3))


def test_a_candidates_root_is_found_from_the_run_directory_or_given_directly(tmp_path):
    assert paths.candidates_root(tmp_path) == tmp_path  # nothing finished inside: the path itself
    inner = paths.catalog_dir(tmp_path, kind="candidates")
    inner.mkdir(parents=True)
    paths.properties_file(inner).write_text("hats_nrows=0\n")
    assert paths.candidates_root(tmp_path) == inner


def test_uris_keep_their_protocol():
    assert paths.work_dir("memory://bucket/run").protocol == "memory"
    assert paths.manifest_file("memory://bucket/run").path.endswith("bucket/run/manifest.json")
