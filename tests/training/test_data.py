"""Training data (training.data): real cut-outs, side cut-outs, manifest, weights, input scaling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.data import (
    fit_normalisation,
    load_training_set,
    median_clip_threshold,
    samples_of,
    side_positions,
    write_manifest,
)
from training.train import sample_weights


@pytest.fixture(scope="module")
def sources(gleam_dir):
    return load_training_set(gleam_dir)


def test_real_training_set_has_cutouts_groups_and_sides(sources):
    assert len(sources) == 46
    assert all(s.centre.shape == (64, 64, 4) for s in sources)
    halos = [s for s in sources if s.label == 1]
    assert len(halos) == 23 and all(s.sides.shape == (8, 64, 64, 4) for s in halos)
    assert all(len(s.sides) == 0 for s in sources if s.label == 0)
    by_name = {s.name: s for s in sources}
    assert by_name["ORC 2"].group == by_name["ORC 3"].group
    assert by_name["A2744"].group == by_name["A2751"].group
    # Side cut-outs are real sky, not padding: every one holds data in every band.
    assert all((np.abs(side).reshape(-1, 4).max(0) > 0).all() for s in halos for side in s.sides)


def test_side_positions_stay_on_ring_near_pole_and_ra_zero():
    from survey.sky.geometry import angular_distance_deg

    for ra, dec in [(0.2, -30.0), (359.9, 10.0), (120.0, -82.0)]:
        positions = np.array(side_positions(ra, dec))
        dist = angular_distance_deg(ra, dec, positions[:, 0], positions[:, 1])
        assert np.allclose(dist, 0.8, atol=0.02)


def test_manifest_lists_files_with_hashes(sources, gleam_dir, tmp_path):
    path = write_manifest(sources, tmp_path / "manifest.json", root=gleam_dir)
    manifest = json.loads(path.read_text())
    a2744 = next(s for s in manifest["sources"] if s["name"] == "A2744")
    assert a2744["label"] == 1 and a2744["split"] == "test"
    assert set(a2744["files"]) == {"72-103", "103-134", "139-170", "170-231"}
    assert a2744["files"]["72-103"]["path"] == "TEST_DATA_1/abell_2744_Gleam72-103_clipped.fits"
    assert len(a2744["files"]["72-103"]["sha256"]) == 64


def test_sample_weights_balance_classes_and_side_cutouts(sources):
    samples = samples_of(sources)
    w = sample_weights(samples)
    halo, side = samples.y == 1, samples.kind == "side"
    assert w[halo].sum() == pytest.approx(w[~halo].sum())
    assert w[side].sum() == pytest.approx(w[~halo & ~side].sum())


def test_median_clip_threshold_is_the_faintest_surviving_pixel():
    x = np.zeros((3, 4, 4, 2), np.float32)
    x[0, 0, 0, 0], x[0, 1, 1, 0] = 0.2, -0.5  # image 0, band 0: faintest |pixel| 0.2
    x[1, 2, 2, 0] = 0.4
    x[0, 0, 0, 1], x[2, 3, 3, 1] = 0.1, 0.3  # image 1, band 1 and image 2, band 0 stay empty
    assert median_clip_threshold(x) == pytest.approx(np.median([0.2, 0.4, 0.1, 0.3]))
    with pytest.raises(ValueError, match="empty"):
        median_clip_threshold(np.zeros((2, 4, 4, 2), np.float32))


def test_log_normalisation_spreads_the_real_pixels_that_minmax_squeezes(sources):
    """The reason the option exists: under global min-max almost every real pixel sits in a
    sliver of the input range; the log scaling spreads the same pixels out."""
    samples = samples_of(sources)
    spread = {}
    for kind in ("minmax", "log"):
        norm = fit_normalisation(samples, kind=kind)
        scaled = norm.apply(samples.x)
        low, high = np.quantile(scaled[samples.x != 0], [0.01, 0.99])
        spread[kind] = (high - low) / (scaled.max() - scaled.min())
    assert fit_normalisation(samples, kind="log").kind == "log-minmax-sym"
    assert spread["log"] > 4 * spread["minmax"]
    with pytest.raises(ValueError, match="normalisation must be one of"):
        fit_normalisation(samples, kind="zscore")
