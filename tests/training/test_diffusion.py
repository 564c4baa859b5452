"""The diffusion process against its closed forms, DDIM against ancestral sampling, and a small DDPM that learns and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.training
tf = pytest.importorskip("tensorflow")

from training.diffusion import (  # noqa: E402
    DDPM_CONFIGS,
    DiffusionConfig,
    DiffusionModel,
    GaussianDiffusion,
    cosine_beta_schedule,
    learning_rate_schedule,
    linear_beta_schedule,
    make_optimizer,
    train_ddpm,
)


@pytest.fixture(scope="module")
def diffusion() -> GaussianDiffusion:
    return GaussianDiffusion(linear_beta_schedule(1000))


def analytic_eps(diffusion: GaussianDiffusion):
    """A stand-in network: the exact noise predictor for x_0 ~ N(0, I), plus a nonlinear term so clipping matters."""
    root = tf.constant(np.sqrt(1.0 - diffusion.alphas_cumprod), tf.float32)

    def eps(x, t):
        scale = tf.reshape(tf.gather(root, t), (-1, 1, 1, 1))
        return scale * x + 0.1 * tf.sin(3.0 * x)

    return eps


def test_the_linear_schedule_is_the_papers_and_the_cosine_one_is_a_valid_alternative():
    betas = linear_beta_schedule(1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert np.all(np.diff(betas) > 0)
    cosine = cosine_beta_schedule(1000)
    assert np.all((cosine > 0) & (cosine < 1)) and np.all(np.diff(np.cumprod(1 - cosine)) < 0)
    with pytest.raises(ValueError, match="beta_start <= beta_end"):
        linear_beta_schedule(10, beta_start=0.1, beta_end=0.01)


def test_forward_noising_matches_the_closed_form_of_q_xt_given_x0(diffusion):
    x0 = np.array([[-0.8, 0.0], [0.5, 1.0]], np.float32).reshape(1, 2, 2, 1)
    for t in (0, 10, 250, 999):
        mean, variance = diffusion.q_mean_variance(x0, np.array([t]))
        abar = np.prod(1.0 - diffusion.betas[: t + 1])
        np.testing.assert_allclose(mean.numpy(), np.sqrt(abar) * x0, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(variance.numpy().ravel(), [1.0 - abar], rtol=1e-5)


def test_q_sample_has_the_moments_of_the_markov_chain_it_summarises(diffusion):
    """Run the one-step chain x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) z and compare with q_sample's draws."""
    rng = np.random.default_rng(0)
    n, t = 40_000, 300
    x0 = np.float32(0.7)
    chain = np.full(n, x0, np.float64)
    for beta in diffusion.betas[: t + 1]:
        chain = np.sqrt(1.0 - beta) * chain + np.sqrt(beta) * rng.standard_normal(n)
    noise = rng.standard_normal((n, 1, 1, 1)).astype(np.float32)
    drawn = diffusion.q_sample(np.full((n, 1, 1, 1), x0, np.float32), np.full(n, t), noise).numpy().ravel()
    abar = diffusion.alphas_cumprod[t]
    tolerance = 4 * np.sqrt((1 - abar) / n)  # four standard errors of a mean
    for sample in (chain, drawn):
        assert sample.mean() == pytest.approx(np.sqrt(abar) * x0, abs=tolerance)
        assert sample.var() == pytest.approx(1.0 - abar, rel=0.03)


def test_the_posterior_variance_is_zero_at_the_last_step_and_beta_tilde_elsewhere(diffusion):
    assert diffusion.posterior_variance[0] == 0.0
    t = 500
    abar, abar_prev = diffusion.alphas_cumprod[t], diffusion.alphas_cumprod[t - 1]
    assert diffusion.posterior_variance[t] == pytest.approx(diffusion.betas[t] * (1 - abar_prev) / (1 - abar))


