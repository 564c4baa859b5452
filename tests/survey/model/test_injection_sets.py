"""``halo-survey inject`` (survey.model.injection_sets): injected FITS sets with their names, clip and truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.table import Table

from survey.cli import main
from survey.exceptions import BadInputError
from survey.images.base import read_band_file
from survey.images.discovery import scan_directory
from survey.images.halos import Halo, halo_table
from survey.images.naming import parse_band_filename
from survey.model.injection_sets import TRUTH_FILENAME, inject_command, parse_grid
from survey.model.noise import estimate_noise


@pytest.fixture
def two_sets(gleam_dir, tmp_path):
    """Copies of two real four-band sets in the paper's folder layout."""
    for source in scan_directory(gleam_dir).sources:
        if source.name in ("A2744", "ORC 1"):
            for path in source.files.values():
                target = tmp_path / "in" / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    return tmp_path / "in"


def test_a_grid_goes_into_every_set_keeping_names_folders_and_clip(two_sets, tmp_path, capsys):
    assert main(["inject", "--source", f"fits:{two_sets}", "--grid", "0.8,1.6:1,3", "--per-set", "3",
                 "--out", str(tmp_path / "out"), "--seed", "2"]) == 0
    assert "injected 6 halo(s) into 2 image set(s)" in capsys.readouterr().out
    truth = Table.read(tmp_path / "out" / TRUTH_FILENAME)
    assert sorted(set(truth["set"])) == ["A2744", "ORC 1"] and len(truth) == 6
    assert set(truth["flux_150mhz_jy"]) <= {0.8, 1.6} and set(truth["r_e_arcmin"]) <= {1.0, 3.0}
    originals = sorted(p.relative_to(two_sets) for p in two_sets.rglob("*.fits"))
    assert sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.fits")) == originals
    for relative in originals:
        band = parse_band_filename(relative.name).band
        before = estimate_noise(read_band_file(two_sets / relative, band).data)
        after_image = read_band_file(tmp_path / "out" / relative, band).data
        after = estimate_noise(after_image)
        assert after.clip_threshold == pytest.approx(before.clip_threshold, rel=0.03), relative
        assert not np.array_equal(after_image, read_band_file(two_sets / relative, band).data)


def test_a_halo_table_injects_each_halo_into_the_set_it_falls_on(two_sets, tmp_path):
    a2744 = (3.5833, -30.3883)
    table = halo_table([Halo(a2744[0] + 0.5, a2744[1], 1.0, 2.0, name="on A2744"), Halo(200.0, 10.0, 1.0, 2.0, name="nowhere")])
    table.write(tmp_path / "halos.ecsv")
    truth = inject_command(f"fits:{two_sets}", tmp_path / "out", halos_file=str(tmp_path / "halos.ecsv"), grid=None,
                           per_set=1, region=None, seed=0)
    assert truth["name"].tolist() == ["on A2744"] and truth["set"].tolist() == ["A2744"]


def test_mock_fields_are_rendered_around_each_grid_halo(tmp_path):
    truth = inject_command("mock:3", tmp_path / "out", halos_file=None, grid="1.0:2", per_set=2,
                           region="cone:100,-40,2", seed=1)
    assert len(truth) == 2 and len(list((tmp_path / "out").glob("mock-*_Gleam*.fits"))) == 8


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"halos_file": None, "grid": None}, "give exactly one"),
    ({"halos_file": None, "grid": "0.4:"}, "expected FLUXES:SIZES"),
    ({"halos_file": None, "grid": "1:2", "region": None}, "a mock grid needs --region cone"),
])
def test_bad_injection_requests_say_what_to_give(tmp_path, kwargs, match):
    with pytest.raises(BadInputError, match=match):
        inject_command("mock", tmp_path / "out", per_set=1, seed=0, **{"region": None, **kwargs})
    assert parse_grid("0.4,0.8:1", per_set=3).per_set == 3
