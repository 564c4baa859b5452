"""Discovery and reading of four-band GLEAM FITS sets, on the real data and on bad inputs."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
from astropy.io import fits

from survey.exceptions import BadInputError, MissingBandError
from survey.images.base import read_band_file
from survey.images.discovery import find_source_files, load_source, scan_directory
from survey.images.naming import display_name, label_and_split, parse_band_filename
from survey.sky.bands import BAND_NAMES, BANDS
from survey.testing import make_wcs, write_band_fits, write_source_set


@pytest.mark.parametrize(
    ("filename", "key", "band"),
    [
        ("abell_0122_Gleam103-134_clipped.fits", "abell_0122", "103-134"),
        ("3c 136.1_GLEAM_103-134MHz_clipped.fits", "3c 136.1", "103-134"),
        ("abell_s1063Gleam72-103_clipped.fits", "abell_s1063", "72-103"),
        ("plck G287.0+32.9_Gleam170-231_clipped.fits", "plck G287.0+32.9", "170-231"),
        ("PKS 2014-55_GLEAM_139-170MHz.fit", "PKS 2014-55", "139-170"),
    ],
)
def test_three_naming_patterns_parse(filename, key, band):
    parsed = parse_band_filename(filename)
    assert (parsed.source_key, parsed.band) == (key, band)


def test_names_without_band_or_not_fits_are_not_band_files():
    assert parse_band_filename("abell_0122_clipped.fits") is None
    assert parse_band_filename("abell_0122_Gleam103-134_clipped.png") is None


def test_display_names_and_folder_labels(tmp_path):
    assert display_name("gmbcg j357.91841-08.97978") == "GMBCG J357.91841-08.97978"
    assert label_and_split(tmp_path / "TEST_DATA_1") == (1, "test")
    assert label_and_split(tmp_path / "TRAIN_DATA_0") == (0, "train")
    assert label_and_split(tmp_path / "my_fields") == (None, None)


def test_real_directory_has_46_sources_18_18_5_5(gleam_dir):
    scan = scan_directory(gleam_dir)
    assert scan.problems == []
    assert len(scan.sources) == 46
    counts = Counter((s.split, s.label) for s in scan.sources)
    assert counts == {("train", 1): 18, ("train", 0): 18, ("test", 1): 5, ("test", 0): 5}
    names = {s.name for s in scan.sources}
    assert {"AS1063", "3C 136.1", "ORC 2", "A2744", "PSZ1 G287.95-32.98", "AqrCC 087"} <= names


def test_real_source_bands_keep_native_pixel_scales(gleam_dir):
    source = next(s for s in scan_directory(gleam_dir).sources if s.name == "A2744")
    for band in BANDS:
        image = source.images[band.name]
        assert image.data.shape == (300, 300) and image.data.dtype == np.float32
        assert image.pixel_deg == pytest.approx(band.pixel_deg, rel=1e-3)
    assert source.centre_radec == pytest.approx((3.584, -30.388), abs=1e-3)


def _copy_source(gleam_dir, tmp_path, key="abell_2744", folder="TEST_DATA_1"):
    target = tmp_path / folder
    target.mkdir(parents=True, exist_ok=True)
    for path in (gleam_dir / folder).glob(f"{key}_*"):
        shutil.copy(path, target / path.name)
    return target


def test_missing_band_names_source_and_band_and_scan_goes_on(gleam_dir, tmp_path):
    folder = _copy_source(gleam_dir, tmp_path)
    _copy_source(gleam_dir, tmp_path, key="abell_s1121")
    (folder / "abell_2744_Gleam139-170_clipped.fits").unlink()
    scan = scan_directory(tmp_path)
    assert [s.name for s in scan.sources] == ["AS1121"]
    (problem,) = scan.problems
    assert "A2744" in problem.message and "139-170" in problem.message
    records, _ = find_source_files(tmp_path)
    with pytest.raises(MissingBandError, match="lacks band.*139-170"):
        load_source(next(r for r in records if r.name == "A2744"))


def test_not_fits_names_the_file(tmp_path):
    bad = tmp_path / "x_Gleam72-103.fits"
    bad.write_text("this is not FITS")
    with pytest.raises(BadInputError, match=r"x_Gleam72-103\.fits.*not a readable FITS"):
        read_band_file(bad, "72-103")


def test_no_celestial_wcs_names_the_file(tmp_path):
    path = tmp_path / "nowcs_Gleam72-103.fits"
    fits.PrimaryHDU(np.ones((10, 10), np.float32)).writeto(path)
    with pytest.raises(BadInputError, match="nowcs_Gleam72-103.fits: has no celestial WCS"):
        read_band_file(path, "72-103")


def test_nan_pixels_are_refused_for_training_but_allowed_for_survey(tmp_path):
    data = np.zeros((20, 20), np.float32)
    data[2:4, 2:4] = np.nan
    path = write_band_fits(tmp_path / "n_Gleam72-103.fits", data, make_wcs(ra_deg=10, dec_deg=-30, pixel_deg=0.01, shape=(20, 20)))
    with pytest.raises(BadInputError, match="n_Gleam72-103.fits: has 4 NaN/inf pixels"):
        read_band_file(path, "72-103")
    assert np.isnan(read_band_file(path, "72-103", allow_nonfinite=True).data).sum() == 4


def test_cube_with_degenerate_axes_is_squeezed_and_real_cube_refused(tmp_path):
    wcs = make_wcs(ra_deg=10, dec_deg=-30, pixel_deg=0.01, shape=(20, 30))
    path = write_band_fits(tmp_path / "cube_Gleam72-103.fits", np.ones((20, 30), np.float32), wcs, extra_axes=2)
    image = read_band_file(path, "72-103")
    assert image.data.shape == (20, 30) and image.wcs.naxis == 2
    fits.PrimaryHDU(np.ones((3, 20, 30), np.float32), header=wcs.to_header()).writeto(tmp_path / "c3_Gleam72-103.fits")
    with pytest.raises(BadInputError, match="not a 2-D image: shape \\(3, 20, 30\\)"):
        read_band_file(tmp_path / "c3_Gleam72-103.fits", "72-103")


def test_duplicate_band_and_nameless_files_are_reported(tmp_path):
    write_source_set(tmp_path, "abell_0001", ra_deg=10, dec_deg=-30, shape=(40, 40))
    write_source_set(tmp_path / "sub", "abell_0002", ra_deg=12, dec_deg=-30, shape=(40, 40), pattern="{name}_GLEAM_{band}MHz.fits")
    shutil.copy(tmp_path / "abell_0001_Gleam72-103_clipped.fits", tmp_path / "abell_0001_GLEAM_72-103MHz.fits")
    (tmp_path / "notes.fits").write_bytes(b"")
    records, problems = find_source_files(tmp_path)
    assert sorted(r.name for r in records) == ["A0001", "A0002"]
    messages = " ".join(p.message for p in problems)
    assert "second file for band 72-103" in messages and "notes.fits: file name names no GLEAM band" in messages
    assert all(set(r.files) == set(BAND_NAMES) for r in records)