def test_a_ddim_step_with_eta_one_has_the_ancestral_steps_mean_at_every_t(diffusion):
    rng = np.random.default_rng(1)
    t = np.arange(diffusion.timesteps, dtype=np.int32)
    x = tf.constant(rng.standard_normal((len(t), 3, 3, 2)) * 1.5, tf.float32)
    zero = tf.zeros_like(x)
    eps = analytic_eps(diffusion)
    ancestral = diffusion.p_sample(eps, x, t, zero)
    ddim = diffusion.ddim_step(eps, x, t, t - 1, zero, eta=1.0)
    # Equal in exact arithmetic; in float32 the x_0 -> eps round trip of a clipped x_0 divides
    # by sqrt(1/abar - 1) ~ 0.01 at the smallest t, which amplifies round-off to ~4e-4.
    np.testing.assert_allclose(ddim.numpy(), ancestral.numpy(), atol=1e-3)
    middle = slice(100, None)
    np.testing.assert_allclose(ddim.numpy()[middle], ancestral.numpy()[middle], atol=5e-5)


def test_ddim_with_as_many_steps_as_t_reproduces_the_ancestral_path_with_the_same_noise():
    # T = 250 keeps the two 250-step loops to seconds; the per-step test above covers all of T = 1000.
    diffusion = GaussianDiffusion(linear_beta_schedule(250))
    eps = analytic_eps(diffusion)
    shape = (2, 4, 4, 1)
    final_a, path_a = diffusion.p_sample_loop(eps, shape, seed=7, return_path=True)
    final_d, path_d = diffusion.ddim_sample_loop(eps, shape, steps=diffusion.timesteps, eta=1.0, seed=7,
                                                 return_path=True)
    assert len(path_a) == len(path_d) == diffusion.timesteps + 1
    worst = max(float(np.abs(a - d).max()) for a, d in zip(path_a, path_d))
    assert worst < 1e-3
    np.testing.assert_allclose(final_d, final_a, atol=1e-3)


def test_deterministic_ddim_with_few_steps_is_reproducible_and_visits_t_minus_one_down_to_zero(diffusion):
    steps = diffusion.ddim_timesteps(50)
    assert len(steps) == 50 and steps[0] == 999 and steps[-1] == 0 and np.all(np.diff(steps) < 0)
    assert np.array_equal(diffusion.ddim_timesteps(1000), np.arange(999, -1, -1))
    eps = analytic_eps(diffusion)
    a = diffusion.ddim_sample_loop(eps, (2, 4, 4, 1), steps=50, seed=3)
    b = diffusion.ddim_sample_loop(eps, (2, 4, 4, 1), steps=50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a) <= 1.0 + 1e-5)
    with pytest.raises(ValueError, match=r"DDIM steps must be in \[1, 1000\]"):
        diffusion.ddim_timesteps(0)


def test_an_untrained_network_predicts_zero_noise_so_the_first_loss_is_about_one():
    config = DDPM_CONFIGS["smoke"]
    model = DiffusionModel.from_config_of(config)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 4)).astype(np.float32)
    eps = model.network([x, np.array([0, 500, 999], np.int32)])
    assert eps.shape == (3, 64, 64, 4) and float(np.abs(eps).max()) == 0.0


def test_configs_are_validated_with_messages_that_name_the_value():
    with pytest.raises(ValueError, match="unknown U-Net 'huge'"):
        DiffusionConfig(unet="huge")
    with pytest.raises(ValueError, match="warmup_steps must be in"):
        DiffusionConfig(total_steps=10, warmup_steps=10)


def test_the_learning_rate_warms_up_then_decays_to_its_floor():
    config = DiffusionConfig(unet="smoke", total_steps=1000, warmup_steps=100, learning_rate=1e-3, min_lr_fraction=0.1)
    schedule = learning_rate_schedule(config)
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(100)) == pytest.approx(1e-3, rel=1e-3)
    assert float(schedule(1000)) == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.realdata
