"""``--source fits:DIR``: cut-out sets and per-band mosaics, chosen by coverage, read lazily."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from survey.exceptions import BadInputError, MissingBandError
from survey.images.fitsdir import FitsDirectorySource, best_set, field_grid
from survey.sky.bands import BANDS
from survey.sky.fields import FieldRequest
from survey.testing import make_noise_image, make_wcs, write_band_fits, write_source_set


@pytest.fixture
def two_sets(tmp_path: Path) -> Path:
    """Two sources 3 deg apart, one with spaces in its name, in a folder with a space."""
    folder = tmp_path / "my data"
    write_source_set(folder, "abell 2744", ra_deg=3.59, dec_deg=-30.39, shape=(150, 150), seed=1)
    write_source_set(folder, "abell_0013", ra_deg=3.59, dec_deg=-27.39, shape=(150, 150), seed=5)
    return folder


def test_a_field_is_served_by_the_set_that_covers_it(two_sets):
    source = FitsDirectorySource(two_sets)
    images = source.read_field(FieldRequest("target 'A 2744/x'", 3.59, -30.39, 0.5))
    assert set(images) == {b.name for b in BANDS}
    assert all("abell 2744" in image.origin for image in images.values())
    # Cropped to the field: 0.5 deg at 28" is about 65 px, not the file's 150.
    assert 60 <= images["170-231"].data.shape[0] <= 70
    assert images["170-231"].data.dtype == np.float32
    x, y = images["170-231"].wcs.wcs_world2pix([[3.59, -30.39]], 0)[0]
    assert abs(x - (images["170-231"].data.shape[1] - 1) / 2) < 1.5 and abs(y - (images["170-231"].data.shape[0] - 1) / 2) < 1.5


def test_the_other_set_serves_its_own_field(two_sets):
    chosen, covered = best_set(FitsDirectorySource(two_sets).sets, FieldRequest("f", 3.59, -27.39, 0.5))
    assert chosen.name == "A0013" and covered == 1.0


def test_an_uncovered_field_names_the_request_and_directory(two_sets):
    with pytest.raises(BadInputError, match=r"tile 5/7: no image set under .*my data covers"):
        FitsDirectorySource(two_sets).read_field(FieldRequest("tile 5/7", 200.0, 10.0, 1.0))


def test_a_missing_band_names_the_set(tmp_path):
    paths = write_source_set(tmp_path, "a0085", ra_deg=10.0, dec_deg=-9.3, shape=(80, 80))
    paths["139-170"].unlink()
    with pytest.raises(MissingBandError, match=r"tile 5/1: .*'A0085'.*no 139-170 MHz file"):
        FitsDirectorySource(tmp_path).read_field(FieldRequest("tile 5/1", 10.0, -9.3, 0.4))


def test_a_corrupt_file_is_reported_with_its_name(tmp_path):
    paths = write_source_set(tmp_path, "a0085", ra_deg=10.0, dec_deg=-9.3, shape=(80, 80))
    paths["72-103"].write_bytes(b"SIMPLE  = this is not FITS")
    with pytest.raises(MissingBandError, match=r"a0085_Gleam72-103_clipped\.fits"):
        FitsDirectorySource(tmp_path).read_field(FieldRequest("tile 5/1", 10.0, -9.3, 0.4))


def write_mosaics(folder: Path, *, size_deg: float = 8.0) -> dict[str, Path]:
    """One wide image per band, named ``mosaic_<band>.fits``, centred on (30, -30)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, band in enumerate(BANDS):
        n = int(size_deg / band.pixel_deg)
        wcs = make_wcs(ra_deg=30.0, dec_deg=-30.0, pixel_deg=band.pixel_deg, shape=(n, n))
        out[band.name] = write_band_fits(folder / f"mosaic_{band.name}.fits", make_noise_image((n, n), sigma=0.01, seed=i), wcs)
    return out


def test_mosaics_are_read_only_under_the_field(tmp_path):
    files = write_mosaics(tmp_path / "mosaics")
    source = FitsDirectorySource(tmp_path / "mosaics")
    assert [s.name for s in source.sets] == ["MOSAIC"]
    images = source.read_field(FieldRequest("tile 5/3", 31.0, -29.0, 1.0))
    full = int(8.0 / BANDS[3].pixel_deg)
    assert images["170-231"].data.shape[0] < full / 5
    assert images["170-231"].origin == str(files["170-231"])


def test_a_field_past_the_mosaic_edge_is_served_partly(tmp_path):
    write_mosaics(tmp_path / "m", size_deg=3.0)
    source = FitsDirectorySource(tmp_path / "m")
    _, covered = best_set(source.sets, FieldRequest("f", 31.6, -30.0, 1.0))
    assert 0.0 < covered < 1.0
    ra, dec = field_grid(FieldRequest("f", 31.6, -30.0, 1.0))
    assert source.covers(ra, dec).any() and not source.covers(ra, dec).all()


def test_targets_and_coverage(two_sets):
    source = FitsDirectorySource(two_sets)
    targets = source.targets()
    assert sorted(str(n) for n in targets["name"]) == ["A0013", "A2744"]
    assert source.covers([3.59, 3.59, 150.0], [-30.39, -27.39, 0.0]).tolist() == [True, True, False]


def test_the_source_pickles_without_pixels(two_sets):
    source = FitsDirectorySource(two_sets)
    size = len(pickle.dumps(source))
    assert size < 8 * 150 * 150 * 4  # less than all the pixels of two sets
    again = pickle.loads(pickle.dumps(source))
    assert again.read_field(FieldRequest("f", 3.59, -30.39, 0.3))["72-103"].data.size > 0


def test_a_directory_without_gleam_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing")
    with pytest.raises(BadInputError, match="holds no GLEAM band FITS files"):
        FitsDirectorySource(tmp_path)


@pytest.mark.realdata
def test_real_gleam_directory_indexes_46_complete_sets(gleam_dir):
    source = FitsDirectorySource(gleam_dir)
    assert len(source.sets) == 46 and all(s.complete for s in source.sets)
    # A2744 lies inside the A2751 field (data README): its own set must serve it.
    a2744 = next(s for s in source.sets if s.name == "A2744")
    images = source.read_field(FieldRequest("A2744", *a2744.centre_radec, 1.0))
    assert all("abell_2744" in image.origin for image in images.values())
