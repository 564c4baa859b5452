"""The compiled input builder equals the numpy one, value for value (survey.model.kernels).

The numpy code (``clip_band_numpy``, the fancy-index cut with ``HALO_SURVEY_NUMBA=0``) is
the oracle: the compiled path must give the same noise estimates, clipped pixels, masks,
cut-outs, fractions and peaks, on the 184 real band files, on mock-sky tiles, and on random
images with NaN, inf, zero blocks, windows off the edge and odd sizes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey.images.mock import MockSky, MockSource
from survey.model import kernels
from survey.model.cutouts import cutout_corners, cutout_fractions, cutouts_at_pixels, finite_image, gather_into
from survey.model.noise import (
    ClippedBand,
    _fit_gaussian,
    clip_band,
    clip_band_numpy,
    clip_symmetric,
    median_by_partition,
)
from survey.model.normalisation import Normalisation
from survey.model.preprocess import batch_buffer, clip_field, cut_windows, normalise_field
from survey.sky.fields import tile_request
from survey.sky.tiling import windows_in_tile
from tests.survey.model.test_preprocess import assert_same_columns
from tests.survey.reliability.test_preprocess_properties import blocks, noisy

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed: only the numpy path runs")

LOG = Normalisation("log-minmax-sym", -1.2, 3.1, 0.056)
SNR = Normalisation("snr-log-sym", -0.9, 2.4, 3.0)


def assert_same_band(got: ClippedBand, expected: ClippedBand) -> None:
    assert got.noise == expected.noise
    assert got.pixels.dtype == expected.pixels.dtype == np.float32
    np.testing.assert_array_equal(got.pixels, expected.pixels)
    np.testing.assert_array_equal(got.no_data, expected.no_data)


@contextmanager
def numpy_only():
    """The builder's numpy path (the oracle), as without numba."""
    before = os.environ.get("HALO_SURVEY_NUMBA")
    os.environ["HALO_SURVEY_NUMBA"] = "0"
    try:
        assert not kernels.enabled()
        yield
    finally:
        if before is None:
            del os.environ["HALO_SURVEY_NUMBA"]
        else:
            os.environ["HALO_SURVEY_NUMBA"] = before


def test_the_median_by_partition_is_numpys_on_ties_even_and_odd_counts():
    rng = np.random.default_rng(0)
    samples = [rng.normal(0, 1, 1001), rng.normal(0, 1, 1000), rng.integers(-3, 3, 999).astype(float),
               np.round(rng.normal(0, 1, 2000), 1), np.full(10, 2.5), np.array([1.0]), rng.exponential(1, 4)]
    for values in samples:
        assert median_by_partition(values.copy()) == np.median(values)
        pixels = values.astype(np.float32)  # float32 pixels: the median of their float64 copies, not float32 sums
        assert median_by_partition(pixels.copy()) == np.median(pixels.astype(np.float64))


@pytest.mark.parametrize("seed", range(6))
def test_the_fit_without_covariance_gives_curve_fits_parameters_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([rng.normal(0.002 * seed, 0.01, 20_000), rng.exponential(0.05, 500 * seed)])
    counts, edges = np.histogram(pixels, bins=200, range=(-0.06, 0.02))
    centres = 0.5 * (edges[:-1] + edges[1:])
    lower = slice(0, int(np.argmax(counts)) + 5)
    guess = (float(counts.max()), float(centres[np.argmax(counts)]), 0.012)
    reference = _fit_gaussian(centres[lower], counts[lower], guess, covariance=True)
    assert reference is not None
    np.testing.assert_array_equal(_fit_gaussian(centres[lower], counts[lower], guess, covariance=False), reference)


def test_the_compiled_histogram_bins_as_numpy_even_on_the_edges():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 5000), np.linspace(-2, 1, 201), [-2.0, 1.0, 7.0, -9.0]])
    edges = np.histogram_bin_edges(values[:1], bins=200, range=(-2.0, 1.0))
    counts = np.zeros(200, np.intp)
    kernels.histogram(values, edges, counts)
    np.testing.assert_array_equal(counts, np.histogram(values, bins=200, range=(-2.0, 1.0))[0])


