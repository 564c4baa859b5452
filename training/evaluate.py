"""Two evaluation protocols, always reported side by side.

1. **Paper protocol** (reproduces Table 5's procedure, flattering by construction): the
   published TRAIN/TEST split; the test set is the 10 test sources' central cut-outs plus
   side cut-outs, each in its 16 rotated/flipped copies; the checkpoint is chosen by
   accuracy *on that same test set*; ORC 2 (test) overlaps ORC 3 (train) and A2744 (test)
   lies in the A2751 field (train). Metrics are over augmented copies, not sources.
2. **Grouped protocol** (honest, source level): k-fold over all 46 sources with overlap
   groups kept whole; the checkpoint is chosen on an inner, group-disjoint validation
   split, never on the test fold; normalisation is fitted on the training sources only;
   each test source is scored once (its central cut-out; also the mean over its 16
   rotated/flipped copies); side cut-outs of test halos give a separate false-positive
   rate. The random-forest baseline runs in the very same folds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from training.augment import all_augmentations
from training.data import SampleSet, SourceCutouts, fit_normalisation, samples_of
from training.generated import GeneratedSet, choose_for_fold, with_generated
from training.train import TrainConfig, predict_halo, sample_weights, train_classifier

# --------------------------------------------------------------------------------------
# Metrics (pure)
# --------------------------------------------------------------------------------------


def binary_metrics(y_true: np.ndarray, score: np.ndarray, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (at ``threshold``) and ROC-AUC of halo scores.

    Parameters
    ----------
    y_true : numpy.ndarray
        True classes, 1 = halo.
    score : numpy.ndarray
        Halo probabilities, aligned with ``y_true``.
    threshold : float
        A score at or above it counts as a halo prediction.

    Returns
    -------
    dict of str to float
        ``accuracy``, ``precision``, ``recall``, ``f1`` (0 where undefined), ``roc_auc``
        (NaN unless both classes are present), and the counts ``tp``, ``fp``, ``fn``,
        ``tn``, ``n`` (int).
    """
    y_true = np.asarray(y_true).astype(int)
    pred = (np.asarray(score) >= threshold).astype(int)
    tp, fp = int(np.sum((pred == 1) & (y_true == 1))), int(np.sum((pred == 1) & (y_true == 0)))
    fn, tn = int(np.sum((pred == 0) & (y_true == 1))), int(np.sum((pred == 0) & (y_true == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = float(roc_auc_score(y_true, score)) if len(set(y_true)) == 2 else float("nan")
    return {"accuracy": (tp + tn) / len(y_true), "precision": precision, "recall": recall, "f1": f1, "roc_auc": auc,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n": len(y_true)}


def mean_std(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric over runs."""
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)]
    return {k: {"mean": float(np.nanmean([r[k] for r in runs])), "std": float(np.nanstd([r[k] for r in runs]))} for k in keys}


# --------------------------------------------------------------------------------------
# Folds (pure)
# --------------------------------------------------------------------------------------


def grouped_folds(groups: np.ndarray, labels: np.ndarray, *, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per source; whole overlap groups go to one fold, halos spread evenly.

    Groups are shuffled, then each goes to the fold that has the fewest sources of the
    group's majority class (ties: fewest sources overall).

    Parameters
    ----------
    groups : numpy.ndarray
        Overlap group of each source.
    labels : numpy.ndarray
        Class of each source (0 or 1).
    n_folds : int
        Number of folds.
    seed : int
        Seeds the shuffle and the tie-breaks.

    Returns
    -------
    numpy.ndarray
        Fold (0..n_folds-1) of each source.
    """
    groups, labels = np.asarray(groups), np.asarray(labels)
    rng = np.random.default_rng(seed)
    unique = rng.permutation(np.unique(groups))
    # Largest groups first so the greedy fill stays balanced.
    unique = sorted(unique, key=lambda g: -np.sum(groups == g))
    fold_of_group, per_class = {}, np.zeros((n_folds, 2), int)
    for g in unique:
        members = labels[groups == g]
        majority = int(round(members.mean()))
        order = np.lexsort((rng.random(n_folds), per_class.sum(1), per_class[:, majority]))
        fold = int(order[0])
        fold_of_group[g] = fold
        per_class[fold] += np.bincount(members, minlength=2)
    return np.array([fold_of_group[g] for g in groups])


def inner_split(idx: np.ndarray, groups: np.ndarray, labels: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split source indices ``idx`` into (train, validation), group-disjoint, both classes in each.

    Parameters
    ----------
    idx : numpy.ndarray
        Indices of the sources to split (an outer fold's training sources).
    groups, labels : numpy.ndarray
        Overlap group and class of every source, indexed by ``idx``.
    fraction : float
        Rough share of validation: one of ``max(2, round(1 / fraction))`` grouped folds.
    seed : int
        Seeds the attempts.

    Returns
    -------
    train, validation : numpy.ndarray
        Subsets of ``idx``.

    Raises
    ------
    ValueError
        No split with both classes on each side was found in 100 attempts.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        folds = grouped_folds(groups[idx], labels[idx], n_folds=max(2, round(1 / fraction)), seed=int(rng.integers(1 << 31)))
        val = folds == 0
        if len(set(labels[idx][val])) == 2 and len(set(labels[idx][~val])) == 2:
            return idx[~val], idx[val]
    raise ValueError("could not find a group-disjoint validation split with both classes")


# --------------------------------------------------------------------------------------
# Random-forest baseline (the number to beat)
# --------------------------------------------------------------------------------------


def block_features(x: np.ndarray, norm, *, block: int = 4) -> np.ndarray:
    """Min-max-normalised cut-outs averaged in block x block cells: (N, 16*16*4) for 64x64x4.

    Parameters
    ----------
    x : numpy.ndarray
        Clipped cut-outs (N, H, W, C) in Jy/beam.
    norm : Normalisation
        Applied before averaging.
    block : int
        Side of the averaging cells in pixels; must divide H and W.

    Returns
    -------
    numpy.ndarray
        (N, H/block * W/block * C) features.
    """
    n, h, w, c = x.shape
    return norm.apply(x).reshape(n, h // block, block, w // block, block, c).mean(axis=(2, 4)).reshape(n, -1)


def random_forest_scores(train: SampleSet, test_x: np.ndarray, *, seed: int) -> np.ndarray:
    """Halo probability from a random forest on block features, trained with the same weights.

    Parameters
    ----------
    train : SampleSet
        Base training samples; the forest sees all 16 rotated/flipped copies of each, with
        the CNN's sample weights, and a min-max normalisation fitted on them.
    test_x : numpy.ndarray
        Clipped cut-outs (N, 64, 64, 4) to score.
    seed : int
        The forest's ``random_state``.

    Returns
    -------
    numpy.ndarray
        (N,) halo probabilities.
    """
    norm = fit_normalisation(train)
    augmented = all_augmentations(train.x).reshape(-1, *train.x.shape[1:])
    y = np.repeat(train.y, 16)
    w = np.repeat(sample_weights(train), 16)
    forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=seed)
    forest.fit(block_features(augmented, norm), y, sample_weight=w)
    return forest.predict_proba(block_features(test_x, norm))[:, 1]


# --------------------------------------------------------------------------------------
# Protocol 1: the paper's
# --------------------------------------------------------------------------------------


def paper_protocol(sources: list[SourceCutouts], *, config: TrainConfig, runs: int = 10,
                   generated: Sequence[GeneratedSet] = (), n_generated: int | None = None) -> dict:
    """The paper's Table 5 procedure, reproduced as published (see module docstring).

    Parameters
    ----------
    sources : list of SourceCutouts
        All sources; their ``split`` (``"train"``/``"test"``) picks the published sets.
    config : TrainConfig
        Hyper-parameters; run ``i`` uses seed ``config.seed + i`` and monitors
        ``val_accuracy`` on the test set, as the paper did.
    runs : int
        Independent trainings averaged.
    generated : sequence of GeneratedSet
        Generated halos to add to class 1 (``training.generated``); the first set whose
        generator never saw a test source is used. Empty: classic augmentation only.
    n_generated : int, optional
        How many of the set's images to add (all by default).

    Returns
    -------
    dict
        ``protocol``, ``arch``, ``runs``, ``n_test_images``, ``metrics`` (mean and std
        of ``binary_metrics`` over runs), ``per_run``, ``histories`` and ``generated``
        (the set used, or None).

    Raises
    ------
    ValueError
        No training or no test sources, or no generated set fit to use.
    """
    train = samples_of([s for s in sources if s.split == "train"])
    chosen = (choose_for_fold(generated, [s.name for s in sources if s.split == "test"], fold="paper test split")
              if generated else None)
    test_base = samples_of([s for s in sources if s.split == "test"])
    if len(train) == 0 or len(test_base) == 0:
        raise ValueError("paper protocol needs sources in TRAIN_DATA_* and TEST_DATA_* folders")
    copies = all_augmentations(test_base.x)
    test = SampleSet(copies.reshape(-1, *test_base.x.shape[1:]), np.repeat(test_base.y, 16),
                     np.repeat(test_base.source, 16), np.repeat(test_base.kind, 16), np.repeat(test_base.noise, 16, axis=0))
    norm = fit_normalisation(train, kind=config.normalisation)
    per_run, histories = [], []
    for run in tqdm(range(runs), desc=f"paper protocol ({config.arch})", unit="run"):
        cfg = replace(config, seed=config.seed + run, monitor="val_accuracy")  # checkpoint chosen on the test set
        augmented = with_generated(train, chosen, n=n_generated, seed=cfg.seed) if chosen else train
        result = train_classifier(augmented, test, config=cfg, norm=norm)
        per_run.append(binary_metrics(test.y, predict_halo(result.model, norm, test.x, noise=test.noise)))
        histories.append(result.summary())
    return {"protocol": "paper", "arch": config.arch, "runs": runs, "n_test_images": len(test),
            "metrics": mean_std(per_run), "per_run": per_run, "histories": histories,
            "generated": chosen.describe() if chosen else None}


# --------------------------------------------------------------------------------------
# Protocol 2: honest, grouped, source level
# --------------------------------------------------------------------------------------


def generated_per_fold(generated: Sequence[GeneratedSet], names: Sequence[str], groups: np.ndarray, labels: np.ndarray,
                       *, n_folds: int, repeats: int, seed: int) -> dict[tuple[int, int], GeneratedSet | None]:
    """The generated set each (repeat, fold) of a grouped protocol uses, all chosen before any training.

    Checking every fold first means a missing fold generator is reported at once, not after
    hours of training the folds before it.

    Parameters
    ----------
    generated : sequence of GeneratedSet
        The sets given (empty: no generated halos, every fold gets None).
    names : sequence of str
        Source (field) names, in the order of ``groups`` and ``labels``.
    groups, labels : numpy.ndarray
        Overlap groups and labels, as the protocol assigns folds from them.
    n_folds, repeats, seed : int
        The protocol's fold settings (``grouped_folds`` with ``seed + 1000 * repeat``).

    Returns
    -------
    dict
        ``(repeat, fold)`` -> the set, or None.

    Raises
    ------
    ValueError
        A fold has no set whose generator never saw its test sources (``choose_for_fold``).
    """
    chosen: dict[tuple[int, int], GeneratedSet | None] = {}
    for repeat in range(repeats):
        folds = grouped_folds(groups, labels, n_folds=n_folds, seed=seed + 1000 * repeat)
        for fold in range(n_folds):
            held_out = [names[i] for i in np.flatnonzero(folds == fold)]
            chosen[repeat, fold] = (choose_for_fold(generated, held_out, fold=f"repeat {repeat} fold {fold}")
                                    if generated else None)
    return chosen


def fold_predictions(sources, test_idx, train_idx, val_idx, *, config, fold_seed,
                     generated: GeneratedSet | None = None, n_generated: int | None = None) -> tuple[list[dict], dict, np.ndarray]:
    """One grouped fold: train on ``train_idx`` (early-stopped on ``val_idx``), score the test sources.

    Parameters
    ----------
    sources : list of SourceCutouts
        Every source.
    test_idx, train_idx, val_idx : numpy.ndarray
        Indices of the test, training and inner-validation sources (group-disjoint).
    config : TrainConfig
        The network and its training.
    fold_seed : int
        Seeds the network and the random forest.
    generated : GeneratedSet, optional
        Generated halos added to the network's class 1 (never to the random forest's),
        from a generator that did not see the fold's test sources.
    n_generated : int, optional
        How many of them (all by default).

    Returns
    -------
    rows : list of dict
        Per test source: label, group, the network's score (central cut-out and mean over 16
        copies) and the random forest's, trained on training and validation sources.
    history : dict
        The run's summary.
    side_scores : numpy.ndarray
        The network's scores of the test halos' side cut-outs.
    """
    pick = lambda ids: [sources[i] for i in ids]  # noqa: E731
    train, val = samples_of(pick(train_idx)), samples_of(pick(val_idx))
    val_aug = all_augmentations(val.x)
    val = SampleSet(val_aug.reshape(-1, *val.x.shape[1:]), np.repeat(val.y, 16), np.repeat(val.source, 16),
                    np.repeat(val.kind, 16), np.repeat(val.noise, 16, axis=0))
    norm = fit_normalisation(train, kind=config.normalisation)
    network_train = with_generated(train, generated, n=n_generated, seed=fold_seed) if generated else train
    result = train_classifier(network_train, val, config=replace(config, seed=fold_seed), norm=norm)
    tests = pick(test_idx)
    centres = np.stack([s.centre for s in tests])
    noise = np.stack([s.noise for s in tests])
    score = predict_halo(result.model, norm, centres, noise=noise)
    tta = predict_halo(result.model, norm, all_augmentations(centres).reshape(-1, *centres.shape[1:]),
                       noise=np.repeat(noise, 16, axis=0)).reshape(len(tests), 16).mean(1)
    rf = random_forest_scores(samples_of(pick(np.concatenate([train_idx, val_idx]))), centres, seed=fold_seed)
    sides = [s.sides for s in tests if len(s.sides)]
    side_noise = [np.repeat(s.noise[None], len(s.sides), axis=0) for s in tests if len(s.sides)]
    side_scores = (predict_halo(result.model, norm, np.concatenate(sides), noise=np.concatenate(side_noise))
                   if sides else np.zeros(0))
    rows = [{"name": s.name, "label": s.label, "group": s.group, "score": float(a), "score_tta": float(b), "rf_score": float(c)}
            for s, a, b, c in zip(tests, score, tta, rf)]
    return rows, result.summary(), side_scores


def grouped_protocol(sources: list[SourceCutouts], *, config: TrainConfig, n_folds: int = 5, repeats: int = 3,
                     val_fraction: float = 0.2, threshold: float = 0.95, generated: Sequence[GeneratedSet] = (),
                     n_generated: int | None = None) -> dict:
    """Honest source-level evaluation (see module docstring); returns metrics and every prediction.

    Parameters
    ----------
    sources : list of SourceCutouts
        All sources, with their overlap groups.
    config : TrainConfig
        Hyper-parameters; fold and repeat seeds derive from ``config.seed``.
    n_folds : int
        Outer folds (grouped, see ``grouped_folds``).
    repeats : int
        Repetitions with different fold assignments.
    val_fraction : float
        Share of each outer training set held out, group-disjoint, to pick the checkpoint.
    threshold : float
        The survey's candidate threshold: metrics and the side cut-outs' false-positive
        rate are also reported at it (besides 0.5).
    generated : sequence of GeneratedSet
        Generated halos for the network's class 1; each fold uses the first set whose
        generator never saw that fold's test sources (``training.generated``).
    n_generated : int, optional
        How many images of the set each fold adds (all by default).

    Returns
    -------
    dict
        ``metrics`` (mean and std over repeats of CNN centre, CNN test-time augmentation,
        CNN at ``threshold`` and random forest), ``per_repeat``, ``side_cutouts``,
        ``predictions`` (one row per source, fold and repeat), ``histories``, and the
        settings.

    Raises
    ------
    ValueError
        An inner split with both classes could not be found, or a fold has no generated set
        fit to use.
    """
    groups = np.array([s.group for s in sources])
    labels = np.array([s.label for s in sources])
    per_fold = generated_per_fold(generated, [s.name for s in sources], groups, labels, n_folds=n_folds,
                                  repeats=repeats, seed=config.seed)
    rows, histories, summaries, side_fpr = [], [], [], []
    for repeat in range(repeats):
        folds = grouped_folds(groups, labels, n_folds=n_folds, seed=config.seed + 1000 * repeat)
        repeat_rows, repeat_sides = [], []
        for fold in tqdm(range(n_folds), desc=f"grouped protocol ({config.arch}) repeat {repeat + 1}/{repeats}", unit="fold"):
            test_idx = np.flatnonzero(folds == fold)
            train_idx, val_idx = inner_split(np.flatnonzero(folds != fold), groups, labels, fraction=val_fraction, seed=config.seed + 31 * fold + repeat)
            chosen = per_fold[repeat, fold]
            fold_rows, history, sides = fold_predictions(sources, test_idx, train_idx, val_idx, config=config,
                                                         fold_seed=config.seed + 100 * repeat + fold,
                                                         generated=chosen, n_generated=n_generated)
            if chosen:
                history["generated"] = chosen.describe()
            repeat_rows += [{**r, "repeat": repeat, "fold": fold} for r in fold_rows]
            repeat_sides.append(sides)
            histories.append({**history, "repeat": repeat, "fold": fold, "val_sources": [sources[i].name for i in val_idx]})
        y = np.array([r["label"] for r in repeat_rows])
        sides = np.concatenate(repeat_sides)
        summaries.append({
            "cnn_centre": binary_metrics(y, np.array([r["score"] for r in repeat_rows])),
            "cnn_tta": binary_metrics(y, np.array([r["score_tta"] for r in repeat_rows])),
            "cnn_centre_at_threshold": binary_metrics(y, np.array([r["score"] for r in repeat_rows]), threshold=threshold),
            "random_forest": binary_metrics(y, np.array([r["rf_score"] for r in repeat_rows])),
        })
        side_fpr.append({"n_side": int(len(sides)), "fpr_at_0.5": float(np.mean(sides >= 0.5)), f"fpr_at_{threshold}": float(np.mean(sides >= threshold))})
        rows += repeat_rows
    metrics = {key: mean_std([s[key] for s in summaries]) for key in summaries[0]}
    return {"protocol": "grouped", "arch": config.arch, "n_folds": n_folds, "repeats": repeats, "threshold": threshold,
            "n_sources": len(sources), "n_groups": int(len(set(groups))), "metrics": metrics, "per_repeat": summaries,
            "side_cutouts": side_fpr, "predictions": rows, "histories": histories}


def leave_one_source_out_forest(sources: list[SourceCutouts], *, seed: int = 0) -> dict:
    """The data README's baseline: random forest, leave-one-source-out over all sources.

    Leaves one *source* out (not its overlap group), as the README's number was measured;
    the grouped protocol's forest is the honest comparison.
    """
    scores = []
    for i in tqdm(range(len(sources)), desc="random forest LOSO", unit="source"):
        train = samples_of([s for j, s in enumerate(sources) if j != i])
        scores.append(random_forest_scores(train, sources[i].centre[None], seed=seed)[0])
    return {"protocol": "random-forest-loso", "metrics": binary_metrics(np.array([s.label for s in sources]), np.array(scores)),
            "predictions": [{"name": s.name, "label": s.label, "rf_score": float(p)} for s, p in zip(sources, scores)]}


def timed(fn, *args, **kwargs) -> dict:
    """Run a protocol and add its wall time in seconds.

    Parameters
    ----------
    fn : callable
        A protocol, returning a dict.
    *args, **kwargs
        Passed to ``fn``.

    Returns
    -------
    dict
        ``fn``'s result plus ``wall_seconds``.
    """
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return {**result, "wall_seconds": time.perf_counter() - start}


def config_dict(config: TrainConfig) -> dict:
    """The training configuration as a plain dict (for results files)."""
    return asdict(config)