def test_the_smoke_ddpm_learns_on_real_halo_cutouts(smoke_ddpm):
    losses = smoke_ddpm["first"]["losses"] + smoke_ddpm["second"]["losses"]
    assert len(losses) == 40
    # An untrained network predicts eps = 0 (loss ~1); forty steps must bring it well down.
    assert np.mean(losses[:5]) > 0.85
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.15


@pytest.mark.realdata
def test_a_checkpoint_restores_the_step_weights_and_optimiser_and_records_the_exclusions(smoke_ddpm):
    from training.checkpoints import restore_checkpoint

    out = smoke_ddpm["dir"]
    assert smoke_ddpm["first"]["step"] == 20 and smoke_ddpm["second"]["step"] == 40
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 40
    record = json.loads((out / "model.json").read_text())
    assert record["data"]["excluded"] == ["A2163"] and "A2163" not in record["data"]["sources"]
    assert len(record["data"]["sources"]) == 17 and record["kind"] == "ddpm"
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history] == [20, 40]  # one line per log_every (50) or end of a call
    # A fresh model restored from the checkpoint carries the saved step, weights and Adam slots.
    config = DDPM_CONFIGS["smoke"]
    fresh = DiffusionModel.from_config_of(config)
    fresh.compile(optimizer=make_optimizer(config))
    restore_checkpoint(out, models={"network": fresh.network, "ema": fresh.ema_network},
                       optimizers={"optimizer": (fresh.optimizer, fresh.network.trainable_weights)})
    assert int(fresh.optimizer.iterations.numpy()) == 40
    with np.load(out / "checkpoint" / "optimizers.npz") as saved:
        for key, variable in zip(sorted(saved.files), fresh.optimizer.variables):
            np.testing.assert_array_equal(saved[key], variable.numpy())
    untrained = DiffusionModel.from_config_of(config)
    moved = [not np.array_equal(a, b) for a, b in zip(fresh.network.get_weights(), untrained.network.get_weights())]
    assert any(moved)
    ema_differs = [not np.array_equal(a, b) for a, b in zip(fresh.ema_network.get_weights(), fresh.network.get_weights())]
    assert any(ema_differs)


@pytest.mark.realdata
def test_training_refuses_to_overwrite_a_checkpoint_or_resume_another_model(smoke_ddpm):
    from dataclasses import replace

    with pytest.raises(ValueError, match="already holds a checkpoint; pass --resume"):
        train_ddpm(smoke_ddpm["halos"], smoke_ddpm["dir"], config=DDPM_CONFIGS["smoke"])
    other = replace(DDPM_CONFIGS["smoke"], learning_rate=1e-4)
    with pytest.raises(ValueError, match=r"another config \(differs in \['learning_rate'\]\)"):
        train_ddpm(smoke_ddpm["halos"], smoke_ddpm["dir"], config=other, resume=True)


@pytest.mark.realdata
def test_a_finished_run_extends_past_its_schedule_at_the_final_learning_rate(smoke_ddpm, tmp_path):
    import shutil

    config = DDPM_CONFIGS["smoke"]
    out = tmp_path / "extended"
    shutil.copytree(smoke_ddpm["dir"], out)  # the session's model stays at step 40 for the other tests
    with pytest.raises(ValueError, match="--extend-to 30 is below the configuration's 40 steps"):
        train_ddpm(smoke_ddpm["halos"], out, config=config, resume=True, extend_to=30)
    result = train_ddpm(smoke_ddpm["halos"], out, config=config, resume=True, extend_to=44, log_every=2,
                        log=lambda line: None)
    assert result["step"] == 44 and len(result["losses"]) == 4
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 44
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history][-2:] == [42, 44]
    final = config.learning_rate * config.min_lr_fraction
    assert [row["learning_rate"] for row in history][-2:] == pytest.approx([final, final], rel=1e-5)
