"""Denoising diffusion (Ho et al. 2020) for four-band halo cut-outs, with DDIM sampling (Song et al. 2021).

Read top to bottom, in the order of the method (paper section 2.1):

1. **Schedules** (pure NumPy): ``linear_beta_schedule`` (the paper's: T = 1000, beta from
   1e-4 to 0.02) and ``cosine_beta_schedule``.
2. **The process**: ``GaussianDiffusion`` owns the schedule and every closed form: the
   forward noising q(x_t | x_0) (``q_mean_variance``, ``q_sample``), the posterior
   q(x_{t-1} | x_t, x_0), one ancestral step ``p_sample`` and its 1000-step loop, and the
   DDIM step and loop over a few tens of steps. It takes the network as any callable
   ``eps_fn(x_t, t) -> eps``, so it is tested with analytic stand-ins.
3. **Configurations**: ``DiffusionConfig`` (training hyper-parameters) and the named
   ``DDPM_CONFIGS`` (``paper``, ``compact``, ``smoke``), each naming a U-Net of
   ``training.models.unet``.
4. **The trainer**: ``DiffusionModel(keras.Model)`` with the numbered ``train_step``
   (Ho et al. algorithm 1), an EMA copy of the network used for sampling, and ``sample``.
5. **Runs**: ``train_ddpm`` (resumable checkpoints in a model directory) and ``load_ddpm``.

Sampling uses the posterior variance beta~_t (Ho et al.'s "fixed small"), so DDIM with
eta = 1 and all T steps is the ancestral sampler exactly, step for step; eta = 0 (the
default for fast sampling) is deterministic given x_T.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from survey.model.modelcard import code_version  # noqa: E402
from training.checkpoints import (  # noqa: E402
    append_history,
    checkpoint_dir,
    has_checkpoint,
    read_model_json,
    restore_checkpoint,
    save_checkpoint,
    training_end,
    write_json,
)
from training.halos import HaloBatches, HaloSet  # noqa: E402
from training.models.unet import UNET_CONFIGS, UNetConfig, build_unet  # noqa: E402

EpsFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
"""A noise predictor: ``eps_fn(x_t (N, ...), t (N,) int32) -> eps (N, ...)``."""


# --------------------------------------------------------------------------------------
# 1. Schedules
# --------------------------------------------------------------------------------------


def linear_beta_schedule(timesteps: int, *, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Variances beta_1..beta_T linearly spaced (Ho et al.; the paper's T = 1000, 1e-4 to 0.02).

    Parameters
    ----------
    timesteps : int
        T.
    beta_start, beta_end : float
        First and last variance, 0 < start <= end < 1.

    Returns
    -------
    numpy.ndarray
        (T,) float64 betas.

    >>> b = linear_beta_schedule(1000)
    >>> b.shape, float(b[0]), float(b[-1])
    ((1000,), 0.0001, 0.02)
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
    return np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)


def cosine_beta_schedule(timesteps: int, *, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: alpha-bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), betas capped at ``max_beta``.

    Parameters
    ----------
    timesteps : int
        T.
    s : float
        Offset that keeps beta_1 from vanishing (0.008, theirs).
    max_beta : float
        Cap on each beta (0.999), avoiding a singular last step.

    Returns
    -------
    numpy.ndarray
        (T,) float64 betas.

    >>> b = cosine_beta_schedule(1000)
    >>> bool(b.min() > 0 and b.max() <= 0.999)
    True
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    alpha_bar = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 1e-12, max_beta)


SCHEDULES = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule}


# --------------------------------------------------------------------------------------
# 2. The process
# --------------------------------------------------------------------------------------


class GaussianDiffusion:
    """The diffusion process of a beta schedule: forward noising, posterior, ancestral and DDIM steps.

    Time steps are 0-based: ``t = 0`` is Ho et al.'s t = 1 (the least noise). Schedule
    arrays are kept in float64 NumPy (for tests and exact closed forms) and as float32
    tensors (for the graph).

    Parameters
    ----------
    betas : numpy.ndarray
        (T,) variances, each in (0, 1).
    clip_range : tuple of float, optional
        The predicted x_0 is clipped to this range while sampling (data live in [-1, 1]);
        None to never clip.
    """

    def __init__(self, betas: np.ndarray, *, clip_range: tuple[float, float] | None = (-1.0, 1.0)):
        betas = np.asarray(betas, np.float64)
        if betas.ndim != 1 or not np.all((betas > 0) & (betas < 1)):
            raise ValueError("betas must be a 1-D array of values in (0, 1)")
        self.betas = betas
        self.timesteps = len(betas)
        self.clip_range = clip_range
        self.alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        # beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t): exactly 0 at t = 0, so the last
        # ancestral step adds no noise without a special case.
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)
        self._tensors = {
            "sqrt_abar": np.sqrt(self.alphas_cumprod),
            "sqrt_one_minus_abar": np.sqrt(1.0 - self.alphas_cumprod),
            "sqrt_recip_abar": np.sqrt(1.0 / self.alphas_cumprod),
            "sqrt_recipm1_abar": np.sqrt(1.0 / self.alphas_cumprod - 1.0),
            "one_minus_abar": 1.0 - self.alphas_cumprod,
            "posterior_variance": self.posterior_variance,
            "coef1": self.posterior_mean_coef1,
            "coef2": self.posterior_mean_coef2,
            # DDIM indexes abar at t_prev + 1, so that t_prev = -1 (past the last step) reads abar = 1.
            "abar_from_minus1": np.append(1.0, self.alphas_cumprod),
        }
        self._tensors = {k: tf.constant(v, tf.float32) for k, v in self._tensors.items()}

    @classmethod
    def from_config(cls, config: "DiffusionConfig") -> "GaussianDiffusion":
        """The process of a ``DiffusionConfig`` (its schedule and T)."""
        if config.schedule == "linear":
            betas = linear_beta_schedule(config.timesteps, beta_start=config.beta_start, beta_end=config.beta_end)
        else:
            betas = cosine_beta_schedule(config.timesteps)
        return cls(betas)

    def _at(self, name: str, t, ndim: int) -> tf.Tensor:
        """Schedule value ``name`` at each step of ``t`` (N,), shaped (N, 1, ...) to broadcast over ``ndim`` axes."""
        values = tf.gather(self._tensors[name], tf.cast(t, tf.int32))
        return tf.reshape(values, tf.concat([tf.shape(values), tf.ones(ndim - 1, tf.int32)], axis=0))

    # Forward process ------------------------------------------------------------------

    def q_mean_variance(self, x0, t) -> tuple[tf.Tensor, tf.Tensor]:
        """Mean and variance of q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)."""
        x0 = tf.convert_to_tensor(x0, tf.float32)
        return self._at("sqrt_abar", t, x0.shape.rank) * x0, self._at("one_minus_abar", t, x0.shape.rank)

    def q_sample(self, x0, t, noise) -> tf.Tensor:
        """Draw x_t ~ q(x_t | x_0) with the given standard-normal ``noise``: sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise.

        Parameters
        ----------
        x0 : array_like
            (N, ...) clean images.
        t : array_like
            (N,) int time steps.
        noise : array_like
            Standard-normal draw of ``x0``'s shape.

        Returns
        -------
        tf.Tensor
            x_t, float32.
        """
        x0 = tf.convert_to_tensor(x0, tf.float32)
        rank = x0.shape.rank
        return self._at("sqrt_abar", t, rank) * x0 + self._at("sqrt_one_minus_abar", t, rank) * noise

    # Reverse process ------------------------------------------------------------------

    def predict_start_from_noise(self, x_t, t, eps) -> tf.Tensor:
        """x_0 implied by x_t and a noise estimate: (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t).

        Parameters
        ----------
        x_t : tf.Tensor
            (N, ...) noisy images.
        t : array_like
            (N,) int time steps.
        eps : tf.Tensor
            The noise estimate.

        Returns
        -------
        tf.Tensor
            The implied x_0.
        """
        rank = x_t.shape.rank
        return self._at("sqrt_recip_abar", t, rank) * x_t - self._at("sqrt_recipm1_abar", t, rank) * eps

    def predict_noise_from_start(self, x_t, t, x0) -> tf.Tensor:
        """The noise implied by x_t and an x_0 estimate (inverse of ``predict_start_from_noise``).

        Parameters
        ----------
        x_t : tf.Tensor
            (N, ...) noisy images.
        t : array_like
            (N,) int time steps.
        x0 : tf.Tensor
            The x_0 estimate.

        Returns
        -------
        tf.Tensor
            The implied noise.
        """
        rank = x_t.shape.rank
        return (self._at("sqrt_recip_abar", t, rank) * x_t - x0) / self._at("sqrt_recipm1_abar", t, rank)

    def q_posterior(self, x0, x_t, t) -> tuple[tf.Tensor, tf.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7).

        Parameters
        ----------
        x0 : tf.Tensor
            (N, ...) clean (or predicted) images.
        x_t : tf.Tensor
            (N, ...) noisy images at ``t``.
        t : array_like
            (N,) int time steps.

        Returns
        -------
        (tf.Tensor, tf.Tensor)
            The mean (shape of ``x_t``) and the variance beta~_t (N, 1, ...).
        """
        rank = x_t.shape.rank
        mean = self._at("coef1", t, rank) * x0 + self._at("coef2", t, rank) * x_t
        return mean, self._at("posterior_variance", t, rank)

    def predict_start(self, eps_fn: EpsFn, x_t, t) -> tuple[tf.Tensor, tf.Tensor]:
        """The network's x_0 (clipped to ``clip_range``) and the noise consistent with it.

        Re-deriving the noise from the clipped x_0 keeps DDIM's step and the ancestral
        posterior mean the same function of (x_0, x_t).

        Parameters
        ----------
        eps_fn : callable
            The noise predictor.
        x_t : tf.Tensor
            (N, ...) noisy images.
        t : array_like
            (N,) int time steps.

        Returns
        -------
        (tf.Tensor, tf.Tensor)
            x_0 and eps.
        """
        eps = eps_fn(x_t, t)
        x0 = self.predict_start_from_noise(x_t, t, eps)
        if self.clip_range is not None:
            x0 = tf.clip_by_value(x0, *self.clip_range)
            eps = self.predict_noise_from_start(x_t, t, x0)
        return x0, eps

    def p_sample(self, eps_fn: EpsFn, x_t, t, noise) -> tf.Tensor:
        """One ancestral step x_t -> x_{t-1}: the posterior mean at the predicted x_0 plus sqrt(beta~_t) noise.

        Parameters
        ----------
        eps_fn : callable
            The noise predictor.
        x_t : tf.Tensor
            (N, ...) current samples.
        t : tf.Tensor
            (N,) int32 current step (the same for all, in the loops).
        noise : tf.Tensor
            Standard-normal draw of x_t's shape (unused at t = 0, where beta~ = 0).

        Returns
        -------
        tf.Tensor
            x_{t-1}.
        """
        x0, _ = self.predict_start(eps_fn, x_t, t)
        mean, variance = self.q_posterior(x0, x_t, t)
        return mean + tf.sqrt(variance) * noise

    def ddim_step(self, eps_fn: EpsFn, x_t, t, t_prev, noise, *, eta: float = 0.0) -> tf.Tensor:
        """One DDIM step from t to t_prev < t (Song et al. eq. 12); t_prev = -1 ends at x_0.

        Parameters
        ----------
        eps_fn : callable
            The noise predictor.
        x_t : tf.Tensor
            (N, ...) current samples.
        t, t_prev : tf.Tensor
            (N,) int32 current and next step.
        noise : tf.Tensor
            Standard-normal draw of x_t's shape (scaled by sigma; unused when eta = 0).
        eta : float
            0: deterministic DDIM; 1: the ancestral sampler's variance (with t_prev = t - 1,
            exactly ``p_sample``).

        Returns
        -------
        tf.Tensor
            x_{t_prev}.
        """
        rank = x_t.shape.rank
        x0, eps = self.predict_start(eps_fn, x_t, t)
        abar_t = self._at("abar_from_minus1", tf.cast(t, tf.int32) + 1, rank)
        abar_prev = self._at("abar_from_minus1", tf.cast(t_prev, tf.int32) + 1, rank)
        sigma = eta * tf.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * (1.0 - abar_t / abar_prev))
        direction = tf.sqrt(tf.maximum(1.0 - abar_prev - sigma**2, 0.0)) * eps
        return tf.sqrt(abar_prev) * x0 + direction + sigma * noise

    def ddim_timesteps(self, steps: int) -> np.ndarray:
        """``steps`` time steps from T-1 down to 0, evenly spaced (all T when ``steps == T``)."""
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"DDIM steps must be in [1, {self.timesteps}], got {steps}")
        return np.unique(np.linspace(0, self.timesteps - 1, steps).round().astype(np.int32))[::-1]

    def p_sample_loop(self, eps_fn: EpsFn, shape: tuple[int, ...], *, seed: int | None = None,
                      return_path: bool = False, compiled: bool = True):
        """Ancestral sampling: x_T ~ N(0, I), then T ``p_sample`` steps.

        Parameters
        ----------
        eps_fn : callable
            The noise predictor.
        shape : tuple of int
            (N, H, W, C) of the samples.
        seed : int, optional
            Seeds x_T and every step's noise (see ``sample_loop``).
        return_path : bool
            Also return every intermediate x (T + 1 arrays, x_T first).
        compiled : bool
            Run each step as a ``tf.function`` (for a network); False for cheap analytic eps_fn.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, list of numpy.ndarray)
            x_0, and the path when ``return_path``.
        """
        step = lambda x, t, t_prev, z: self.p_sample(eps_fn, x, t, z)  # noqa: E731
        return self.sample_loop(tf.function(step, reduce_retracing=True) if compiled else step,
                                self.ancestral_timesteps(), shape, seed=seed, return_path=return_path)

    def ddim_sample_loop(self, eps_fn: EpsFn, shape: tuple[int, ...], *, steps: int = 50, eta: float = 0.0,
                         seed: int | None = None, return_path: bool = False, compiled: bool = True):
        """DDIM sampling over ``ddim_timesteps(steps)``.

        Parameters
        ----------
        eps_fn : callable
            The noise predictor.
        shape : tuple of int
            (N, H, W, C) of the samples.
        steps : int
            Network evaluations (time steps visited), 1..T.
        eta : float
            See ``ddim_step``.
        seed : int, optional
            Seeds x_T and every step's noise (see ``sample_loop``).
        return_path : bool
            Also return every intermediate x.
        compiled : bool
            Run each step as a ``tf.function``.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, list of numpy.ndarray)
            x_0, and the path when ``return_path``.
        """
        step = lambda x, t, t_prev, z: self.ddim_step(eps_fn, x, t, t_prev, z, eta=eta)  # noqa: E731
        return self.sample_loop(tf.function(step, reduce_retracing=True) if compiled else step,
                                self.ddim_timesteps(steps), shape, seed=seed, return_path=return_path)

    def ancestral_timesteps(self) -> np.ndarray:
        """T-1 down to 0: every step of the ancestral chain."""
        return np.arange(self.timesteps - 1, -1, -1, dtype=np.int32)

    @staticmethod
    def sample_loop(step: Callable, timesteps: np.ndarray, shape: tuple[int, ...], *, seed: int | None = None,
                    return_path: bool = False):
        """Run ``step(x, t, t_prev, noise)`` from x_T ~ N(0, I) over ``timesteps`` (descending; the last t_prev is -1).

        Noise comes from one seeded generator in a fixed order, x_T first and then one draw
        per step, so the ancestral loop and DDIM with all T steps see identical noise.

        Parameters
        ----------
        step : callable
            One step (``p_sample`` or ``ddim_step`` with the network bound), taking
            x, t (N,), t_prev (N,) and a standard-normal draw.
        timesteps : numpy.ndarray
            Steps to visit, descending.
        shape : tuple of int
            (N, H, W, C) of the samples.
        seed : int, optional
            Seeds the generator; None draws a fresh one.
        return_path : bool
            Also return x after every step (x_T first).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, list of numpy.ndarray)
            x_0, and the path when ``return_path``.
        """
        rng = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.Generator.from_non_deterministic_state()
        n = shape[0]
        x = rng.normal(shape)
        path = [x.numpy()] if return_path else None
        for t, t_prev in zip(timesteps, np.append(timesteps[1:], -1)):
            x = step(x, tf.fill([n], int(t)), tf.fill([n], int(t_prev)), rng.normal(shape))
            if return_path:
                path.append(x.numpy())
        return (x.numpy(), path) if return_path else x.numpy()


