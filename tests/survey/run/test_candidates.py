"""Pure candidate logic: threshold, merging over HEALPix neighbours (across tiles), flags, rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.catalogs.table import make_catalog_table
from survey.exceptions import CatalogError
from survey.output.schema import CATALOGS, FLAG_NAMES, candidate_schema, score_schema
from survey.run.candidates import (
    DEFAULT_NOISE_FACTOR,
    NOISE_RANGE_METRIC,
    TRUNCATED_MAX_FRACTION,
    candidate_rows,
    default_noise_max_jy,
    detections,
    match_columns,
    merge_detections,
    neighbour_groups,
    noise_max_jy,
    quality_flags,
    score_rows,
    with_merge_and_matches,
)
from survey.sky import healpix
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE, band_column
from survey.sky.tiling import window_neighbours

ORDER = 9
TILE_ORDER = 5


def a_tile_border_pair() -> tuple[int, int]:
    """Two neighbouring windows at ORDER whose parents (tiles at TILE_ORDER) differ."""
    windows = healpix.children(100, order=TILE_ORDER, child_order=ORDER)
    neighbours = window_neighbours(windows, order=ORDER)
    parents = healpix.parent(neighbours, order=ORDER, parent_order=TILE_ORDER)
    row, col = np.argwhere((neighbours >= 0) & (parents != 100))[0]
    return int(windows[row]), int(neighbours[row, col])


def patch(centre: int) -> np.ndarray:
    """A window and its 8 neighbours."""
    return np.concatenate([[centre], window_neighbours([centre], order=ORDER)[0]])


def test_detection_threshold_is_inclusive():
    assert detections([0.94, 0.95, 0.99], threshold=0.95).tolist() == [False, True, True]


def test_neighbouring_windows_form_one_group_and_distant_ones_another():
    block = patch(5_000_000)
    far = np.array([5_000_000 + 10_000])
    labels = neighbour_groups(np.concatenate([block, far]), order=ORDER)
    assert len(set(labels[:9])) == 1
    assert labels[9] != labels[0]


def test_merge_keeps_the_peak_and_counts_the_merged_windows():
    block = patch(5_000_000)
    score = np.linspace(0.95, 0.99, block.size)
    peaks, sizes = merge_detections(block, score, order=ORDER)
    assert block[peaks].tolist() == [block[np.argmax(score)]]
    assert sizes.tolist() == [9]


def test_merge_joins_detections_across_a_tile_boundary():
    inside, across = a_tile_border_pair()
    assert healpix.parent(across, order=ORDER, parent_order=TILE_ORDER) != 100
    peaks, sizes = merge_detections([inside, across], [0.96, 0.98], order=ORDER)
    assert np.asarray([inside, across])[peaks].tolist() == [across]
    assert sizes.tolist() == [2]


def test_merge_breaks_ties_by_lower_window_index():
    block = patch(5_000_000)
    peaks, _ = merge_detections(block, np.full(block.size, 0.97), order=ORDER)
    assert block[peaks].tolist() == [block.min()]


def test_merge_of_nothing_is_empty():
    peaks, sizes = merge_detections([], [], order=ORDER)
    assert peaks.size == 0 and sizes.size == 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=30, unique=True), st.randoms(use_true_random=False))
def test_merge_does_not_depend_on_row_order_and_no_two_candidates_touch(offsets, rnd):
    ipix = 3_000_000 + np.array(offsets, np.int64)
    score = np.round(np.array([rnd.random() for _ in offsets]), 2)
    peaks, sizes = merge_detections(ipix, score, order=ORDER)
    order = np.array(rnd.sample(range(ipix.size), ipix.size))
    peaks2, sizes2 = merge_detections(ipix[order], score[order], order=ORDER)
    assert sorted(ipix[peaks].tolist()) == sorted(ipix[order][peaks2].tolist())
    assert sizes.sum() == ipix.size == sizes2.sum()
    chosen = set(ipix[peaks].tolist())
    for window in chosen:
        assert not chosen & set(window_neighbours([window], order=ORDER)[0].tolist())


def window_columns(n: int, **overrides) -> dict[str, np.ndarray]:
    columns = {
        "outside_fraction": np.zeros(n, np.float32),
        "zero_fraction": np.zeros(n, np.float32),
        **{band_column("noise", b): np.full(n, 0.01, np.float32) for b in BAND_NAMES},
    }
    columns.update(overrides)
    return columns


def test_flags_mark_truncated_edge_and_noisy_windows():
    limits = default_noise_max_jy()
    noisy = np.array([0.01, 0.01, limits["139-170"] * 1.01, 0.01], np.float32)
    columns = window_columns(
        4,
        zero_fraction=np.array([0.0, TRUNCATED_MAX_FRACTION + 0.01, 0.0, TRUNCATED_MAX_FRACTION], np.float32),
        outside_fraction=np.array([0.0, 0.0, 0.0, 0.01], np.float32),
        **{band_column("noise", "139-170"): noisy},
    )
    flags = quality_flags(columns, noise_max=limits)
    assert flags["truncated"].tolist() == [False, True, False, False]
    assert flags["noise_high"].tolist() == [False, False, True, False]
    assert flags["edge"].tolist() == [False, False, False, True]


def test_noise_limits_come_from_the_card_when_it_has_a_training_range():
    class Card:
        metrics = {NOISE_RANGE_METRIC: {"72-103": [0.01, 0.123]}}

    limits = noise_max_jy(Card())
    assert limits["72-103"] == 0.123
    assert limits["170-231"] == default_noise_max_jy()["170-231"]
    # The README's ~10 mJy/beam at 200 MHz, scaled as 1/nu, times the documented factor.
    assert default_noise_max_jy()["170-231"] == pytest.approx(DEFAULT_NOISE_FACTOR * 0.010 * 200 / 200.5)


def test_match_columns_name_the_nearest_cluster_and_leave_others_null():
    cat = make_catalog_table(name=["PSZ2 G008.94-81.22"], ra_deg=[3.59], dec_deg=[-30.40], z=[0.307], catalog="psz2")
    out = match_columns([3.59 + 1 / 60, 100.0], [-30.40, 0.0], {"psz2": cat}, radius_arcmin=5.0)
    assert out["psz2_name"].to_pylist() == ["PSZ2 G008.94-81.22", None]
    assert out["psz2_sep_arcmin"][0].as_py() == pytest.approx(np.cos(np.radians(30.4)) * 1.0, rel=1e-3)
    assert out["psz2_z"].to_pylist()[1] is None
    assert out["mcxc_name"].to_pylist() == [None, None]  # not loaded: not searched


def scored_windows(n: int, *, tile: int = 100, keep: bool = True, names=None) -> pa.Table:
    """Rows shaped like the inference stage's output, at window centres inside ``tile``."""
    ipix = healpix.children(tile, order=TILE_ORDER, child_order=ORDER)[:n]
    ra, dec = healpix.pix2ang(ORDER, ipix)
    image = np.random.default_rng(0).normal(0, 0.01, (n, CUTOUT_SIZE * CUTOUT_SIZE * 4)).astype(np.float32)
    columns = {
        "tile": np.full(n, tile), "window_ipix": ipix, "ra": ra, "dec": dec,
        "score": np.linspace(0.9, 0.99, n).astype(np.float32),
        "target_name": names or [""] * n, "target_catalog": ["psz2" if names else ""] * n,
        **window_columns(n),
        **{band_column("peak", b): np.full(n, 0.2, np.float32) for b in BAND_NAMES},
        "image": pa.array(list(image) if keep else [None] * n, type=pa.list_(pa.float32())),
    }
    return pa.table(columns)


