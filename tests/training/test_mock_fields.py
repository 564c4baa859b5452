"""Mock-sky training fields (training.mock_fields): another sky than the demo's, and only ever training data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from survey.sky.geometry import angular_distance_deg
from training.blind import BlindConfig, train_with_mining
from training.mock_fields import mock_field_centres, mock_fields
from training.samples import PoolSizes, field_pool


@pytest.fixture(scope="module")
def two_fields():
    return mock_fields(2)


def test_mock_fields_are_halo_free_negatives_of_their_own_groups_with_usable_windows(two_fields):
    assert [f.name for f in two_fields] == ["mock1-00", "mock1-01"]
    assert [f.label for f in two_fields] == [0, 0]
    assert [f.group for f in two_fields] == [-1, -2]
    for f in two_fields:
        assert 2.5 < f.background_area_deg2 < 4.0  # as a real field's 2.8-3.4 deg2
        assert not f.excluded.any()
        assert f.compact_ra.size > 5  # the mock sky's bright sources are there to be refused


def test_mock_fields_render_the_same_sky_every_time(two_fields):
    again = mock_fields(1)[0]
    for band, image in two_fields[0].clipped.images.items():
        np.testing.assert_array_equal(image.data, again.clipped.images[band].data)


def test_seed_zero_the_demo_sky_is_refused():
    with pytest.raises(ValueError, match="seed 0"):
        mock_fields(1, seed=0)


def test_field_centres_are_spread_over_the_southern_sky():
    ra, dec = mock_field_centres(12)
    assert np.all((dec > -70) & (dec < -10))
    separations = [angular_distance_deg(ra[i], dec[i], np.delete(ra, i), np.delete(dec, i)).min() for i in range(12)]
    assert min(separations) > 5.0  # no two fields share sky


def test_mock_samples_train_but_the_scaling_is_fitted_on_real_fields_only(two_fields, monkeypatch):
    import training.blind as blind

    real, mock = two_fields[0], two_fields[1]
    sizes = PoolSizes(injected=3, empty=2, compact=2)
    pools = {f.name: field_pool(f, sizes=sizes, prior=BlindConfig().prior, seed=0) for f in two_fields}
    seen = {}
    real_fit = blind.fit_normalisation

    def fit(samples, kind):
        seen["fitted_on"] = set(samples.source)
        return real_fit(samples, kind=kind)

    def train(train, val, *, config, norm):
        seen["trained_on"] = set(train.source)
        seen["validated_on"] = set(val.source)
        return SimpleNamespace(model=None, best_epoch=1)

    monkeypatch.setattr(blind, "fit_normalisation", fit)
    monkeypatch.setattr(blind, "train_classifier", train)
    config = BlindConfig(mining_rounds=0)
    train_with_mining([real], [real], pools, config, seed=0, log=lambda _: None, mock=[mock])
    assert seen["fitted_on"] == {real.name}
    assert seen["trained_on"] == {real.name, mock.name}
    assert seen["validated_on"] == {real.name}