# --------------------------------------------------------------------------------------
# 3. Configurations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffusionConfig:
    """Training hyper-parameters of a DDPM (defaults: the paper's, table A6 and Ho et al.).

    Attributes
    ----------
    unet : str
        Name of the network shape in ``training.models.unet.UNET_CONFIGS``.
    timesteps, schedule, beta_start, beta_end : int, str, float, float
        T = 1000, linear betas from 1e-4 to 0.02 (paper section 2.1).
    batch_size : int
        32 (table A6).
    learning_rate : float
        Adam's peak rate, 2e-4 (table A6; betas 0.9, 0.999).
    total_steps : int
        Optimiser steps of a full run (table A6: 46,410 iterations for the paper's model);
        the learning rate decays over them.
    warmup_steps : int
        Linear warm-up of the learning rate from 0 (Ho et al.: 5000 on CIFAR-10).
    min_lr_fraction : float
        The cosine decay after warm-up ends at this fraction of the peak (the paper's
        "scheduler used to dampen the learning rate", whose form it does not give).
    grad_clip : float
        Global gradient-norm clip (Ho et al.: 1.0).
    ema_decay : float
        Decay of the exponential moving average of the weights used for sampling (0.999).
        Early on it is min(decay, (1 + step) / (10 + step)), so a short run's EMA is not
        dominated by the random initial weights.
    input_noise_std : float
        Standard deviation of the small Gaussian noise added to training images, in the
        [-1, 1] units (paper section 4.2: "very small"; 0.01 is below sqrt(beta_1) of the
        first diffusion steps). 0 disables it.
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Seeds weights, batches, augmentation and the diffusion draws.
    zero_centred : bool
        Scale the halos to a symmetric range so that clipped (zero) pixels map to 0
        (``training.halos.halo_set``); False is the paper's min-max to [-1, 1].
    """

    unet: str = "paper"
    timesteps: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    batch_size: int = 32
    learning_rate: float = 2e-4
    total_steps: int = 46410
    warmup_steps: int = 5000
    min_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    input_noise_std: float = 0.01
    checkpoint_every: int = 500
    seed: int = 0
    zero_centred: bool = False

    def __post_init__(self):
        if self.unet not in UNET_CONFIGS:
            raise ValueError(f"unknown U-Net {self.unet!r}; choose one of {', '.join(UNET_CONFIGS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if min(self.timesteps, self.batch_size, self.total_steps, self.checkpoint_every) < 1:
            raise ValueError("timesteps, batch_size, total_steps and checkpoint_every must be >= 1")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={self.total_steps}), got {self.warmup_steps}")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.learning_rate <= 0 or self.input_noise_std < 0 or not 0 <= self.min_lr_fraction <= 1:
            raise ValueError("need learning_rate > 0, input_noise_std >= 0 and min_lr_fraction in [0, 1]")

    def unet_config(self, n_labels: int = 0) -> UNetConfig:
        """The network shape, conditional on ``n_labels`` labels when > 0."""
        return replace(UNET_CONFIGS[self.unet], n_labels=n_labels)

    def to_dict(self) -> dict:
        """JSON-ready fields (``DiffusionConfig(**d)`` rebuilds it)."""
        return asdict(self)


