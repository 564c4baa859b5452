"""Conditional Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) for four-band halo cut-outs.

In the order of the method (paper section 2.2, table A6):

1. **The penalty** (pure): ``interpolate`` and ``gradient_penalty``: lambda * E[(||grad
   D(x^)||_2 - 1)^2] at x^ = alpha x_real + (1 - alpha) x_fake with alpha ~ U[0, 1] drawn
   per sample (keras-io's ``wgan_gp.py`` once drew it from a normal distribution; the
   method, and keras-io since PR #1463, use the uniform).
2. **Configuration**: ``WGANConfig`` and the named ``WGAN_CONFIGS`` (``paper``, ``compact``, ``smoke``).
3. **The trainer**: ``WGAN(keras.Model)`` with the numbered ``train_step`` (Gulrajani et
   al.'s algorithm 1): ``n_critic`` = 5 critic steps, each on a fresh real minibatch, then
   one generator step; losses tracked with ``keras.metrics.Mean``.
4. **Runs**: ``train_wgan`` (resumable checkpoints) and ``load_wgan``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
from training.models.gan import GAN_CONFIGS, GANConfig, build_critic, build_generator  # noqa: E402

# --------------------------------------------------------------------------------------
# 1. The penalty
# --------------------------------------------------------------------------------------


def draw_alpha(n: int, *, seed=None) -> tf.Tensor:
    """Interpolation weights alpha ~ U[0, 1], one per sample, shaped (n, 1, 1, 1) to broadcast over images.

    ``seed`` is anything ``keras.random.uniform`` takes (an int or a ``SeedGenerator``).
    """
    return keras.random.uniform((n, 1, 1, 1), minval=0.0, maxval=1.0, seed=seed)


def interpolate(real, fake, alpha) -> tf.Tensor:
    """Points on the lines between real and generated images: alpha * real + (1 - alpha) * fake.

    Parameters
    ----------
    real, fake : array_like
        (N, ...) images.
    alpha : tf.Tensor
        (N, 1, ...) weights in [0, 1]: 1 gives ``real``, 0 gives ``fake``.

    Returns
    -------
    tf.Tensor
        (N, ...) float32 interpolates.
    """
    real = tf.convert_to_tensor(real, tf.float32)
    return real + (1.0 - alpha) * (tf.convert_to_tensor(fake, tf.float32) - real)


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real, fake, alpha) -> tf.Tensor:
    """Gulrajani et al.'s penalty E[(||grad_x D(x)||_2 - 1)^2] at the interpolates of ``real`` and ``fake``.

    Parameters
    ----------
    critic : callable
        Images (N, ...) -> scores (N,) or (N, 1); for a conditional critic, a closure
        binding the labels.
    real, fake : array_like
        (N, ...) real and generated images.
    alpha : tf.Tensor
        (N, 1, ...) interpolation weights in [0, 1] (``draw_alpha``).

    Returns
    -------
    tf.Tensor
        Scalar penalty (not yet multiplied by lambda).
    """
    points = interpolate(real, fake, alpha)
    with tf.GradientTape() as tape:
        tape.watch(points)
        scores = critic(points)
    gradients = tape.gradient(scores, points)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients))) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


# --------------------------------------------------------------------------------------
# 2. Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WGANConfig:
    """Training hyper-parameters of the conditional WGAN-GP (defaults: the paper's, table A6).

    Attributes
    ----------
    gan : str
        Name of the network shapes in ``training.models.gan.GAN_CONFIGS``.
    batch_size : int
        Images per critic minibatch (32).
    n_critic : int
        Critic steps per generator step (5, Gulrajani et al.).
    gp_weight : float
        lambda of the gradient penalty (10).
    learning_rate, beta_1, beta_2 : float
        Adam for both networks: 2e-4, (0.5, 0.999) (table A6).
    total_steps : int
        Generator steps (table A6: 10,000 iterations).
    checkpoint_every : int
        Generator steps between checkpoints.
    seed : int
        Seeds weights, batches and draws.
    """

    gan: str = "paper"
    batch_size: int = 32
    n_critic: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    total_steps: int = 10000
    checkpoint_every: int = 250
    seed: int = 0

    def __post_init__(self):
        if self.gan not in GAN_CONFIGS:
            raise ValueError(f"unknown GAN config {self.gan!r}; choose one of {', '.join(GAN_CONFIGS)}")
        if min(self.batch_size, self.n_critic, self.total_steps, self.checkpoint_every) < 1:
            raise ValueError("batch_size, n_critic, total_steps and checkpoint_every must be >= 1")
        if self.gp_weight < 0 or self.learning_rate <= 0:
            raise ValueError("need gp_weight >= 0 and learning_rate > 0")

    def gan_config(self, n_labels: int) -> GANConfig:
        """The network shapes for ``n_labels`` labels."""
        return GANConfig(**{**GAN_CONFIGS[self.gan].to_dict(), "n_labels": max(n_labels, 1)})

    def to_dict(self) -> dict:
        """JSON-ready fields (``WGANConfig(**d)`` rebuilds it)."""
        return asdict(self)


WGAN_CONFIGS: dict[str, WGANConfig] = {
    "paper": WGANConfig(),
    # The paper's loss, optimiser and batch on the compact networks, for a CPU: about an hour.
    "compact": WGANConfig(gan="compact", total_steps=2000, checkpoint_every=250),
    "smoke": WGANConfig(gan="smoke", batch_size=8, total_steps=6, checkpoint_every=3),
}
"""The named WGAN configurations (``halo-train wgan --config NAME``)."""


# --------------------------------------------------------------------------------------
# 3. The trainer
# --------------------------------------------------------------------------------------


class WGAN(keras.Model):
    """A conditional generator and critic trained with the Wasserstein loss and gradient penalty.

    Parameters
    ----------
    generator : keras.Model
        ``build_generator``: [z, label] -> image in (-1, 1).
    critic : keras.Model
        ``build_critic``: [image, label] -> score.
    latent_dim : int
        Size of z.
    n_critic : int
        Critic steps per generator step; ``train_step`` takes ``n_critic`` minibatches at once.
    gp_weight : float
        lambda.
    seed : int
        Seeds the draws of ``train_step``.
    **kwargs
        Passed to ``keras.Model``.
    """

    def __init__(self, generator: keras.Model, critic: keras.Model, *, latent_dim: int, n_critic: int = 5,
                 gp_weight: float = 10.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critic = generator, critic
        self.latent_dim, self.n_critic, self.gp_weight = int(latent_dim), int(n_critic), float(gp_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")

    def compile(self, critic_optimizer: keras.optimizers.Optimizer, generator_optimizer: keras.optimizers.Optimizer,
                **kwargs) -> None:
        """Set the two optimisers (the critic's and the generator's).

        Parameters
        ----------
        critic_optimizer, generator_optimizer : keras.optimizers.Optimizer
            Adam for each network (``make_optimizers``).
        **kwargs
            Passed to ``keras.Model.compile``.
        """
        super().compile(**kwargs)
        self.critic_optimizer, self.generator_optimizer = critic_optimizer, generator_optimizer

    @property
    def metrics(self) -> list:
        """Critic loss, generator loss, the Wasserstein estimate and the penalty."""
        return [self.critic_loss_tracker, self.generator_loss_tracker, self.wasserstein_tracker, self.penalty_tracker]

    def _latent(self, n) -> tf.Tensor:
        return keras.random.normal((n, self.latent_dim), seed=self.seed_generator)

    def train_step(self, data):
        """One generator step after ``n_critic`` critic steps (Gulrajani et al. algorithm 1)."""
        # 1. n_critic real minibatches of [-1, 1] cut-outs with their labels, stacked along the batch axis.
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = tf.convert_to_tensor(images, tf.float32)
        labels = tf.cast(labels, tf.int32)
        batch = tf.shape(images)[0] // self.n_critic
        for k in range(self.n_critic):
            real = images[k * batch:(k + 1) * batch]
            real_labels = labels[k * batch:(k + 1) * batch]
            # 2. Generated images of the same labels from fresh latents.
            fake = self.generator([self._latent(batch), real_labels], training=True)
            # 3. alpha ~ U[0, 1] per sample for the interpolates.
            alpha = draw_alpha(batch, seed=self.seed_generator)
            with tf.GradientTape() as tape:
                # 4. Critic scores of both: their difference estimates the Wasserstein distance.
                real_score = self.critic([real, real_labels], training=True)
                fake_score = self.critic([fake, real_labels], training=True)
                wasserstein = tf.reduce_mean(real_score) - tf.reduce_mean(fake_score)
                # 5. The gradient penalty at the interpolates (same labels).
                penalty = gradient_penalty(lambda x: self.critic([x, real_labels], training=True), real, fake, alpha)
                # 6. Critic loss: -W + lambda * GP.
                critic_loss = -wasserstein + self.gp_weight * penalty
            # 7. A critic Adam step.
            gradients = tape.gradient(critic_loss, self.critic.trainable_weights)
            self.critic_optimizer.apply_gradients(zip(gradients, self.critic.trainable_weights))
        # 8. Generator step on the last minibatch's labels: make the critic score fakes high.
        with tf.GradientTape() as tape:
            fake = self.generator([self._latent(batch), real_labels], training=True)
            generator_loss = -tf.reduce_mean(self.critic([fake, real_labels], training=True))
        gradients = tape.gradient(generator_loss, self.generator.trainable_weights)
        self.generator_optimizer.apply_gradients(zip(gradients, self.generator.trainable_weights))
        # 9. Track the losses (the last critic step's).
        self.critic_loss_tracker.update_state(critic_loss)
        self.generator_loss_tracker.update_state(generator_loss)
        self.wasserstein_tracker.update_state(wasserstein)
        self.penalty_tracker.update_state(penalty)
        return {m.name: m.result() for m in self.metrics}

    def sample(self, n: int, *, labels: np.ndarray, seed: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Draw ``n`` images of ``labels`` in [-1, 1].

        Parameters
        ----------
        n : int
            Images to draw.
        labels : numpy.ndarray
            (n,) int labels.
        seed : int, optional
            Seeds the latents.
        batch_size : int
            Images per generator call.

        Returns
        -------
        numpy.ndarray
            (n, H, W, C) float32.
        """
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        labels = np.asarray(labels, np.int32)
        out = [self.generator([z[i:i + batch_size], labels[i:i + batch_size]], training=False).numpy()
               for i in range(0, n, batch_size)]
        return np.concatenate(out).astype(np.float32)


def make_optimizers(config: WGANConfig) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """Adam(2e-4, 0.5, 0.999) for the critic and for the generator (table A6)."""
    return tuple(keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)
                 for _ in range(2))


