"""The preprocessing stage's cut-outs: the batched kernel gives exactly the per-window cut-outs."""

from __future__ import annotations

import numpy as np
import pytest

from survey.exceptions import BadInputError
from survey.images.discovery import scan_directory
from survey.images.mock import MockSky, MockSource
from survey.model.preprocess import Normalisation, cutout_at_pixel
from survey.run.stages import (
    IMAGE_COLUMN,
    NOISE_COLUMNS,
    PEAK_COLUMNS,
    clip_field,
    cut_windows,
    preprocess_batch,
    preprocess_parts,
    preprocess_tile,
)
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE
from survey.sky.fields import FieldRequest, tile_request
from survey.sky.tiling import parse_region, windows_in_tile


def cut_one_by_one(field, ra_deg, dec_deg) -> dict[str, np.ndarray]:
    """The columns ``cut_windows`` must give, cut window by window with ``cutout_at_pixel``."""
    n = len(ra_deg)
    stack = np.zeros((n, CUTOUT_SIZE, CUTOUT_SIZE, len(BAND_NAMES)), np.float32)
    outside, zero = np.zeros((n, len(BAND_NAMES)), np.float32), np.zeros((n, len(BAND_NAMES)), np.float32)
    for channel, band in enumerate(BAND_NAMES):
        clipped = field.clipped[band]
        x, y = field.images[band].wcs.all_world2pix(ra_deg, dec_deg, 0)
        for i in range(n):
            piece = cutout_at_pixel(clipped.pixels, float(x[i]), float(y[i]), zero_mask=clipped.no_data)
            stack[i, :, :, channel] = piece.pixels
            outside[i, channel], zero[i, channel] = piece.outside_fraction, piece.zero_fraction
    columns = {IMAGE_COLUMN: stack, "outside_fraction": outside.max(axis=1), "zero_fraction": zero.max(axis=1)}
    for channel, band in enumerate(BAND_NAMES):
        columns[NOISE_COLUMNS[channel]] = np.full(n, field.clipped[band].noise.sigma, np.float32)
        columns[PEAK_COLUMNS[channel]] = stack[..., channel].reshape(n, -1).max(axis=1)
    return columns


