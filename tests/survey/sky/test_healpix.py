"""The NESTED-only healpy shim: pixels contain their points, and the hierarchy is bit shifts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.sky import healpix
from survey.sky.geometry import angular_distance_deg

ra_st = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
dec_st = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
order_st = st.integers(min_value=0, max_value=12)


@settings(max_examples=200, deadline=None)
@given(ra=ra_st, dec=dec_st, order=order_st)
def test_point_falls_inside_its_pixel(ra, dec, order):
    """A point is no further from its pixel's centre than the pixel's corners are."""
    ipix = healpix.ang2pix(order, ra, dec)
    cra, cdec = healpix.pix2ang(order, ipix)
    distance = angular_distance_deg(ra, dec, cra, cdec)
    assert 0 <= ipix < healpix.order2npix(order)
    assert distance <= healpix.max_pixel_radius_deg(order) * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(ra=ra_st, dec=dec_st, order=order_st, depth=st.integers(min_value=0, max_value=6))
def test_parent_of_fine_pixel_is_the_coarse_pixel(ra, dec, order, depth):
    """NESTED: the pixel at a deeper order, shifted right, is the pixel at the coarser one."""
    fine = healpix.ang2pix(order + depth, ra, dec)
    assert healpix.parent(fine, order=order + depth, parent_order=order) == healpix.ang2pix(order, ra, dec)


@settings(max_examples=100, deadline=None)
@given(order=st.integers(min_value=0, max_value=10), depth=st.integers(min_value=0, max_value=4), data=st.data())
def test_parent_child_round_trip(order, depth, data):
    ipix = data.draw(st.integers(min_value=0, max_value=healpix.order2npix(order) - 1))
    kids = healpix.children(ipix, order=order, child_order=order + depth)
    assert kids.shape == (4**depth,)
    assert np.all(healpix.parent(kids, order=order + depth, parent_order=order) == ipix)
    # The children's centres fall inside the parent pixel.
    ra, dec = healpix.pix2ang(order + depth, kids)
    assert np.all(healpix.ang2pix(order, ra, dec) == ipix)


def test_children_of_all_pixels_tile_the_sky_once():
    kids = healpix.children(np.arange(healpix.order2npix(2)), order=2, child_order=5).ravel()
    assert np.array_equal(np.sort(kids), np.arange(healpix.order2npix(5)))


def test_pixel_areas_sum_to_the_sphere():
    sphere_deg2 = 4 * np.pi * np.degrees(1.0) ** 2
    for order in (0, 5, 9):
        assert healpix.order2npix(order) * healpix.pixel_area_deg2(order) == pytest.approx(sphere_deg2)


def test_neighbours_are_adjacent_and_shaped_per_pixel():
    order = 6
    ipix = np.array([0, 1234, healpix.order2npix(order) - 1])
    neighbours = healpix.get_all_neighbours(order, ipix)
    assert neighbours.shape == (3, 8)
    ra, dec = healpix.pix2ang(order, ipix)
    for row, r, d in zip(neighbours, ra, dec):
        nra, ndec = healpix.pix2ang(order, row[row >= 0])
        assert np.all(angular_distance_deg(r, d, nra, ndec) < 2.5 * healpix.resolution_arcmin(order) / 60)


def test_query_disc_inclusive_covers_the_disc():
    order, ra0, dec0, radius = 5, 359.5, -89.0, 3.0
    found = healpix.query_disc(order, ra_deg=ra0, dec_deg=dec0, radius_deg=radius)
    rng = np.random.default_rng(0)
    ra = rng.uniform(0, 360, 20000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, -np.sin(np.radians(80)), 20000)))
    inside = angular_distance_deg(ra, dec, ra0, dec0) <= radius
    assert inside.sum() > 100
    assert np.all(np.isin(healpix.ang2pix(order, ra[inside], dec[inside]), found))


def test_parent_rejects_a_deeper_parent_order():
    with pytest.raises(ValueError, match="deeper than order"):
        healpix.parent(1, order=3, parent_order=4)


def test_only_the_shim_imports_healpy():
    """The shim is the one door: no other survey module may import healpy."""
    from pathlib import Path

    package = Path(healpix.__file__).parents[1]  # the whole survey package
    offenders = [
        p.name
        for p in package.rglob("*.py")
        if p.name != "healpix.py" and any(s in p.read_text() for s in ("import healpy", "from healpy"))
    ]
    assert offenders == []
