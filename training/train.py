"""One classifier training run: augmented batches on the fly, weighted loss, early stopping.

Paper section 4.2 / table A6: Adam (lr 1e-3, beta 0.9/0.999), batch 128, class-balanced
cross-entropy, 15-25 epochs with early stopping, best checkpoint kept. What counts as
"validation" is the caller's choice: the paper protocol passes its test set (as the paper
did), the grouped protocol an inner split that never overlaps the test fold.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from survey.model.normalisation import Normalisation  # noqa: E402
from training.augment import Augmenter  # noqa: E402
from training.data import NORMALISATIONS, SampleSet  # noqa: E402
from training.models import ClassifierConfig, build_classifier  # noqa: E402


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run (defaults: the paper's, appendix A table A6).

    Attributes
    ----------
    arch : str
        ``cnn`` (I), ``attention`` (A) or ``dense`` (D).
    epochs : int
        Upper bound; early stopping usually ends sooner (paper: 15-25 epochs).
    steps_per_epoch : int
        Augmented batches per epoch. The paper's 1905 iterations over ~23 epochs are ~83
        steps of 128; fewer steps per epoch give early stopping a finer grain.
    batch_size, learning_rate : int, float
        128 and 1e-3 (Adam).
    patience : int
        Epochs without improvement of ``monitor`` before stopping.
    monitor : str
        ``val_loss`` (default) or ``val_accuracy`` (the paper's checkpoint criterion).
    normalisation : str
        Input scaling fitted on the training sources: ``minmax`` (the paper's) or ``log``
        (see ``training.data.fit_normalisation``).
    seed : int
        Seeds weights, batch order and augmentation: a run is reproducible.
    kind_shares : tuple of (str, float)
        ``(("1:centre", 0.2), ("1:injected", 0.8), ...)``: the share of its class's weight
        each ``label:kind`` group of samples carries (renormalised over the groups present,
        each class half of the total). Empty: the paper protocols' weights
        (``sample_weights``). With shares, batches are drawn in proportion to the weights
        and every drawn sample weighs the same: the same expected loss, with far less noise
        when a few real cut-outs sit beside thousands of injected ones.
    """

    arch: str = "attention"
    epochs: int = 25
    steps_per_epoch: int = 40
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 5
    monitor: str = "val_loss"
    normalisation: str = "minmax"
    seed: int = 0
    kind_shares: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if self.arch not in ("cnn", "attention", "dense"):
            raise ValueError(f"arch must be cnn, attention or dense, got {self.arch!r}")
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise ValueError(f"monitor must be val_loss or val_accuracy, got {self.monitor!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}")
        if min(self.epochs, self.steps_per_epoch, self.batch_size, self.patience) < 1:
            raise ValueError("epochs, steps_per_epoch, batch_size and patience must be >= 1")


def sample_weights(samples: SampleSet, shares: tuple[tuple[str, float], ...] = ()) -> np.ndarray:
    """Class-balanced weights; within class 0, non-halo sources and side cut-outs weigh half each.

    Both classes carry equal total weight (the paper's class-balanced cross-entropy). Side
    cut-outs outnumber the non-halo sources 8:1, so without the second split the model would
    mostly learn "empty vs. not empty" and barely see the non-halo sources. With ``shares``
    (``TrainConfig.kind_shares``) each ``label:kind`` group gets its share of its class.

    Parameters
    ----------
    samples : SampleSet
        The samples (labels and kinds).
    shares : tuple of (str, float)
        Weight share per ``"label:kind"`` group; empty for the paper protocols' split.

    Returns
    -------
    numpy.ndarray
        float32 weights averaging 1 over the samples.
    """
    if shares:
        return _shared_weights(samples, dict(shares))
    weights = np.zeros(len(samples), np.float64)
    halo = samples.y == 1
    side = (samples.y == 0) & (samples.kind == "side")
    other = (samples.y == 0) & ~side
    weights[halo] = 0.5 / max(halo.sum(), 1)
    if side.any() and other.any():
        weights[side], weights[other] = 0.25 / side.sum(), 0.25 / other.sum()
    else:
        weights[side | other] = 0.5 / max((side | other).sum(), 1)
    return (weights * len(samples)).astype(np.float32)


def _shared_weights(samples: SampleSet, shares: dict[str, float]) -> np.ndarray:
    groups = np.array([f"{y}:{k}" for y, k in zip(samples.y, samples.kind)])
    unknown = sorted(set(groups) - set(shares))
    if unknown:
        raise ValueError(f"samples of kinds {unknown} have no weight share; shares are given for {sorted(shares)}")
    weights = np.zeros(len(samples), np.float64)
    for label in (0, 1):
        present = [g for g in np.unique(groups) if g.startswith(f"{label}:")]
        total = sum(shares[g] for g in present)
        for g in present:
            chosen = groups == g
            weights[chosen] = 0.5 * shares[g] / total / chosen.sum()
    return (weights * len(samples) / weights.sum()).astype(np.float32)


