"""The gradient penalty on 2x2 images, the paper's WGAN tables, and a small conditional WGAN that trains and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.training
tf = pytest.importorskip("tensorflow")

from training.models.gan import GANConfig, build_critic, build_generator  # noqa: E402
from training.wgan import WGANConfig, draw_alpha, gradient_penalty, interpolate  # noqa: E402


def conv_params(kernel: int, c_in: int, c_out: int) -> int:
    return kernel * kernel * c_in * c_out + c_out


def dense_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_alpha_is_uniform_on_zero_one_one_per_sample():
    alpha = draw_alpha(20_000, seed=0).numpy()
    assert alpha.shape == (20_000, 1, 1, 1)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0  # a normal draw (keras-io's old bug) would leave [0, 1]
    assert alpha.mean() == pytest.approx(0.5, abs=0.01)
    assert alpha.var() == pytest.approx(1 / 12, abs=0.003)


def test_interpolates_lie_between_real_and_fake():
    real, fake = np.ones((2, 2, 2, 1), np.float32), -np.ones((2, 2, 2, 1), np.float32)
    alpha = tf.constant([1.0, 0.25], shape=(2, 1, 1, 1))
    points = interpolate(real, fake, alpha).numpy()
    np.testing.assert_allclose(points[0], real[0])
    np.testing.assert_allclose(points[1], np.full((2, 2, 1), -0.5))


def test_the_penalty_is_about_zero_for_a_one_lipschitz_linear_critic_with_unit_norm_weights():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 2, 1)).astype(np.float32)
    w /= np.linalg.norm(w)

    def critic(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])

    real, fake = rng.standard_normal((16, 2, 2, 1)), rng.standard_normal((16, 2, 2, 1))
    penalty = gradient_penalty(critic, real, fake, draw_alpha(16, seed=1))
    assert float(penalty) == pytest.approx(0.0, abs=1e-6)
    doubled = gradient_penalty(lambda x: 2.0 * critic(x), real, fake, draw_alpha(16, seed=1))
    assert float(doubled) == pytest.approx(1.0, abs=1e-5)  # gradient norm 2 everywhere: (2 - 1)^2


def test_the_penalty_is_evaluated_at_the_interpolates_not_at_the_real_or_fake_images():
    """With D(x) = |x|^2 / 2 the gradient is x itself, so the penalty reveals where it was taken."""
    rng = np.random.default_rng(2)
    real = rng.standard_normal((8, 2, 2, 1)).astype(np.float32)
    fake = rng.standard_normal((8, 2, 2, 1)).astype(np.float32)
    alpha = draw_alpha(8, seed=3)

    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    points = alpha.numpy() * real + (1 - alpha.numpy()) * fake
    expected = np.mean((np.linalg.norm(points.reshape(8, -1), axis=1) - 1.0) ** 2)
    assert float(gradient_penalty(critic, real, fake, alpha)) == pytest.approx(expected, rel=1e-5)
    at_real = np.mean((np.linalg.norm(real.reshape(8, -1), axis=1) - 1.0) ** 2)
    assert abs(expected - at_real) > 1e-3


def test_the_generator_and_critic_have_the_parameter_counts_of_tables_a2_and_a1():
    """One band and 10 labels, as the paper's single-frequency WGAN; counts from the layer formulas."""
    config = GANConfig(channels=1, n_labels=10)
    generator = (10 * 64 + dense_params(64, 16) + dense_params(128, 4096) + conv_params(8, 257, 256)
                 + conv_params(1, 256, 128) + conv_params(8, 128, 64) + conv_params(1, 64, 1) + dense_params(4096, 4096))
    assert generator == 22_079_633  # table A2's total
    assert build_generator(config).count_params() == generator
    # Conv4 is 1x1 (33,024 parameters): the table's 524,416 repeats Conv3, and only 1x1 gives its total.
    critic = (10 * 64 + dense_params(64, 512) + conv_params(8, 1, 32) + conv_params(1, 32, 64)
              + conv_params(8, 64, 128) + conv_params(1, 128, 256) + dense_params(4096, 1024)
              + dense_params(1536, 1024) + dense_params(1024, 1))
    assert critic == 6_365_793  # table A1's total
    assert build_critic(config).count_params() == critic