def test_the_clip_compares_in_float32_as_numpy_does():
    # float32(threshold) is just below threshold: a pixel equal to it survives a float32
    # comparison (numpy's, with a Python float) and would not survive a float64 one.
    threshold = float(np.float32(0.1)) + 5e-10
    assert float(np.float32(threshold)) < threshold
    pixels = np.array([0.1, np.nextafter(np.float32(0.1), np.float32(0)), np.float32(0.1), -0.2, 1e39, np.nan])
    out = np.empty(pixels.size, np.float32)
    kernels.clip(pixels, np.float32(threshold), out)
    with np.errstate(over="ignore"):  # 1e39 overflows float32 (then counts as non-finite) in both
        reference = clip_symmetric(pixels, threshold)
    np.testing.assert_array_equal(out, reference)
    assert out[1] == 0 and out[2] != 0


def test_every_real_band_file_clips_as_the_numpy_reference(gleam_dir):
    files = sorted(gleam_dir.glob("*/*.fits"))
    assert len(files) == 184
    for path in files:
        data = fits.getdata(path)  # big-endian, as FITS stores it
        assert_same_band(clip_band(data), clip_band_numpy(data))


def test_mock_tiles_give_the_numpy_references_rows():
    source = MockSource(MockSky(seed=4))
    for tile in (6000, 11626):
        request = tile_request(tile)
        images = source.read_field(request)
        windows = windows_in_tile(tile)
        ra, dec = windows.ra_deg, windows.dec_deg
        buffer = batch_buffer(len(ra) + 7)
        buffer[:] = np.nan  # a used buffer: every value must be overwritten
        compiled = cut_windows(clip_field(images, key=request.key), ra, dec, normalisation=LOG, out=buffer)
        with numpy_only():
            reference = cut_windows(clip_field(images, key=request.key), ra, dec, normalisation=LOG)
        assert compiled["image"].base is buffer
        assert_same_columns(compiled, reference)


@pytest.mark.parametrize("normalisation", [LOG, SNR], ids=["log", "snr"])
@pytest.mark.parametrize("noise", [0.01, 1e-38])
def test_a_field_normalises_as_the_numpy_reference_even_where_the_scaling_overflows(normalisation, noise):
    rng = np.random.default_rng(3)
    field = clip_symmetric(rng.normal(0, 0.01, (97, 131)), 0.03)
    field[5, 7], field[50, 60] = 3e38, -3e38  # in noise units of 1e-38 they overflow to +-inf
    with np.errstate(over="ignore"):  # the overflow is the case under test
        got = normalise_field(normalisation, field, noise=noise)
        with numpy_only():
            expected = normalise_field(normalisation, field, noise=noise)
    assert np.isfinite(got).all() and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert (got[field == 0] == normalisation.zero_level).all()


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.integers(0, 10_000), st.integers(20, 150), st.integers(20, 150), blocks, st.booleans(),
       st.sampled_from(["<f4", ">f4", "<f8", ">f8"]))
def test_random_images_with_holes_clip_and_cut_as_the_numpy_reference(seed, ny, nx, spoil, clipped, dtype):
    image = noisy(seed, (ny, nx), spoil, clipped=clipped).astype(dtype)  # FITS is big-endian, float32 or float64
    try:
        expected = clip_band_numpy(image)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).split("(")[0]):
            clip_band(image)
        return
    got = clip_band(image)
    assert_same_band(got, expected)
    rng = np.random.default_rng(seed)
    # Centres inside, across the edges and wholly off the image.
    x, y = rng.uniform(-80, nx + 80, 50), rng.uniform(-80, ny + 80, 50)
    fill = LOG.zero_level
    planes = np.full((50, 3, 64, 64), np.nan, np.float32)  # a used batch of three bands
    x0, y0 = cutout_corners(x, y)  # as cut_windows cuts a band: corners, gather, fractions
    peaks = gather_into(planes, 1, finite_image(got.pixels, fill), x0, y0, fill=fill)
    outside, zero = cutout_fractions(got.pixels.shape, x0, y0, size=64, zero_mask=got.no_data)
    with numpy_only():
        reference = cutouts_at_pixels(got.pixels, x, y, zero_mask=got.no_data, fill=fill)
    np.testing.assert_array_equal(planes[:, 1], reference.pixels)
    np.testing.assert_array_equal(outside, reference.outside_fraction)
    np.testing.assert_array_equal(zero, reference.zero_fraction)
    np.testing.assert_array_equal(peaks, reference.pixels.reshape(50, -1).max(axis=1))
    assert np.isnan(planes[:, [0, 2]]).all()  # the other bands untouched