class AugmentedBatches(keras.utils.PyDataset):
    """Endless augmented, normalised batches drawn uniformly from the base samples.

    Parameters
    ----------
    samples : SampleSet
        Base (un-augmented) samples in clipped Jy/beam, with their sample weights' classes.
    norm : Normalisation
        Applied to every augmented batch.
    batch_size : int
        Samples per batch, drawn with replacement.
    steps : int
        Batches per epoch (``len``).
    seed : int
        Seeds the augmentation; the batch draws use ``seed + 1``.
    shares : tuple of (str, float)
        ``TrainConfig.kind_shares``: with shares, draws follow the weights and each drawn
        sample weighs the same.
    """

    def __init__(self, samples: SampleSet, norm: Normalisation, *, batch_size: int, steps: int, seed: int,
                 shares: tuple[tuple[str, float], ...] = ()):
        super().__init__()
        self.augmenter = Augmenter(samples.x, seed=seed)
        self.y, self.w = samples.y.astype(np.int32), sample_weights(samples, shares)
        self.noise = samples.noise
        # With shares, draw in proportion to the weights and weigh every drawn sample alike.
        self.draw_p = self.w / self.w.sum() if shares else None
        self.norm, self.batch_size, self.steps = norm, batch_size, steps
        self.rng = np.random.default_rng(seed + 1)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        if self.draw_p is None:
            idx = self.rng.integers(0, len(self.y), self.batch_size)
            weights = self.w[idx]
        else:
            idx = self.rng.choice(len(self.y), self.batch_size, p=self.draw_p)
            weights = np.ones(self.batch_size, np.float32)
        noise = None if self.noise is None else self.noise[idx][:, None, None, :]
        return self.norm.apply(self.augmenter.draw(idx), noise=noise), self.y[idx], weights


@dataclass
class TrainResult:
    """A trained model (best checkpoint restored) and its training history."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    config: TrainConfig
    norm: Normalisation
    extras: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready record of the run (no weights)."""
        return {"config": asdict(self.config), "best_epoch": self.best_epoch, "history": self.history, "normalisation": self.norm.to_dict()}


def train_classifier(
    train: SampleSet, val: SampleSet, *, config: TrainConfig, norm: Normalisation, verbose: int = 0
) -> TrainResult:
    """Train one classifier; the weights of the best epoch by ``config.monitor`` are kept.

    Parameters
    ----------
    train : SampleSet
        Base training samples, augmented on the fly (``AugmentedBatches``).
    val : SampleSet
        Validation samples, used as given (normalised, not augmented), with sample weights.
    config : TrainConfig
        Architecture and hyper-parameters; its seed seeds Keras.
    norm : Normalisation
        Input scaling fitted on the training samples.
    verbose : int
        Keras ``fit`` verbosity.

    Returns
    -------
    TrainResult
        The model with the best epoch's weights restored, its history and the 1-based
        best epoch.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_classifier(config.arch, ClassifierConfig(seed=config.seed))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=0.9, beta_2=0.999),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        weighted_metrics=["accuracy"],
    )
    batches = AugmentedBatches(train, norm, batch_size=config.batch_size, steps=config.steps_per_epoch, seed=config.seed,
                               shares=config.kind_shares)
    val_data = (norm.apply(val.x, noise=val.noise_of()), val.y.astype(np.int32), sample_weights(val, config.kind_shares))
    stop = keras.callbacks.EarlyStopping(
        monitor=config.monitor, mode="min" if config.monitor == "val_loss" else "max",
        patience=config.patience, restore_best_weights=True,
    )
    fit = model.fit(batches, validation_data=val_data, epochs=config.epochs, callbacks=[stop], verbose=verbose)
    history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
    scores = history[config.monitor]
    best = int(np.argmin(scores) if config.monitor == "val_loss" else np.argmax(scores))
    return TrainResult(model, history, best + 1, config, norm)


def predict_halo(model: keras.Model, norm: Normalisation, x: np.ndarray, *, batch_size: int = 256,
                 noise: np.ndarray | None = None) -> np.ndarray:
    """Halo probability (softmax column 1) of clipped cut-outs (N, 64, 64, 4).

    Parameters
    ----------
    model : keras.Model
        A trained classifier.
    norm : Normalisation
        The scaling it was trained with, applied here.
    x : numpy.ndarray
        Clipped cut-outs (N, 64, 64, 4) in Jy/beam.
    batch_size : int
        Samples per ``predict`` batch.
    noise : numpy.ndarray, optional
        (N, 4) each cut-out's band noise, for a noise-unit scaling (``norm.needs_noise``).

    Returns
    -------
    numpy.ndarray
        (N,) halo probabilities.
    """
    if len(x) == 0:
        return np.zeros(0, np.float32)
    scaled = norm.apply(x, noise=None if noise is None else np.asarray(noise)[:, None, None, :])
    return np.asarray(model.predict(scaled, batch_size=batch_size, verbose=0))[:, 1]