def test_four_bands_change_only_the_first_critic_conv_and_the_last_transposed_conv():
    config = GANConfig(channels=4, n_labels=10)
    assert build_generator(config).count_params() == 22_079_633 - conv_params(1, 64, 1) + conv_params(1, 64, 4)
    assert build_critic(config).count_params() == 6_365_793 - conv_params(8, 1, 32) + conv_params(8, 4, 32)


def test_the_critic_uses_its_label_and_the_generator_output_is_in_tanh_range():
    generator, critic = build_generator("smoke", n_labels=3), build_critic("smoke", n_labels=3)
    z = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    images = generator([z, np.array([0, 2], np.int32)]).numpy()
    assert images.shape == (2, 64, 64, 4) and np.abs(images).max() < 1.0
    same = np.repeat(images[:1], 3, axis=0)
    scores = critic([same, np.array([0, 1, 2], np.int32)]).numpy().ravel()
    assert len(set(np.round(scores, 7))) == 3


def test_wgan_configs_are_validated():
    with pytest.raises(ValueError, match="unknown GAN config 'big'"):
        WGANConfig(gan="big")
    with pytest.raises(ValueError, match="need four entries each"):
        GANConfig(gen_kernels=(8, 1))


@pytest.mark.realdata
def test_the_smoke_wgan_trains_checkpoints_and_records_its_labels(smoke_wgan):
    out = smoke_wgan["dir"]
    result = smoke_wgan["first"]
    assert result["step"] == 3
    assert all(np.isfinite(result[k]) for k in ("critic_loss", "generator_loss", "gradient_penalty", "wasserstein"))
    record = json.loads((out / "model.json").read_text())
    assert record["kind"] == "wgan" and record["data"]["condition"] == "type"
    assert record["data"]["vocabulary"] == ["H", "cH", "mH", "cmH"]
    # 18 training halos: 7 H, 9 cH, no mH (the only one is a test source), 2 cmH.
    assert np.allclose(np.array(record["data"]["label_weights"]) * 18, [7, 9, 0, 2])
    from training.wgan import load_wgan

    model, loaded = load_wgan(out)
    assert loaded["state"]["step"] == 3
    images = model.sample(3, labels=np.array([0, 1, 3]), seed=0)
    assert images.shape == (3, 64, 64, 4) and np.all(np.abs(images) < 1.0)
    # The critic trained 5 steps per generator step: its Adam counter says so after a restore.
    from training.checkpoints import restore_checkpoint
    from training.wgan import WGAN_CONFIGS, build_wgan

    fresh = build_wgan(WGAN_CONFIGS["smoke"], n_labels=4)
    restore_checkpoint(out, models={"generator": fresh.generator, "critic": fresh.critic},
                       optimizers={"critic": (fresh.critic_optimizer, fresh.critic.trainable_weights),
                                   "generator": (fresh.generator_optimizer, fresh.generator.trainable_weights)})
    assert int(fresh.generator_optimizer.iterations.numpy()) == 3
    assert int(fresh.critic_optimizer.iterations.numpy()) == 15
    saved = build_critic("smoke", n_labels=4)
    saved.load_weights(out / "checkpoint" / "critic.weights.h5")
    for a, b in zip(saved.get_weights(), fresh.critic.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_compact_networks_map_four_band_64_px_images_and_are_a_fraction_of_the_papers():
    generator, critic = build_generator("compact", n_labels=4), build_critic("compact", n_labels=4)
    z = np.zeros((2, 128), np.float32)
    images = generator([z, np.array([0, 3], np.int32)]).numpy()
    assert images.shape == (2, 64, 64, 4) and np.abs(images).max() < 1.0
    assert critic([images, np.array([0, 3], np.int32)]).numpy().shape == (2, 1)
    paper = GANConfig(channels=4, n_labels=4)
    assert generator.count_params() < build_generator(paper).count_params() / 5
    assert critic.count_params() < build_critic(paper).count_params() / 2