def test_candidate_rows_follow_the_schema_with_cutouts_and_targets():
    table = candidate_rows(scored_windows(3, names=["A 1/2", "B", "C"]), run_id="r1", tile_order=TILE_ORDER,
                           window_order=ORDER, noise_max=default_noise_max_jy())
    assert table.schema.equals(candidate_schema(with_cutout=True), check_metadata=False)
    assert table.column("target_name").to_pylist() == ["A 1/2", "B", "C"]
    assert table.column("flags").to_pylist() == ["ok"] * 3
    assert table.column("n_windows").to_pylist() == [1, 1, 1]
    assert all(table.column(f"{cat}_name").null_count == 3 for cat in CATALOGS)


def test_blind_scan_rows_have_null_targets_and_no_cutout_when_not_kept():
    table = candidate_rows(scored_windows(2, keep=False), run_id="r1", tile_order=TILE_ORDER, window_order=ORDER,
                           noise_max=default_noise_max_jy(), with_cutout=False)
    assert table.column("target_name").null_count == 2
    assert "cutout" not in table.column_names


def test_kept_cutout_missing_on_a_candidate_is_refused():
    with pytest.raises(CatalogError, match="cutout"):
        candidate_rows(scored_windows(2, keep=False), run_id="r1", tile_order=TILE_ORDER, window_order=ORDER,
                       noise_max=default_noise_max_jy(), with_cutout=True)


def test_final_rows_carry_merge_counts_and_matches():
    rows = candidate_rows(scored_windows(2), run_id="r1", tile_order=TILE_ORDER, window_order=ORDER,
                          noise_max=default_noise_max_jy())
    cat = make_catalog_table(name=["X"], ra_deg=rows.column("ra").to_numpy()[:1], dec_deg=rows.column("dec").to_numpy()[:1],
                             z=[0.1], catalog="mcxc")
    matches = match_columns(rows.column("ra").to_numpy(), rows.column("dec").to_numpy(), {"mcxc": cat}, radius_arcmin=1.0)
    final = with_merge_and_matches(rows, n_windows=[7, 1], matches=matches)
    assert final.column("n_windows").to_pylist() == [7, 1]
    assert final.column("mcxc_name").to_pylist() == ["X", None]
    assert final.column("mcxc_z").to_pylist()[0] == pytest.approx(0.1)


def test_score_rows_follow_the_score_schema():
    table = score_rows(scored_windows(4), run_id="r1")
    assert table.schema.equals(score_schema(), check_metadata=False)
    assert table.num_rows == 4
    assert set(FLAG_NAMES) == {"truncated", "noise_high", "edge", "bad_pixels"}
