"""Planning (survey.run.plan): targets per tile, kept to the region and to the images, counted when not planned."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from survey.exceptions import BadInputError
from survey.images.mock import MockSky, MockSource
from survey.run.manifest import RunManifest
from survey.run.plan import plan_targets, work_items
from survey.run.summary import RunSummary, format_summary
from survey.sky import healpix
from tests.survey.run.helpers import (
    survey_args,
)


def test_targets_are_planned_per_tile_and_kept_to_the_images(model, tmp_path):
    from survey.testing import write_source_set

    write_source_set(tmp_path / "fits", "abell 2744", ra_deg=3.59, dec_deg=-30.39, shape=(100, 100))
    args = survey_args(model, tmp_path / "out", mode="targets", catalogs="images", source=f"fits:{tmp_path / 'fits'}",
                       region="allsky")
    from survey.images.fitsdir import FitsDirectorySource

    work = plan_targets(args, FitsDirectorySource(tmp_path / "fits"))
    (tile,) = work.targets
    assert tile == int(healpix.ang2pix(args.tile_order, 3.59, -30.39))
    assert [t.name for t in work.targets[tile]] == ["A2744"]
    assert work_items(work.tiles, work.targets)[0]["targets"].startswith('[{"name": "A2744"')


class _ThreeTargets:
    """Targets in and out of the GLEAM footprint; images only west of RA 10 deg."""

    def targets(self) -> Table:
        return Table({"name": ["in", "no image", "plane"], "ra": [3.59, 20.0, 79.01], "dec": [-30.39, -30.0, 24.97]})

    def covers(self, ra, dec):
        return np.asarray(ra) < 10.0


def test_targets_not_planned_are_counted_by_reason_and_summarised(model, tmp_path):
    from survey.testing import write_source_set

    write_source_set(tmp_path / "fits", "abell 2744", ra_deg=3.59, dec_deg=-30.39, shape=(100, 100))
    args = survey_args(model, tmp_path / "out", mode="targets", catalogs="images", source=f"fits:{tmp_path / 'fits'}",
                       region="gleam")
    work = plan_targets(args, _ThreeTargets())
    assert [t.name for tile in work.targets.values() for t in tile] == ["in"]
    assert work.targets_skipped == {"outside_region": 1, "outside_images": 1}
    manifest = RunManifest(run_id="r", mode="targets", arguments={}, provenance={}, tiles_planned=1,
                           targets_skipped=work.targets_skipped)
    text = format_summary(RunSummary(str(tmp_path), manifest, 1, None, ["CPUExecutionProvider"]))
    assert "not planned: 1 outside the region, 1 outside the images" in text


def test_targets_can_come_from_any_table_of_positions(model, tmp_path):
    path = tmp_path / "my targets.csv"
    Table({"name": ["in footprint", "galactic plane"], "ra": [3.59, 79.01], "dec": [-30.39, 24.97]}).write(
        path, format="ascii.csv")
    args = survey_args(model, tmp_path / "out", mode="targets", catalogs=f"psz2,{path}", region="gleam")
    assert args.catalogs == ("psz2", str(path))
    work = plan_targets(survey_args(model, tmp_path / "out", mode="targets", catalogs=str(path), region="gleam"),
                        MockSource(MockSky(seed=0)))
    assert [(t.name, t.catalog) for tile in work.targets.values() for t in tile] == [("in footprint", path.name)]
    assert work.targets_skipped == {"outside_region": 1, "outside_images": 0}
    with pytest.raises(BadInputError, match=r"--catalog: no such table file: .*nothing\.csv"):
        survey_args(model, tmp_path / "out", mode="targets", catalogs=str(tmp_path / "nothing.csv"))