DDPM_CONFIGS: dict[str, DiffusionConfig] = {
    "paper": DiffusionConfig(),
    # At most about an hour on two CPU cores: 3000 steps of batch 16 at the 0.99 s per step
    # measured on one core of this machine (2 threads gained nothing while the machine was
    # shared) are 50 minutes. A short run, so a short warm-up and a higher peak rate, as for
    # small U-Nets on small data. (The paper's model: 24.6 s per batch-32 step on one core.)
    "compact": DiffusionConfig(unet="compact", batch_size=16, learning_rate=5e-4, total_steps=3000, warmup_steps=200,
                               checkpoint_every=250),
    # Seconds, for tests.
    "smoke": DiffusionConfig(unet="smoke", batch_size=8, learning_rate=2e-3, total_steps=40, warmup_steps=0,
                             checkpoint_every=20),
}
"""The named DDPM configurations (``halo-train ddpm --config NAME``)."""


def learning_rate_schedule(config: DiffusionConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 to the peak over ``warmup_steps``, then cosine decay to ``min_lr_fraction`` of it."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if config.warmup_steps else config.learning_rate,
        decay_steps=config.total_steps - config.warmup_steps, alpha=config.min_lr_fraction,
        warmup_target=config.learning_rate if config.warmup_steps else None, warmup_steps=config.warmup_steps)


