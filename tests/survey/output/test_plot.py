"""Plots of a candidate catalogue (survey.output.plot): a sky map, a gallery of the best cut-outs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from survey.exceptions import BadInputError, NoDetectionsWarning
from survey.output import paths
from survey.output.plot import default_out_dir, mollweide_xy, plot_command
from survey.output.schema import synthetic_table
from survey.output.store import CatalogWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def catalogue(root: Path, *, rows: int, with_cutout: bool) -> Path:
    writer = CatalogWriter(paths.catalog_dir(root, kind="candidates"), order=5, provenance={"run_id": "t"},
                           with_cutout=with_cutout)
    writer.write_tile(11583, synthetic_table(order=5, tile=11583, n_rows=rows, seed=3, with_cutout=with_cutout))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        writer.finish()
    return root


def test_ra_increases_to_the_left_across_the_wrap():
    x, _ = mollweide_xy(np.array([179.0, 181.0, 359.0, 1.0]), np.zeros(4))
    assert x[0] > 0 > x[1] and x[3] > 0 > x[2]


def test_a_run_gets_a_sky_map_and_a_gallery_of_at_most_top_rows(tmp_path):
    run = catalogue(tmp_path / "run", rows=5, with_cutout=True)
    written = plot_command(run, top=2)
    assert [p.name for p in written] == ["sky.png", "gallery.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.parent == default_out_dir(run) for p in written)


def test_an_empty_catalogue_still_gets_its_map_and_no_gallery(tmp_path):
    run = catalogue(tmp_path / "run", rows=0, with_cutout=True)
    assert [p.name for p in plot_command(run, out_dir=tmp_path / "pngs")] == ["sky.png"]


def test_without_cut_outs_the_map_comes_with_a_warning(tmp_path):
    run = catalogue(tmp_path / "run", rows=3, with_cutout=False)
    with pytest.warns(NoDetectionsWarning, match="no cutout column"):
        assert [p.name for p in plot_command(run, out_dir=tmp_path / "pngs")] == ["sky.png"]


def test_a_non_positive_top_is_refused_before_reading(tmp_path):
    with pytest.raises(BadInputError, match="--top: must be at least 1, got 0"):
        plot_command(tmp_path / "nothing", top=0)


def test_plots_of_a_remote_catalogue_go_to_the_working_directory():
    assert default_out_dir("s3://bucket/run") == Path("halo-survey-plots")
