"""``halo-train blind`` (training.blind): test folds never train or calibrate, and the summary adds up."""

from __future__ import annotations

import numpy as np
import pytest

from training.blind import BlindConfig, poisson_interval, train_with_mining, wilson_interval
from training.fields import data_sources, load_fields
from training.generated import read_generated

from .training_helpers import write_generated


def test_wilson_interval_stays_within_zero_and_one_at_the_extremes():
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.83 < low < 0.85
    assert all(np.isnan(wilson_interval(0, 0)))


def test_poisson_interval_brackets_the_count():
    low, high = poisson_interval(15)
    assert low < 15 < high and 8 < low < 9 and 24 < high < 25.5


def test_generated_halos_without_a_training_share_are_refused_before_any_training(tmp_path):
    generated = read_generated(write_generated(tmp_path / "g", sources=[]))
    with pytest.raises(ValueError, match="1:generated"):
        train_with_mining([], [], {}, BlindConfig(), seed=0, log=lambda _: None, generated=generated)


@pytest.fixture(scope="module")
def fields(gleam_dir):
    from survey.sky.groups import overlap_groups

    sources = data_sources(gleam_dir)
    positions = np.array([s.centre_radec for s in sources])
    return load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))


@pytest.mark.training
def test_blind_protocol_keeps_each_test_fold_out_of_training_and_calibration(fields):
    from training.blind import blind_protocol, build_pools
    from training.blind_report import offset_table, sources_table
    from training.samples import PoolSizes
    from training.train import TrainConfig

    config = BlindConfig(train=TrainConfig(arch="cnn", epochs=1, steps_per_epoch=2, batch_size=32, patience=1,
                                           normalisation="log", kind_shares=BlindConfig().train.kind_shares),
                         sizes=PoolSizes(injected=4, empty=3, compact=3), n_folds=2, val_fraction=0.34, mining_rounds=0,
                         grid_flux_150mhz_jy=(3.2,), grid_r_e_arcmin=(2.0,), per_cell=1, baselines=False)
    pools = build_pools(fields, config)
    result = blind_protocol(fields, pools, config, log=lambda _: None)
    groups = {f.name: f.group for f in fields}
    assert sorted(n for fold in result["folds"] for n in fold["test_fields"]) == sorted(f.name for f in fields)
    for fold in result["folds"]:
        test_groups = {groups[n] for n in fold["test_fields"]}
        assert not test_groups & {groups[n] for n in fold["val_fields"]}
        assert {c["field"] for c in fold["completeness"]} <= set(fold["test_fields"])
        assert 0.0 < fold["threshold"] <= 1.0
    summary = result["summary"]
    assert summary["false_candidates"]["count"] == sum(f["test_false_candidates"] for f in result["folds"])
    assert summary["sources"]["blind_cnn"]["n"] == len(fields)
    assert summary["completeness_cells"]["3.2Jy_2arcmin"]["n"] == config.per_cell * config.n_folds
    assert any("CNN, blind-scan training" in line for line in sources_table(summary))
    offsets = offset_table(result)
    assert offsets[2].startswith("| median score") and offsets[3].startswith("| at or above the operating point")


def test_ring_max_scores_take_each_rings_best_window_and_nan_only_for_an_empty_ring():
    from survey.images.halos import Halo
    from training.blind import recovery_rows, ring_max_scores
    from training.scan import Recovery

    # Windows at 0.5', 1.5' (two), 2.5' and 5' from the halo; none in the 3-4' ring.
    recovery = Recovery(Halo(10.0, -30.0, 1.0, 1.0), "field", 0.9, np.arange(5), np.array([0.9, 0.2, 0.7, 0.4, 0.1]),
                        np.array([0.5, 1.5, 1.5, 2.5, 5.0]), 10)
    scores = ring_max_scores(recovery)
    assert np.allclose(scores[:3], [0.9, 0.7, 0.4])
    assert np.isnan(scores[3]) and np.isclose(scores[4], 0.1)
    np.testing.assert_array_equal(recovery_rows([recovery], 0.5)[0]["ring_max_scores"], scores)


def test_offset_table_counts_only_rings_that_hold_a_window_and_drops_runs_that_recorded_none():
    from training.blind_report import offset_table

    def run(rings):
        cells = [{"flux_150mhz_jy": 0.8, "r_e_arcmin": 2.0, "ring_max_scores": r} for r in rings]
        return {"folds": [{"threshold": 0.5, "completeness": cells}]}

    nan = float("nan")
    lines = offset_table(run([[0.9, 0.4, nan, 0.6, 0.1], [0.7, 0.6, nan, nan, 0.2]]))
    assert lines[2] == "| median score | 0.800 | 0.500 | - | 0.600 | 0.150 |"
    assert lines[3] == "| at or above the operating point | 100% | 50% | - | 100% | 0% |"
    assert offset_table(run([[nan] * 5, [nan] * 5])) == []