def assert_same_columns(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name, values in expected.items():
        assert got[name].dtype == values.dtype, name
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_a_mock_tile_is_cut_exactly_as_window_by_window():
    tile = 6000
    request = tile_request(tile)
    field = clip_field(MockSource(MockSky(seed=2)).read_field(request), key=request.key)
    windows = windows_in_tile(tile)
    assert_same_columns(cut_windows(field, windows.ra_deg, windows.dec_deg),
                        cut_one_by_one(field, windows.ra_deg, windows.dec_deg))


def test_band_planes_hold_the_same_cut_outs():
    tile = 6000
    request = tile_request(tile)
    field = clip_field(MockSource(MockSky(seed=2)).read_field(request), key=request.key)
    windows = windows_in_tile(tile, window_order=8)
    nhwc = cut_windows(field, windows.ra_deg, windows.dec_deg)
    planes = cut_windows(field, windows.ra_deg, windows.dec_deg, planes=True)
    assert planes[IMAGE_COLUMN].shape == (64, 4, CUTOUT_SIZE, CUTOUT_SIZE) and planes[IMAGE_COLUMN].flags.c_contiguous
    assert_same_columns({**planes, IMAGE_COLUMN: np.moveaxis(planes[IMAGE_COLUMN], 1, -1)}, nhwc)


def test_windows_across_the_edges_of_a_small_mock_field_are_cut_exactly():
    """A field narrower than its windows' spread: cut-outs partly and wholly outside the images."""
    field = clip_field(MockSource(MockSky(seed=4)).read_field(FieldRequest("edge", 40.0, -30.0, 1.2)), key="edge")
    rng = np.random.default_rng(0)
    ra = 40.0 + rng.uniform(-1.5, 1.5, 60) / np.cos(np.radians(30.0))
    dec = -30.0 + rng.uniform(-1.5, 1.5, 60)
    got = cut_windows(field, ra, dec)
    assert 0 < got["outside_fraction"].min() < 1 and got["outside_fraction"].max() == 1.0
    assert_same_columns(got, cut_one_by_one(field, ra, dec))


def test_real_sources_are_cut_exactly_as_window_by_window(gleam_dir):
    """Each real source's four bands at its centre and at offsets reaching past the file edges."""
    for source in scan_directory(gleam_dir).sources[:8]:
        field = clip_field(source.images, key=source.name)
        ra0, dec0 = source.centre_radec
        offsets = np.linspace(-1.6, 1.6, 9)  # the 300-px files at 28" span 2.3 deg
        ra = ra0 + np.repeat(offsets, 9) / np.cos(np.radians(dec0))
        dec = dec0 + np.tile(offsets, 9)
        got = cut_windows(field, ra, dec)
        assert_same_columns(got, cut_one_by_one(field, ra, dec))
        assert got["outside_fraction"][len(ra) // 2] == 0.0 and got["outside_fraction"].max() == 1.0


@pytest.mark.parametrize("n", [0, 1])
def test_no_and_one_window(n):
    field = clip_field(MockSource(MockSky(seed=1)).read_field(FieldRequest("small", 10.0, -20.0, 1.1)), key="small")
    got = cut_windows(field, np.full(n, 10.0), np.full(n, -20.0))
    assert got[IMAGE_COLUMN].shape == (n, CUTOUT_SIZE, CUTOUT_SIZE, 4)
    assert all(values.shape[0] == n for values in got.values())


# ---------------------------------------------------------------- normalising the field before cutting

SHIPPED_LIKE = Normalisation("log-minmax-sym", -1.2, 2.9, log_scale=0.054)
"""The shipped model's kind of scaling (signed log, then min-max to [-1, 1])."""
PAPER_LIKE = Normalisation("minmax", -0.4, 36.0)
"""The paper's global min-max."""


def assert_normalised_before_cutting_is_normalised_after(field, ra, dec, normalisation) -> dict[str, np.ndarray]:
    """The model input and peaks of ``cut_windows(normalisation=...)`` against normalising each cut-out."""
    raw = cut_windows(field, ra, dec)
    got = cut_windows(field, ra, dec, normalisation=normalisation)
    np.testing.assert_array_equal(got[IMAGE_COLUMN], normalisation.apply(raw[IMAGE_COLUMN]))
    for name in PEAK_COLUMNS:
        np.testing.assert_allclose(got[name], raw[name], rtol=2e-6, atol=0, err_msg=name)
        assert ((got[name] == 0) == (raw[name] == 0)).all(), name
    for name in ("outside_fraction", "zero_fraction", *NOISE_COLUMNS):
        np.testing.assert_array_equal(got[name], raw[name], err_msg=name)
    return got


@pytest.mark.parametrize("normalisation", [SHIPPED_LIKE, PAPER_LIKE], ids=["log", "minmax"])
def test_normalising_a_field_then_cutting_equals_normalising_every_cut_out(normalisation):
    """Including windows partly and wholly outside the images, which read the normalised zero."""
    field = clip_field(MockSource(MockSky(seed=4)).read_field(FieldRequest("edge", 40.0, -30.0, 1.2)), key="edge")
    rng = np.random.default_rng(1)
    ra = 40.0 + rng.uniform(-1.5, 1.5, 60) / np.cos(np.radians(30.0))
    dec = -30.0 + rng.uniform(-1.5, 1.5, 60)
    got = assert_normalised_before_cutting_is_normalised_after(field, ra, dec, normalisation)
    assert got["outside_fraction"].max() == 1.0  # some window lies wholly outside a band's image


def test_real_fields_normalised_before_cutting_give_the_model_input_of_training(gleam_dir):
    for source in scan_directory(gleam_dir).sources[:6]:
        field = clip_field(source.images, key=source.name)
        ra0, dec0 = source.centre_radec
        offsets = np.linspace(-1.0, 1.0, 5)
        ra = ra0 + np.repeat(offsets, 5) / np.cos(np.radians(dec0))
        dec = dec0 + np.tile(offsets, 5)
        assert_normalised_before_cutting_is_normalised_after(field, ra, dec, SHIPPED_LIKE)


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
