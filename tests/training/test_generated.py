"""Generated halos join a fold's class 1 only when their generator never saw that fold's test sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.data import SampleSet
from training.generated import (
    PAPER_RATIO,
    choose_for_fold,
    generated_shares,
    read_generated,
    with_generated,
)
from training.train import sample_weights

from .training_helpers import write_generated


def _train_set(n_halo=3, n_other=2, n_side=4):
    n = n_halo + n_other + n_side
    return SampleSet(np.zeros((n, 64, 64, 4), np.float32), np.array([1] * n_halo + [0] * (n_other + n_side)),
                     np.array([f"s{i}" for i in range(n)]), np.array(["centre"] * (n_halo + n_other) + ["side"] * n_side),
                     np.full((n, 4), 0.01, np.float32))


def test_read_generated_keeps_the_generators_sources_and_gives_noise_of_a_third_of_the_clip_level(tmp_path):
    generated = read_generated(write_generated(tmp_path / "g", sources=["A2744", "A3404"]))
    assert generated.trained_on == {"A2744", "A3404"} and generated.kind == "ddpm" and generated.images.shape == (8, 64, 64, 4)
    np.testing.assert_allclose(generated.noise, [0.01, 0.01, 0.02, 0.03], rtol=1e-6)


def test_samples_that_do_not_say_what_their_generator_saw_are_refused(tmp_path):
    directory = tmp_path / "old"
    directory.mkdir()
    np.savez_compressed(directory / "samples.npz", images=np.zeros((1, 64, 64, 4), np.float32),
                        meta=json.dumps({"model": {"kind": "ddpm"}}))
    with pytest.raises(ValueError, match="old: the samples do not record which sources"):
        read_generated(directory)


def test_a_fold_gets_the_first_set_whose_generator_never_saw_its_test_sources(tmp_path):
    saw_a = read_generated(write_generated(tmp_path / "saw-a", sources=["A", "B"]))
    saw_c = read_generated(write_generated(tmp_path / "saw-c", sources=["B", "C"]))
    assert choose_for_fold([saw_a, saw_c], ["A", "X"], fold="fold 0") is saw_c
    assert choose_for_fold([saw_a, saw_c], ["X"], fold="fold 1") is saw_a


def test_a_fold_no_generator_is_fit_for_is_refused_naming_the_fold_and_the_leaking_sources(tmp_path):
    saw_all = read_generated(write_generated(tmp_path / "all", sources=["A", "B", "C"]))
    with pytest.raises(ValueError, match=r"repeat 0 fold 2: .*all trained on A, C.*--exclude \"A,C\""):
        choose_for_fold([saw_all], ["C", "A"], fold="repeat 0 fold 2")


def test_generated_images_join_class_1_as_their_own_kind_with_their_noise(tmp_path):
    generated = read_generated(write_generated(tmp_path / "g", sources=["A"], n=6))
    train = _train_set()
    both = with_generated(train, generated, n=4, seed=1)
    assert len(both) == len(train) + 4
    assert (both.y[len(train):] == 1).all() and (both.kind[len(train):] == "generated").all()
    np.testing.assert_array_equal(both.x[:len(train)], train.x)
    np.testing.assert_allclose(both.noise[len(train):], np.tile(generated.noise, (4, 1)))
    # The four drawn are distinct images of the set.
    drawn = both.x[len(train):].reshape(4, -1)
    assert len({row.tobytes() for row in drawn}) == 4
    assert all(any(np.array_equal(row, image.ravel()) for image in generated.images) for row in drawn)


def test_class_1_weight_splits_between_real_and_generated_at_the_ratio(tmp_path):
    generated = read_generated(write_generated(tmp_path / "g", sources=["A"], n=6))
    both = with_generated(_train_set(n_halo=3), generated)
    weights = sample_weights(both, generated_shares(PAPER_RATIO))
    real, made = weights[(both.y == 1) & (both.kind == "centre")].sum(), weights[both.kind == "generated"].sum()
    assert made / real == pytest.approx(PAPER_RATIO, rel=1e-5)
    assert weights[both.y == 1].sum() == pytest.approx(weights[both.y == 0].sum(), rel=1e-5)
    # Class 0 keeps the paper's half-and-half between non-halo centres and side cut-outs.
    zero = both.y == 0
    assert weights[zero & (both.kind == "side")].sum() == pytest.approx(weights[zero & (both.kind == "centre")].sum(), rel=1e-5)


def test_a_negative_ratio_is_refused():
    with pytest.raises(ValueError, match="ratio must be >= 0"):
        generated_shares(-0.5)