def make_optimizer(config: DiffusionConfig) -> keras.optimizers.Optimizer:
    """Adam (0.9, 0.999) on ``learning_rate_schedule(config)``, gradients clipped to global norm ``grad_clip``."""
    return keras.optimizers.Adam(learning_rate_schedule(config), beta_1=0.9, beta_2=0.999,
                                 global_clipnorm=config.grad_clip)


# --------------------------------------------------------------------------------------
# 4. The trainer
# --------------------------------------------------------------------------------------


class DiffusionModel(keras.Model):
    """A noise-prediction network trained with the DDPM objective, its EMA copy, and the sampler.

    Parameters
    ----------
    network : keras.Model
        The U-Net (``build_unet``): inputs image, time (and label), output eps.
    ema_network : keras.Model
        A second build of the same shape; receives the moving average of ``network``.
    diffusion : GaussianDiffusion
        The process.
    ema_decay : float
        See ``DiffusionConfig.ema_decay``.
    input_noise_std : float
        See ``DiffusionConfig.input_noise_std``.
    seed : int
        Seeds the draws of ``train_step``.
    **kwargs
        Passed to ``keras.Model``.
    """

    def __init__(self, network: keras.Model, ema_network: keras.Model, diffusion: GaussianDiffusion, *,
                 ema_decay: float = 0.999, input_noise_std: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.network, self.ema_network, self.diffusion = network, ema_network, diffusion
        self.ema_decay, self.input_noise_std = float(ema_decay), float(input_noise_std)
        self.conditional = len(network.inputs) == 3
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ema_network.set_weights(self.network.get_weights())
        self._sampling_steps: dict = {}

    @classmethod
    def from_config_of(cls, config: DiffusionConfig, *, n_labels: int = 0) -> "DiffusionModel":
        """A fresh model of ``config`` (both networks built with ``config.seed``)."""
        unet = config.unet_config(n_labels)
        return cls(build_unet(unet, seed=config.seed), build_unet(unet, seed=config.seed),
                   GaussianDiffusion.from_config(config), ema_decay=config.ema_decay,
                   input_noise_std=config.input_noise_std, seed=config.seed)

    @property
    def metrics(self) -> list:
        """The loss tracker (so Keras resets it between epochs)."""
        return [self.loss_tracker]

    def _inputs(self, x, t, labels) -> list:
        return [x, t, labels] if self.conditional else [x, t]

    def train_step(self, data):
        """One optimiser step of Ho et al.'s algorithm 1 on a batch ``(images, labels)``."""
        # 1. A batch of halo cut-outs scaled to [-1, 1], with their labels (ignored when unconditional).
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = tf.convert_to_tensor(images, tf.float32)
        n = tf.shape(images)[0]
        labels = tf.zeros([n], tf.int32) if labels is None else tf.cast(labels, tf.int32)
        # 2. The paper's small Gaussian-noise augmentation of the training images (section 4.2).
        if self.input_noise_std:
            images = images + self.input_noise_std * keras.random.normal(tf.shape(images), seed=self.seed_generator)
        # 3. A time step per image, uniform over 0..T-1.
        t = keras.random.randint((n,), 0, self.diffusion.timesteps, dtype="int32", seed=self.seed_generator)
        # 4. The noise to be predicted.
        eps = keras.random.normal(tf.shape(images), seed=self.seed_generator)
        # 5. Forward noising in closed form: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
        x_t = self.diffusion.q_sample(images, t, eps)
        with tf.GradientTape() as tape:
            # 6. The network's estimate of the noise.
            eps_pred = self.network(self._inputs(x_t, t, labels), training=True)
            # 7. The simple loss: mean squared error on eps (Ho et al. eq. 14).
            loss = tf.reduce_mean(tf.square(eps - eps_pred))
        # 8. Gradients and an Adam step (clipping and the learning-rate schedule live in the optimiser).
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        # 9. EMA of the weights, with a warm-up so that short runs are not dominated by the initial weights.
        step = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)
        # 10. Track the loss.
        self.loss_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def eps_fn(self, labels: np.ndarray | None = None, *, ema: bool = True) -> EpsFn:
        """The noise predictor for sampling: the EMA network (or the raw one), labels bound in."""
        network = self.ema_network if ema else self.network
        if self.conditional and labels is None:
            raise ValueError("this model is conditional: pass labels to sample")
        bound = None if labels is None else tf.constant(np.asarray(labels, np.int32))

        def eps(x, t):
            return network(self._inputs(x, t, bound), training=False)

        return eps

    def _sampling_step(self, sampler: str, eta: float, ema: bool):
        """One compiled reverse step per (sampler, eta, weights), labels an argument: traced once, not per batch."""
        key = (sampler, float(eta), ema)
        if key not in self._sampling_steps:
            network = self.ema_network if ema else self.network

            def step(x, t, t_prev, noise, labels):
                def eps(x_t, t_now):
                    return network(self._inputs(x_t, t_now, labels), training=False)

                if sampler == "ancestral":
                    return self.diffusion.p_sample(eps, x, t, noise)
                return self.diffusion.ddim_step(eps, x, t, t_prev, noise, eta=eta)

            self._sampling_steps[key] = tf.function(step, reduce_retracing=True)
        return self._sampling_steps[key]

    def sample(self, n: int, *, sampler: str = "ddim", steps: int = 50, eta: float = 0.0, seed: int | None = None,
               labels: np.ndarray | None = None, batch_size: int = 64, ema: bool = True) -> np.ndarray:
        """Draw ``n`` images in the model's [-1, 1] scale.

        Parameters
        ----------
        n : int
            Images to draw.
        sampler : {"ddim", "ancestral"}
            DDIM over ``steps`` steps, or the full T-step ancestral chain.
        steps : int
            DDIM steps (ignored by ``ancestral``).
        eta : float
            DDIM's noise scale (0: deterministic).
        seed : int, optional
            Seeds the draws; batch k uses ``seed + k``.
        labels : numpy.ndarray, optional
            (n,) labels for a conditional model.
        batch_size : int
            Images per sampling batch.
        ema : bool
            Sample with the EMA weights (default) or the raw ones.

        Returns
        -------
        numpy.ndarray
            (n, H, W, C) float32, clipped to [-1, 1].
        """
        if sampler not in ("ddim", "ancestral"):
            raise ValueError(f"sampler must be 'ddim' or 'ancestral', got {sampler!r}")
        if self.conditional and labels is None:
            raise ValueError("this model is conditional: pass labels to sample")
        labels = np.zeros(n, np.int32) if labels is None else np.asarray(labels, np.int32)
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images")
        timesteps = self.diffusion.ancestral_timesteps() if sampler == "ancestral" else self.diffusion.ddim_timesteps(steps)
        compiled = self._sampling_step(sampler, eta, ema)
        shape = tuple(self.network.inputs[0].shape[1:])
        out = []
        for k, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            batch_labels = tf.constant(labels[start:start + size])

            def step(x, t, t_prev, noise, batch_labels=batch_labels):
                return compiled(x, t, t_prev, noise, batch_labels)

            out.append(self.diffusion.sample_loop(step, timesteps, (size, *shape),
                                                  seed=None if seed is None else seed + k))
        return np.clip(np.concatenate(out), -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------
# 5. Runs
# --------------------------------------------------------------------------------------


def _model_record(config: DiffusionConfig, halos: HaloSet, command: str | None) -> dict:
    """What ``model.json`` says of a DDPM; JSON-normalised (tuples as lists) so it compares with a stored one."""
    return json.loads(json.dumps({"kind": "ddpm", "halo_survey_version": code_version(), "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "config": config.to_dict(), "unet": config.unet_config(halos.n_labels).to_dict(),
            "data": halos.metadata()}))


def train_ddpm(halos: HaloSet, out: str | Path, *, config: DiffusionConfig, resume: bool = False,
               stop_after: int | None = None, extend_to: int | None = None, command: str | None = None,
               log: Callable[[str], None] = print, log_every: int = 50) -> dict:
    """Train (or resume) a DDPM on ``halos``, checkpointing into the model directory ``out``.

    Parameters
    ----------
    halos : HaloSet
        The training halos (``training.halos.halo_set``), exclusions already applied.
    out : path-like
        Model directory: ``model.json`` and ``checkpoint/`` (``training.checkpoints``).
    config : DiffusionConfig
        Hyper-parameters; on resume they must equal the stored ones.
    resume : bool
        Continue the checkpoint in ``out`` (weights, EMA, optimiser state, step).
    stop_after : int, optional
        Stop (with a checkpoint) once this many steps are done in total, before
        ``config.total_steps``; the learning-rate schedule still spans ``total_steps``.
    extend_to : int, optional
        Train on past ``config.total_steps`` to this many steps in total, at the schedule's
        final learning rate (``min_lr_fraction`` of the peak): how a finished run is given
        more steps without changing its configuration, which a resume refuses.
    command : str, optional
        The command line, recorded in ``model.json``.
    log : callable
        Receives progress lines.
    log_every : int
        Steps between progress lines.

    Returns
    -------
    dict
        ``step``, ``loss`` (mean over the last ``log_every`` steps), ``losses`` (every
        step of this call), ``seconds`` (this call), ``seconds_per_step`` and ``out``.

    Raises
    ------
    ValueError
        ``out`` holds a checkpoint but ``resume`` is False, or the stored configuration or
        data differ from this call's.
    FileNotFoundError
        ``resume`` without a checkpoint in ``out``.
    """
    out = Path(out)
    if has_checkpoint(out) and not resume:
        raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
    model = DiffusionModel.from_config_of(config, n_labels=halos.n_labels)
    model.compile(optimizer=make_optimizer(config))
    # Built before the first step: slots created inside the first traced step make
    # tf.function trace train_step twice (measured: twice the ~20 s first-step cost).
    model.optimizer.build(model.network.trainable_weights)
    record = _model_record(config, halos, command)
    if resume:
        stored = read_model_json(out)
        _check_same(stored, record, out)
        state = restore_checkpoint(out, models={"network": model.network, "ema": model.ema_network},
                                   optimizers={"optimizer": (model.optimizer, model.network.trainable_weights)})
        log(f"resumed {out} at step {state['step']}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "model.json", record)
        state = {"step": 0, "seconds": 0.0}
    step = int(model.optimizer.iterations.numpy())
    if step != state["step"]:
        raise ValueError(f"{checkpoint_dir(out)}: optimiser is at step {step}, state.json says {state['step']}")
    # A resumed run draws new batches rather than repeating the first ones.
    batches = HaloBatches(halos, config.batch_size, seed=config.seed * 1_000_003 + step)
    goal = training_end(config.total_steps, extend_to=extend_to)  # what the log counts towards
    end = training_end(goal, stop_after=stop_after)
    started, losses, result = time.perf_counter(), [], {"step": step, "loss": float("nan")}
    while step < end:
        images, labels = batches.draw()
        logs = model.train_on_batch(images, labels, return_dict=True)
        losses.append(float(logs["loss"]))
        model.loss_tracker.reset_state()
        step += 1
        if step % log_every == 0 or step == end:
            result["loss"] = float(np.mean(losses[-log_every:]))
            seconds_per_step = (time.perf_counter() - started) / len(losses)
            log(f"step {step}/{goal} loss {result['loss']:.4f} ({seconds_per_step:.2f} s/step)")
            append_history(out, {"step": step, "loss": result["loss"], "seconds_per_step": seconds_per_step,
                                 "learning_rate": float(model.optimizer.learning_rate.numpy())})
        if step % config.checkpoint_every == 0 or step == end:
            seconds = state["seconds"] + time.perf_counter() - started
            save_checkpoint(out, models={"network": model.network, "ema": model.ema_network},
                            optimizers={"optimizer": model.optimizer},
                            state={"step": step, "seconds": seconds, "loss": float(np.mean(losses[-log_every:]))})
    elapsed = time.perf_counter() - started
    return {**result, "step": step, "losses": losses, "seconds": elapsed,
            "seconds_per_step": elapsed / max(len(losses), 1), "out": str(out)}


def _check_same(stored: dict, record: dict, out: Path) -> None:
    """A resumed run must be the same model on the same data."""
    if stored.get("kind") != "ddpm":
        raise ValueError(f"{out} holds a {stored.get('kind')!r} model, not a DDPM")
    for key in ("config", "unet"):
        if stored[key] != record[key]:
            changed = sorted(k for k in record[key] if stored[key].get(k) != record[key][k])
            raise ValueError(f"{out} was trained with another {key} (differs in {changed}); resume with the same --config")
    for key in ("sources", "excluded", "condition", "normalisation"):
        if stored["data"][key] != record["data"][key]:
            raise ValueError(f"{out} was trained on other data ({key} differs); resume with the same --exclude/--split/"
                             f"--condition and data")


def load_ddpm(model_dir: str | Path) -> tuple[DiffusionModel, dict]:
    """A trained DDPM and its ``model.json`` record; both networks carry the checkpoint's weights.

    Parameters
    ----------
    model_dir : path-like
        A directory written by ``train_ddpm``.

    Returns
    -------
    (DiffusionModel, dict)
        The model (sample with ``model.sample``) and the record (config, data,
        normalisation, provenance) with the checkpoint's ``state`` added.
    """
    record = read_model_json(model_dir)
    if record.get("kind") != "ddpm":
        raise ValueError(f"{model_dir} holds a {record.get('kind')!r} model, not a DDPM")
    config = DiffusionConfig(**record["config"])
    unet = UNetConfig(**record["unet"])
    model = DiffusionModel(build_unet(unet, seed=config.seed), build_unet(unet, seed=config.seed),
                           GaussianDiffusion.from_config(config), ema_decay=config.ema_decay, seed=config.seed)
    folder = checkpoint_dir(model_dir)
    if not (folder / "state.json").exists():
        raise FileNotFoundError(f"{model_dir} has no checkpoint yet (train it first)")
    model.network.load_weights(folder / "network.weights.h5")
    model.ema_network.load_weights(folder / "ema.weights.h5")
    record["state"] = json.loads((folder / "state.json").read_text())
    return model, record


__all__ = ["linear_beta_schedule", "cosine_beta_schedule", "GaussianDiffusion", "DiffusionConfig", "DDPM_CONFIGS",
           "learning_rate_schedule", "make_optimizer", "DiffusionModel", "train_ddpm", "load_ddpm"]
