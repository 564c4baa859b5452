"""The one model-input builder (survey.model.preprocess): clip a field, cut its windows as band planes.

Every cut-out is checked against the one-window reference ``cutout_at_pixel``, on the mock
sky and on the real files, and normalising a field before cutting against normalising
every cut-out.
"""

from __future__ import annotations

import numpy as np
import pytest

from survey.exceptions import BadInputError
from survey.images.base import BandImage, world_to_pixel
from survey.images.discovery import scan_directory
from survey.images.mock import MockSky, MockSource
from survey.model.cutouts import cutout_at_pixel
from survey.model.noise import clip_band
from survey.model.normalisation import Normalisation
from survey.model.preprocess import (
    IMAGE_COLUMN,
    INPUT_LAYOUT,
    NOISE_COLUMNS,
    PEAK_COLUMNS,
    channels_last,
    clip_field,
    cut_windows,
    window_geometry,
)
from survey.sky.bands import BAND_NAMES, BANDS, CUTOUT_SIZE
from survey.sky.fields import FieldRequest, tile_request
from survey.sky.tiling import windows_in_tile
from survey.testing import add_point_source, make_noise_image, make_wcs


def test_central_cutout_of_training_file_is_the_papers_slice(real_sources):
    """At a training file's centre, each band plane is the paper's ``data[118:182, 118:182]`` after the clip."""
    for source in real_sources[:4]:
        cut = cut_windows(clip_field(source.images, key=source.name), *source.centre_radec)
        assert cut["outside_fraction"][0] == 0.0
        for channel, band in enumerate(BAND_NAMES):
            clipped = clip_band(source.images[band].data).pixels
            np.testing.assert_array_equal(cut[IMAGE_COLUMN][0, channel], clipped[118:182, 118:182])


def test_point_source_lands_at_cutout_centre_in_all_four_bands():
    """Each band has its own WCS (scale, centre, reference pixel); the source is off-centre."""
    ra, dec = 150.3, -12.7
    images = {}
    for i, band in enumerate(BANDS):
        shape = (180 + 10 * i, 200 - 10 * i)
        wcs = make_wcs(ra_deg=150.0 + 0.05 * i, dec_deg=-12.5, pixel_deg=band.pixel_deg, shape=shape, crpix=(70.0 + i, 90.0 - i))
        data = make_noise_image(shape, sigma=0.001, seed=i)
        add_point_source(data, wcs, ra_deg=ra, dec_deg=dec, flux=1.0, fwhm_px=2.5)
        images[band.name] = BandImage(band, data, wcs, f"synthetic {band.name}")
    planes = cut_windows(clip_field(images, key="synthetic"), ra, dec)[IMAGE_COLUMN]
    assert planes.shape == (1, 4, CUTOUT_SIZE, CUTOUT_SIZE)
    for channel in range(4):
        y, x = np.unravel_index(np.argmax(planes[0, channel]), planes.shape[2:])
        assert y in (31, 32) and x in (31, 32), (channel, y, x)



def cut_one_by_one(field, ra_deg, dec_deg) -> dict[str, np.ndarray]:
    """The columns ``cut_windows`` must give, cut window by window with ``cutout_at_pixel``."""
    n = len(ra_deg)
    planes = np.zeros((n, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE), np.float32)
    outside, zero = np.zeros((n, len(BAND_NAMES)), np.float32), np.zeros((n, len(BAND_NAMES)), np.float32)
    for channel, band in enumerate(BAND_NAMES):
        clipped = field.clipped[band]
        x, y = world_to_pixel(field.images[band].wcs, ra_deg, dec_deg)
        for i in range(n):
            piece = cutout_at_pixel(clipped.pixels, float(x[i]), float(y[i]), zero_mask=clipped.no_data)
            planes[i, channel] = piece.pixels
            outside[i, channel], zero[i, channel] = piece.outside_fraction, piece.zero_fraction
    columns = {IMAGE_COLUMN: planes, "outside_fraction": outside.max(axis=1), "zero_fraction": zero.max(axis=1)}
    for channel, band in enumerate(BAND_NAMES):
        columns[NOISE_COLUMNS[channel]] = np.full(n, field.clipped[band].noise.sigma, np.float32)
        columns[PEAK_COLUMNS[channel]] = planes[:, channel].reshape(n, -1).max(axis=1)
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


def test_the_model_input_is_contiguous_band_planes_in_band_order():
    """(N, 4, 64, 64), C-contiguous, as the card's input spec says; ``channels_last`` is the same pixels as NHWC."""
    request = tile_request(6000)
    field = clip_field(MockSource(MockSky(seed=2)).read_field(request), key=request.key)
    windows = windows_in_tile(6000, window_order=8)
    planes = cut_windows(field, windows.ra_deg, windows.dec_deg)[IMAGE_COLUMN]
    assert INPUT_LAYOUT == "NCHW"
    assert planes.shape == (64, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE) and planes.flags.c_contiguous
    nhwc = channels_last(planes)
    assert nhwc.shape == (64, CUTOUT_SIZE, CUTOUT_SIZE, len(BAND_NAMES)) and nhwc.flags.c_contiguous
    for channel in range(len(BAND_NAMES)):
        np.testing.assert_array_equal(nhwc[..., channel], planes[:, channel])


