"""Tiles partition the windows, regions select them, and tile fields cover every cut-out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from survey.exceptions import BadInputError, NoDetectionsWarning
from survey.sky import healpix
from survey.sky.bands import BANDS
from survey.sky.fields import CUTOUT_MARGIN_DEG, tile_field, tile_request
from survey.sky.footprint import MAGELLANIC_CLOUDS, in_gleam_footprint
from survey.sky.geometry import angular_distance_deg, tangent_plane_deg, unit_vectors
from survey.sky.tiling import (
    AllSkyRegion,
    ConeRegion,
    format_plan,
    parse_region,
    plan,
    tile_of,
    window_neighbours,
    windows_in_tile,
)

SPHERE_DEG2 = 4 * np.pi * np.degrees(1.0) ** 2
GLEAM_EGC_AREA_DEG2 = 24_400.0
"""Data README, "GLEAM survey facts": the extragalactic footprint covers about 24,400 deg2."""


@pytest.fixture(scope="module")
def gleam_plan():
    return plan(parse_region("gleam"), tile_order=5, window_order=9)


# --------------------------------------------------------------------------------------
# Tiles and windows
# --------------------------------------------------------------------------------------


def test_every_window_belongs_to_exactly_one_tile():
    """Concatenating the windows of all tiles gives every window at window order once."""
    tile_order, window_order = 2, 5
    tiles = AllSkyRegion().candidate_tiles(tile_order=tile_order)
    per_tile = [windows_in_tile(int(t), tile_order=tile_order, window_order=window_order) for t in tiles]
    everything = np.concatenate([w.ipix for w in per_tile])
    assert np.array_equal(np.sort(everything), np.arange(healpix.order2npix(window_order)))
    for tile, windows in zip(tiles, per_tile):
        assert np.all(tile_of(windows.ipix, window_order=window_order, tile_order=tile_order) == tile)


@settings(max_examples=50, deadline=None)
@given(
    ra=st.floats(0, 360, exclude_max=True), dec=st.floats(-90, 90), tile_order=st.integers(0, 6), gap=st.integers(0, 4)
)
def test_a_window_centre_lies_in_its_tile(ra, dec, tile_order, gap):
    tile = int(healpix.ang2pix(tile_order, ra, dec))
    windows = windows_in_tile(tile, tile_order=tile_order, window_order=tile_order + gap)
    assert len(windows) == 4**gap
    assert np.all(healpix.ang2pix(tile_order, windows.ra_deg, windows.dec_deg) == tile)


def test_window_spacing_is_at_most_a_quarter_of_the_narrowest_cutout():
    """Neighbouring window centres are never further apart than 1/4 of a 64-px cut-out."""
    order = 9
    quarter_cutout_arcmin = min(b.cutout_width_deg for b in BANDS) * 60 / 4
    rng = np.random.default_rng(1)
    ipix = rng.integers(0, healpix.order2npix(order), 5000)
    ra, dec = healpix.pix2ang(order, ipix)
    neighbours = window_neighbours(ipix, order=order)
    nra, ndec = healpix.pix2ang(order, np.where(neighbours >= 0, neighbours, 0))
    distance_arcmin = angular_distance_deg(ra[:, None], dec[:, None], nra, ndec) * 60
    nearest = np.where(neighbours >= 0, distance_arcmin, np.inf).min(axis=1)
    assert nearest.max() <= quarter_cutout_arcmin
    assert healpix.resolution_arcmin(order) <= quarter_cutout_arcmin


def test_neighbours_are_mutual_and_cross_tile_boundaries():
    order, tile_order = 9, 5
    ipix = windows_in_tile(100, tile_order=tile_order, window_order=order).ipix
    neighbours = window_neighbours(ipix, order=order)
    assert neighbours.shape == (ipix.size, 8)
    assert np.any(tile_of(neighbours[neighbours >= 0], window_order=order, tile_order=tile_order) != 100)
    for a, row in zip(ipix[:20], neighbours[:20]):
        for b in row[row >= 0]:
            assert a in window_neighbours([b], order=order)[0]


# --------------------------------------------------------------------------------------
# Regions and plans
# --------------------------------------------------------------------------------------


def test_gleam_plan_area_matches_the_footprint(gleam_plan):
    """The plan's area equals the footprint's area, measured by independent random points."""
    rng = np.random.default_rng(2)
    n = 400_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    fraction = in_gleam_footprint(ra, dec).mean()
    sigma_deg2 = SPHERE_DEG2 * np.sqrt(fraction * (1 - fraction) / n)
    assert gleam_plan.area_deg2 == pytest.approx(fraction * SPHERE_DEG2, abs=5 * sigma_deg2 + 0.002 * SPHERE_DEG2)
    assert gleam_plan.total_windows == gleam_plan.windows_per_tile.sum()
    assert np.all(gleam_plan.windows_per_tile > 0)
    assert np.all(np.diff(gleam_plan.tiles) > 0)


def test_gleam_plan_area_is_near_the_published_footprint(gleam_plan):
    """About 24,400 deg2 less the masked Clouds.

    The tolerance is 8 %: the GLEAM EGC also leaves out areas beyond the Dec, latitude and
    Magellanic cuts that ``survey.sky.footprint`` models, so our footprint is somewhat larger.
    """
    clouds_deg2 = sum(2 * np.pi * (1 - np.cos(np.radians(r))) for *_, r in MAGELLANIC_CLOUDS) * np.degrees(1) ** 2
    assert gleam_plan.area_deg2 == pytest.approx(GLEAM_EGC_AREA_DEG2 - clouds_deg2, rel=0.08)


def test_gleam_plan_windows_are_all_in_the_footprint(gleam_plan):
    rng = np.random.default_rng(3)
    for tile in rng.choice(gleam_plan.tiles, 20, replace=False):
        windows = windows_in_tile(int(tile), tile_order=5, window_order=9, region=parse_region("gleam"))
        assert np.all(in_gleam_footprint(windows.ra_deg, windows.dec_deg))
        assert len(windows) == gleam_plan.windows_per_tile[np.searchsorted(gleam_plan.tiles, tile)]


def test_gleam_plan_skips_the_magellanic_clouds(gleam_plan):
    _, ra, dec, _ = MAGELLANIC_CLOUDS[0]
    lmc_tile = healpix.ang2pix(5, ra, dec)
    assert lmc_tile not in gleam_plan.tiles


@pytest.mark.parametrize("cone", ["cone:0.2,-30,2", "cone:359.9,-88.5,3", "cone:150,2.2,0.7"])
def test_cone_plan_holds_exactly_the_window_centres_in_the_disc(cone):
    region = parse_region(cone)
    cone_plan = plan(region, tile_order=5, window_order=9)
    planned = np.concatenate(
        [windows_in_tile(int(t), tile_order=5, window_order=9, region=region).ipix for t in cone_plan.tiles]
    )
    centred = healpix.query_disc(
        9, ra_deg=region.ra_deg, dec_deg=region.dec_deg, radius_deg=region.radius_deg, inclusive=False
    )
    assert np.array_equal(np.sort(planned), centred)
    disc_deg2 = 2 * np.pi * (1 - np.cos(np.radians(region.radius_deg))) * np.degrees(1) ** 2
    assert cone_plan.area_deg2 == pytest.approx(disc_deg2, rel=0.05)


def test_tiles_region_at_a_coarser_order_expands_to_whole_tiles():
    tiles_plan = plan(parse_region("tiles:4:7,100"), tile_order=5, window_order=9)
    expected = healpix.children([7, 100], order=4, child_order=5).ravel()
    assert np.array_equal(tiles_plan.tiles, np.sort(expected))
    assert tiles_plan.total_windows == 2 * 4 ** (9 - 4)


def test_tiles_region_at_a_finer_order_keeps_only_its_pixels():
    region = parse_region("tiles:7:1000,1001,50000")
    tiles_plan = plan(region, tile_order=5, window_order=9)
    assert np.array_equal(tiles_plan.tiles, np.unique(np.array([1000, 1001, 50000]) >> 4))
    assert tiles_plan.total_windows == 3 * 4 ** (9 - 7)


def test_tiles_region_reads_a_file_of_ids(tmp_path):
    ids = tmp_path / "todo.txt"
    ids.write_text("# tiles left over\n12 13,\n14  # last\n")
    region = parse_region(f"tiles:5:@{ids}")
    assert region.ids.tolist() == [12, 13, 14]
    assert plan(region, tile_order=5, window_order=6).tiles.tolist() == [12, 13, 14]


def test_allsky_plan_covers_the_sphere():
    allsky = plan(parse_region("allsky"), tile_order=1, window_order=4)
    assert allsky.tiles.size == healpix.order2npix(1)
    assert allsky.area_deg2 == pytest.approx(SPHERE_DEG2)


def test_an_empty_region_warns_and_plans_nothing():
    ra, dec = healpix.pix2ang(9, [123456])
    gap = parse_region(f"cone:{ra[0]:.6f},{dec[0] + 0.05:.6f},0.001")
    with pytest.warns(NoDetectionsWarning, match="no window centre"):
        empty = plan(gap, tile_order=5, window_order=9)
    assert empty.tiles.size == 0 and empty.total_windows == 0
    assert "0 non-empty" in format_plan(empty)


def test_format_plan_reports_counts_and_time():
    text = format_plan(plan(parse_region("tiles:4:7,100"), tile_order=5, window_order=9), windows_per_second=1024)
    assert "2,048" in text and "8 non-empty" in text and "2 s at 1,024 windows/s" in text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("north", "unknown region"),
        ("cone:10,20", "three numbers"),
        ("cone:400,0,1", "outside \\[0, 360\\)"),
        ("cone:10,-95,1", "outside \\[-90, 90\\]"),
        ("cone:10,0,0", "radius"),
        ("tiles:5:", "no tile ids"),
        ("tiles:5:12288", "does not exist at order 5"),
        ("tiles:x:1", "integer ids"),
        ("tiles:5:@/nonexistent/ids.txt", "does not exist"),
    ],
)
def test_bad_regions_are_rejected_with_the_fix(text, match):
    with pytest.raises(BadInputError, match=match):
        parse_region(text)


def test_bad_orders_and_tiles_are_rejected():
    with pytest.raises(BadInputError, match="tile_order <= window_order"):
        windows_in_tile(0, tile_order=6, window_order=5)
    with pytest.raises(BadInputError, match="windows per tile"):
        plan(AllSkyRegion(), tile_order=0, window_order=12)
    with pytest.raises(BadInputError, match="tile 5/99999"):
        tile_field(99999, tile_order=5)


def test_cone_region_contains_uses_true_angular_distance():
    region = ConeRegion(ra_deg=359.0, dec_deg=0.0, radius_deg=2.0)
    assert region.contains([0.5, 2.0, 359.0], [0.0, 0.0, 1.9]).tolist() == [True, False, True]


# --------------------------------------------------------------------------------------
# Tile fields
# --------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    ra=st.floats(0, 360, exclude_max=True),
    dec=st.floats(-90, 90),
    tile_order=st.integers(2, 7),
    gap=st.integers(1, 4),
    margin_deg=st.sampled_from([0.0, CUTOUT_MARGIN_DEG]),
)
@example(ra=0.0, dec=90.0, tile_order=5, gap=4, margin_deg=CUTOUT_MARGIN_DEG)
@example(ra=0.0, dec=-90.0, tile_order=3, gap=4, margin_deg=0.0)
@example(ra=359.99, dec=0.5, tile_order=5, gap=4, margin_deg=CUTOUT_MARGIN_DEG)
@example(ra=0.01, dec=41.8, tile_order=4, gap=4, margin_deg=0.0)
def test_tile_field_covers_every_window_cutout(ra, dec, tile_order, gap, margin_deg):
    """Each window centre plus the margin fits in the field's half-width on the tangent plane."""
    tile = int(healpix.ang2pix(tile_order, ra, dec))
    ra0, dec0, width = tile_field(tile, tile_order=tile_order, margin_deg=margin_deg)
    windows = windows_in_tile(tile, tile_order=tile_order, window_order=tile_order + gap)
    xi, eta = tangent_plane_deg(unit_vectors(windows.ra_deg, windows.dec_deg), ra0_deg=ra0, dec0_deg=dec0)
    assert np.all(np.maximum(np.abs(xi), np.abs(eta)) + margin_deg <= width / 2)
    # ...and is not wastefully large: the tile reaches no further than its corner radius.
    half_tile = width / 2 - margin_deg
    assert half_tile <= 1.05 * healpix.max_pixel_radius_deg(tile_order)


def test_tile_request_names_the_tile_and_matches_the_field():
    request = tile_request(1234, tile_order=5)
    assert request.key == "tile 5/1234"
    assert (request.ra_deg, request.dec_deg, request.width_deg) == tile_field(1234, tile_order=5)
    assert request.width_deg > 2 * CUTOUT_MARGIN_DEG
