"""Seed ensembles (training.ensemble): the average is the members' mean, exports as one ONNX graph, and member k is
the model ``--training-seed k`` trains."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.training]
keras = pytest.importorskip("keras")

from survey.model.modelcard import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from training.ensemble import average_of, member_seed  # noqa: E402
from training.models import ClassifierConfig, build_classifier  # noqa: E402

NAMES = ("A2744", "A2751", "A0013", "ORC 1", "AS1063", "A3399", "AS1099", "A2811", "AS0084", "ORC 5")


def _members(n: int) -> list:
    return [build_classifier("cnn", ClassifierConfig(seed=k)) for k in range(n)]


def test_the_average_is_the_mean_of_the_members_probabilities_under_the_members_names():
    members = _members(3)
    x = np.random.default_rng(0).normal(size=(5, *members[0].input_shape[1:])).astype(np.float32)
    each = np.stack([np.asarray(m.predict(x, verbose=0)) for m in members])
    assert np.ptp(each, axis=0).max() > 1e-4  # members differ, so the mean is a real check
    ensemble = average_of(members)
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), each.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert ensemble.inputs[0].name.startswith(INPUT_NAME) and ensemble.layers[-1].name == OUTPUT_NAME
    assert ensemble.name == members[0].name
    assert average_of(members[:1]) is members[0]


def test_members_of_different_inputs_or_none_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        average_of([])
    dense = build_classifier("cnn")
    other = keras.Sequential([keras.Input((32, 32, 4)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="different inputs"):
        average_of([dense, other])


def test_member_k_has_the_seed_a_training_seed_k_run_gives():
    assert [member_seed(0, k) for k in range(3)] == [0, 1, 2]
    assert member_seed(1, 0) == 1


def test_the_ensemble_exports_to_one_onnx_graph_the_survey_runs_with_parity(tmp_path):
    from survey.model.infer import OnnxClassifier
    from survey.model.modelcard import TrainingRecord
    from survey.model.normalisation import Normalisation
    from survey.model.preprocess import channels_last
    from training.export import export_with_card

    members = _members(2)
    ensemble = average_of(members)
    planes = np.random.default_rng(1).normal(size=(6, 4, 64, 64)).astype(np.float32)
    export_with_card(ensemble, tmp_path / "e.onnx", normalisation=Normalisation("log-minmax-sym", -1.0, 2.0, 0.05),
                     training=TrainingRecord(sources=(), protocol="blind", seed=0, epochs=1),
                     check_inputs=channels_last(planes), threshold=0.9, architecture="cnn")
    classifier = OnnxClassifier(tmp_path / "e.onnx", providers="cpu")
    expected = np.asarray(ensemble.predict(channels_last(planes), verbose=0))[:, 1]
    np.testing.assert_allclose(classifier.predict(planes), expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.realdata
def test_an_ensembles_first_member_is_the_single_run_and_the_record_names_every_member(gleam_dir):
    from survey.sky.groups import overlap_groups
    from training.blind import BlindConfig, build_pools, train_ensemble
    from training.fields import data_sources, load_fields
    from training.samples import PoolSizes
    from training.scan import keras_scorer
    from training.train import TrainConfig

    sources = [s for s in data_sources(gleam_dir) if s.name in NAMES]
    positions = np.array([s.centre_radec for s in sources])
    fields = load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))
    config = BlindConfig(train=TrainConfig(arch="cnn", epochs=1, steps_per_epoch=2, batch_size=32, patience=1,
                                           normalisation="log", kind_shares=BlindConfig().train.kind_shares),
                         sizes=PoolSizes(injected=4, empty=3, compact=3), mining_rounds=0)
    pools = build_pools(fields, config, log=lambda _: None)
    train, val = fields[:7], fields[7:]
    single, norm_single, _ = train_ensemble(train, val, pools, config, seed=5, log=lambda _: None)
    pair, norm_pair, record = train_ensemble(train, val, pools, BlindConfig(**{**config.__dict__, "ensemble": 2}),
                                             seed=5, log=lambda _: None)
    assert norm_single == norm_pair
    assert [m["seed"] for m in record["members"]] == [5, 6] and record["rounds"] == record["members"][0]["rounds"]
    from survey.model.preprocess import IMAGE_COLUMN, cut_windows

    planes = cut_windows(val[0].clipped, val[0].ra_win[:16], val[0].dec_win[:16], normalisation=norm_single)[IMAGE_COLUMN]
    first = pair.get_layer("member_0").layers[0]
    np.testing.assert_allclose(keras_scorer(first)(planes), keras_scorer(single)(planes), atol=1e-6)
    assert not np.allclose(keras_scorer(pair)(planes), keras_scorer(single)(planes), atol=1e-6)