# --------------------------------------------------------------------------------------
# 4. Runs
# --------------------------------------------------------------------------------------


def build_wgan(config: WGANConfig, *, n_labels: int) -> WGAN:
    """A fresh, compiled WGAN of ``config`` with its optimisers built."""
    shape = config.gan_config(n_labels)
    model = WGAN(build_generator(shape, seed=config.seed), build_critic(shape, seed=config.seed + 1),
                 latent_dim=shape.latent_dim, n_critic=config.n_critic, gp_weight=config.gp_weight, seed=config.seed)
    critic_optimizer, generator_optimizer = make_optimizers(config)
    model.compile(critic_optimizer, generator_optimizer)
    # Built before the first step, so train_step is traced once (slots made inside it force a retrace).
    critic_optimizer.build(model.critic.trainable_weights)
    generator_optimizer.build(model.generator.trainable_weights)
    return model


def train_wgan(halos: HaloSet, out: str | Path, *, config: WGANConfig, resume: bool = False,
               stop_after: int | None = None, extend_to: int | None = None, command: str | None = None,
               log: Callable[[str], None] = print, log_every: int = 50) -> dict:
    """Train (or resume) a conditional WGAN-GP on ``halos``, checkpointing into ``out``.

    The labels are the ``HaloSet``'s (paper halo types, source index, or one label for
    ``condition="none"``).

    Parameters
    ----------
    halos : HaloSet
        The training halos (``training.halos.halo_set``), exclusions already applied.
    out : path-like
        Model directory: ``model.json`` and ``checkpoint/``.
    config : WGANConfig
        Hyper-parameters; on resume they must equal the stored ones.
    resume : bool
        Continue the checkpoint in ``out``.
    stop_after : int, optional
        Stop (with a checkpoint) after this many generator steps in total.
    extend_to : int, optional
        Train on past ``config.total_steps`` to this many generator steps in total (the
        learning rate is constant), without changing the configuration a resume checks.
    command : str, optional
        The command line, recorded in ``model.json``.
    log : callable
        Receives progress lines.
    log_every : int
        Generator steps between progress lines.

    Returns
    -------
    dict
        ``step``, the last tracked losses, ``seconds`` and ``seconds_per_step`` of this call.
    """
    out = Path(out)
    if has_checkpoint(out) and not resume:
        raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
    n_labels = max(halos.n_labels, 1)
    model = build_wgan(config, n_labels=n_labels)
    record = {"kind": "wgan", "halo_survey_version": code_version(), "keras_version": keras.__version__,
              "tensorflow_version": tf.__version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": command, "config": config.to_dict(), "gan": config.gan_config(n_labels).to_dict(),
              "data": halos.metadata()}
    record = json.loads(json.dumps(record))  # tuples as JSON lists, to compare with the stored record
    nets = {"generator": model.generator, "critic": model.critic}
    if resume:
        stored = read_model_json(out)
        if stored.get("kind") != "wgan" or stored["config"] != record["config"] or stored["gan"] != record["gan"]:
            raise ValueError(f"{out} holds another model or configuration; resume with the same --config")
        if any(stored["data"][k] != record["data"][k] for k in ("sources", "excluded", "condition")):
            raise ValueError(f"{out} was trained on other data; resume with the same --exclude/--split/--condition")
        state = restore_checkpoint(out, models=nets, optimizers={
            "critic": (model.critic_optimizer, model.critic.trainable_weights),
            "generator": (model.generator_optimizer, model.generator.trainable_weights)})
        log(f"resumed {out} at step {state['step']}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "model.json", record)
        state = {"step": 0, "seconds": 0.0}
    step = int(model.generator_optimizer.iterations.numpy())
    batches = HaloBatches(halos, config.batch_size * config.n_critic, seed=config.seed * 1_000_003 + step)
    goal = training_end(config.total_steps, extend_to=extend_to)  # what the log counts towards
    end = training_end(goal, stop_after=stop_after)
    started, n_done, logs = time.perf_counter(), 0, {}
    while step < end:
        images, labels = batches.draw()
        logs = {k: float(v) for k, v in model.train_on_batch(images, labels, return_dict=True).items()}
        for metric in model.metrics:
            metric.reset_state()
        step, n_done = step + 1, n_done + 1
        if step % log_every == 0 or step == end:
            log(f"step {step}/{goal} " + " ".join(f"{k} {v:.4f}" for k, v in logs.items()))
            append_history(out, {"step": step, **logs, "seconds_per_step": (time.perf_counter() - started) / n_done})
        if step % config.checkpoint_every == 0 or step == end:
            save_checkpoint(out, models=nets, optimizers={"critic": model.critic_optimizer,
                                                          "generator": model.generator_optimizer},
                            state={"step": step, "seconds": state["seconds"] + time.perf_counter() - started, **logs})
    elapsed = time.perf_counter() - started
    return {**logs, "step": step, "seconds": elapsed, "seconds_per_step": elapsed / max(n_done, 1), "out": str(out)}


def load_wgan(model_dir: str | Path) -> tuple[WGAN, dict]:
    """A trained WGAN and its ``model.json`` record (with the checkpoint's ``state``).

    Parameters
    ----------
    model_dir : path-like
        A directory written by ``train_wgan``.

    Returns
    -------
    (WGAN, dict)
        The model (sample with ``model.sample``) and its record.
    """
    record = read_model_json(model_dir)
    if record.get("kind") != "wgan":
        raise ValueError(f"{model_dir} holds a {record.get('kind')!r} model, not a WGAN")
    config, shape = WGANConfig(**record["config"]), GANConfig(**record["gan"])
    model = WGAN(build_generator(shape), build_critic(shape), latent_dim=shape.latent_dim, n_critic=config.n_critic,
                 gp_weight=config.gp_weight)
    folder = checkpoint_dir(model_dir)
    if not (folder / "state.json").exists():
        raise FileNotFoundError(f"{model_dir} has no checkpoint yet (train it first)")
    model.generator.load_weights(folder / "generator.weights.h5")
    model.critic.load_weights(folder / "critic.weights.h5")
    record["state"] = json.loads((folder / "state.json").read_text())
    return model, record


__all__ = ["draw_alpha", "interpolate", "gradient_penalty", "WGANConfig", "WGAN_CONFIGS", "WGAN", "make_optimizers",
           "build_wgan", "train_wgan", "load_wgan"]
