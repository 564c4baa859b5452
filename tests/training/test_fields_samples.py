"""Real fields as backgrounds (training.fields), their samples (training.samples) and scans of them (training.scan)."""

from __future__ import annotations

import numpy as np
import pytest

from survey.images.halos import Halo
from survey.model.normalisation import Normalisation
from survey.model.preprocess import cut_windows
from survey.sky.geometry import angular_distance_deg
from training.fields import EXCLUSION_RADIUS_ARCMIN, catalogued_clusters, data_sources, load_fields, near_any
from training.samples import HaloPrior, PoolSizes, field_pool
from training.scan import FieldScan, false_candidates, recover, threshold_for_rate

NAMES = ("A2744", "A2751", "ORC 1")
"""A halo field, the non-halo field it overlaps, and a field far from both."""


@pytest.fixture(scope="module")
def fields(gleam_dir):
    sources = [s for s in data_sources(gleam_dir) if s.name in NAMES]
    return load_fields(sources, [0, 0, 1])


def test_every_usable_window_gets_a_full_cut_out_in_every_band(fields):
    for f in fields:
        pick = np.linspace(0, f.ipix.size - 1, 40).astype(int)
        cut = cut_windows(f.clipped, f.ra_win[pick], f.dec_win[pick])
        assert (cut["outside_fraction"] == 0).all(), f.name
        assert 900 < f.ipix.size < 1200  # ~3.4 deg2 of the 2.33-deg 170-231 MHz file at 3.44' spacing


def test_windows_near_clusters_and_halo_sources_are_excluded_and_no_others(fields):
    clusters = catalogued_clusters()
    for f in fields:
        centres = (np.append(clusters[0], f.ra_deg if f.label else []), np.append(clusters[1], f.dec_deg if f.label else []))
        expected = near_any(f.ra_win, f.dec_win, *centres, radius_arcmin=EXCLUSION_RADIUS_ARCMIN)
        np.testing.assert_array_equal(f.excluded, expected)
    halo = next(f for f in fields if f.name == "A2744")
    near_centre = angular_distance_deg(halo.ra_win, halo.dec_win, halo.ra_deg, halo.dec_deg) * 60 < 14
    assert halo.excluded[near_centre].all()


def test_compact_sources_are_bright_peaks_away_from_clusters(fields):
    for f in fields:
        assert f.compact_ra.size > 5, f.name
        band = f.clipped.clipped["139-170"]
        from survey.images.base import world_to_pixel

        x, y = world_to_pixel(f.clipped.images["139-170"].wcs, f.compact_ra, f.compact_dec)
        peaks = band.pixels[np.round(y).astype(int), np.round(x).astype(int)]
        assert (peaks >= 8 * band.noise.sigma * 0.999).all()


def test_a_field_pool_holds_each_kind_with_its_label_and_is_drawn_from_its_seed(fields):
    sizes = PoolSizes(injected=6, empty=5, compact=4)
    pool = field_pool(fields[0], sizes=sizes, prior=HaloPrior(), seed=3)
    kinds = {k: int(n) for k, n in zip(*np.unique(pool.kind, return_counts=True))}
    assert kinds == {"centre": 1, "injected": 6, "empty": 5, "compact": 4}
    assert set(pool.y[pool.kind == "injected"]) == {1} and set(pool.y[np.isin(pool.kind, ["empty", "compact"])]) == {0}
    assert pool.y[pool.kind == "centre"][0] == fields[0].label
    injected = pool.kind == "injected"
    assert (pool.offset_arcmin[injected] <= HaloPrior().max_offset_arcmin + 1e-9).all()
    assert np.isnan(pool.flux_150mhz_jy[~injected]).all() and (pool.flux_150mhz_jy[injected] > 0).all()
    again = field_pool(fields[0], sizes=sizes, prior=HaloPrior(), seed=3)
    np.testing.assert_array_equal(pool.x, again.x)


def test_the_threshold_keeps_to_its_false_candidate_rate_on_the_scans_it_is_chosen_on(fields):
    f = fields[2]
    scores = np.zeros(f.ipix.size, np.float32)
    isolated = np.flatnonzero(~f.excluded)[[10, 300, 600]]
    scores[isolated] = [0.9, 0.8, 0.7]
    scan = FieldScan(f, scores, ~f.excluded)
    one_allowed = 1.5 / scan.area_deg2
    threshold = threshold_for_rate([scan], target_per_deg2=one_allowed)
    assert 0.8 < threshold <= 0.9 and false_candidates([scan], threshold)[0] == 1
    assert false_candidates([scan], 0.75)[0] == 2


def test_a_bright_injected_halo_is_found_in_targets_mode_and_by_a_blind_scan(fields):
    f = fields[2]
    identity = Normalisation("minmax", 0.0, 1.0)

    def central_brightness(planes: np.ndarray) -> np.ndarray:
        """A stand-in scorer: 1 when the 170-231 MHz centre is bright."""
        return (planes[:, 3, 28:36, 28:36].max(axis=(1, 2)) > 0.3).astype(np.float32)

    at = np.flatnonzero(~f.excluded)[500]
    halo = Halo(float(f.ra_win[at]), float(f.dec_win[at]), flux_150mhz_jy=5.0, r_e_arcmin=1.0)
    (result,) = recover(f, [halo], scorer=central_brightness, normalisation=identity, seed=1)
    assert result.target_score == 1.0 and result.recovered(0.5)