def small_field_and_windows_across_its_edges(n: int, *, seed: int):
    """A mock field narrower than its windows' spread, and ``n`` window centres around and beyond it."""
    field = clip_field(MockSource(MockSky(seed=4)).read_field(FieldRequest("edge", 40.0, -30.0, 1.2)), key="edge")
    rng = np.random.default_rng(seed)
    ra = 40.0 + rng.uniform(-1.5, 1.5, n) / np.cos(np.radians(30.0))
    dec = -30.0 + rng.uniform(-1.5, 1.5, n)
    return field, ra, dec


def test_windows_across_the_edges_of_a_small_mock_field_are_cut_exactly():
    """A field narrower than its windows' spread: cut-outs partly and wholly outside the images."""
    field, ra, dec = small_field_and_windows_across_its_edges(60, seed=0)
    got = cut_windows(field, ra, dec)
    assert 0 < got["outside_fraction"].min() < 1 and got["outside_fraction"].max() == 1.0
    assert_same_columns(got, cut_one_by_one(field, ra, dec))


def test_parts_cut_with_slices_of_the_tiles_geometry_equal_the_whole_cut():
    """A tile cut in parts with its geometry computed once (``window_geometry``), as survey actors cut it."""
    field, ra, dec = small_field_and_windows_across_its_edges(50, seed=1)
    whole = cut_windows(field, ra, dec)
    assert 0 < whole["outside_fraction"].min() < 1 and whole["outside_fraction"].max() == 1.0  # edges are in play
    geometry = window_geometry(field, ra, dec)
    for part in (slice(0, 16), slice(16, 50)):
        got = cut_windows(field, ra[part], dec[part], geometry=geometry.part(part))
        assert_same_columns(got, {name: values[part] for name, values in whole.items()})
    with pytest.raises(ValueError, match="the geometry of 50 windows was given for 16"):
        cut_windows(field, ra[:16], dec[:16], geometry=geometry)


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
    assert got[IMAGE_COLUMN].shape == (n, 4, CUTOUT_SIZE, CUTOUT_SIZE)
    assert all(values.shape[0] == n for values in got.values())


SHIPPED_LIKE = Normalisation("log-minmax-sym", -1.2, 2.9, log_scale=0.054)
"""The shipped model's kind of scaling (signed log, then min-max to [-1, 1])."""


PAPER_LIKE = Normalisation("minmax", -0.4, 36.0)
"""The paper's global min-max."""
NOISE_UNITS = Normalisation("snr-log-sym", -0.9, 3.1, log_scale=3.0)
"""Each band in units of its own noise, then the signed log."""
"""The paper's global min-max."""


def assert_normalised_before_cutting_is_normalised_after(field, ra, dec, normalisation) -> dict[str, np.ndarray]:
    """The model input and peaks of ``cut_windows(normalisation=...)`` against normalising each cut-out."""
    raw = cut_windows(field, ra, dec)
    got = cut_windows(field, ra, dec, normalisation=normalisation)
    noise = np.array([field.clipped[b].noise.sigma for b in BAND_NAMES], np.float32)[None, :, None, None]
    np.testing.assert_array_equal(got[IMAGE_COLUMN], normalisation.apply(raw[IMAGE_COLUMN], noise=noise))
    for name in PEAK_COLUMNS:
        np.testing.assert_allclose(got[name], raw[name], rtol=2e-6, atol=0, err_msg=name)
        assert ((got[name] == 0) == (raw[name] == 0)).all(), name
    for name in ("outside_fraction", "zero_fraction", *NOISE_COLUMNS):
        np.testing.assert_array_equal(got[name], raw[name], err_msg=name)
    return got


@pytest.mark.parametrize("normalisation", [SHIPPED_LIKE, PAPER_LIKE, NOISE_UNITS], ids=["log", "minmax", "noise units"])
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
        assert_normalised_before_cutting_is_normalised_after(field, ra, dec, NOISE_UNITS)


def test_a_missing_band_and_an_empty_band_name_the_field_and_the_file():
    images = MockSource(MockSky(seed=1)).read_field(FieldRequest("small", 10.0, -20.0, 1.1))
    with pytest.raises(BadInputError, match=r"small: the image source returned no 72-103 MHz image"):
        clip_field({k: v for k, v in images.items() if k != "72-103"}, key="small")
    empty = {**images, "139-170": BandImage(BANDS[2], np.zeros((40, 40), np.float32), images["139-170"].wcs, "empty.fits")}
    with pytest.raises(BadInputError, match=r"small \(empty.fits\): unusable 139-170 MHz image"):
        clip_field(empty, key="small")
