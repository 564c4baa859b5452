"""The blind-scan protocol: honest grouped folds in which a classifier learns, is calibrated and is measured the way a survey uses it.

Per fold (overlap groups kept whole, ``training.evaluate.grouped_folds``):

1. the training side is split, group-disjoint, into inner-training fields and inner-validation
   fields (``training.evaluate.inner_split``);
2. a classifier is trained on the inner-training fields' samples (``training.samples``: real
   centres, injected halos, empty windows, compact sources) and on any mock-sky training
   fields (``BlindConfig.mock_fields``, ``training.mock_fields``), early-stopped on the
   inner-validation fields' samples (or ``BlindConfig.ensemble`` such classifiers, alike
   but for their training seed, averaged: ``training.ensemble``);
3. hard-negative mining: the model scans its own training fields, the highest-scoring
   candidates outside the exclusions join the negatives, and the model is trained again;
4. the operating point: the lowest threshold at which a blind scan of the inner-validation
   fields gives at most ``target_rate_per_deg2`` false candidates;
5. on the test fold, which nothing above touched (not its sources, not its fields as
   backgrounds, not its threshold): the sources' scores (a), the completeness of halos
   injected into its fields, in targets mode and in a blind scan, at the operating point
   (b), and its blind scans' false candidates against threshold (c).

The random forest and the paper-style CNN (the recipe of the shipped model before this
protocol) are trained in the very same folds, so (a) compares all three on the same
sources.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from survey.images.halos import Halo
from training.data import SourceCutouts, fit_normalisation
from training.evaluate import binary_metrics, fold_predictions, generated_per_fold, grouped_folds, inner_split
from training.fields import Field
from training.generated import GeneratedSet
from training.goal_cells import OFFSET_RINGS_ARCMIN, in_goal_cells
from training.mock_fields import MOCK_TRAINING_SEED, mock_fields
from training.samples import HaloPrior, Pool, PoolSizes, concat, field_pool, generated_samples, window_samples
from training.scan import (
    FieldScan,
    Recovery,
    false_candidates,
    keras_scorer,
    place_halos,
    rate_curve,
    recover,
    scan_fields,
    threshold_for_rate,
)
from training.train import TrainConfig, train_classifier

POOL_VERSION = 2
"""Bumped when ``training.samples`` changes what a pool holds, so cached pools are drawn again."""

DEFAULT_SHARES = (("1:centre", 0.2), ("1:injected", 0.8), ("0:centre", 0.15), ("0:empty", 0.25),
                  ("0:compact", 0.3), ("0:mined", 0.3))
"""Weight shares of the sample kinds within each class (``TrainConfig.kind_shares``)."""

RATE_THRESHOLDS = tuple(np.round(np.concatenate([np.arange(0.5, 0.95, 0.05), np.arange(0.95, 1.0, 0.005)]), 4))
"""Thresholds at which each test fold's false-candidate rate is recorded."""


@dataclass(frozen=True)
class BlindConfig:
    """Everything the blind protocol does, so that a results file says how it was made.

    Attributes
    ----------
    train : TrainConfig
        The classifier and its training.
    sizes : PoolSizes
        Samples per field and kind.
    prior : HaloPrior
        Injected training halos.
    n_folds, repeats : int
        Outer grouped folds, and repeats with other fold assignments.
    val_fraction : float
        Share of each training side held out (group-disjoint) for early stopping and calibration.
    target_rate_per_deg2 : float
        False candidates per deg2 the operating point allows on the validation fields.
    mining_rounds : int
        Rounds of hard-negative mining (0: none).
    mined_per_field : int
        Highest-scoring candidates mined from each training field per round.
    mining_floor : float
        Only candidates scoring at least this are mined.
    grid_flux_150mhz_jy, grid_r_e_arcmin : tuple of float
        The completeness grid.
    per_cell : int
        Halos injected per grid cell per fold.
    baselines : bool
        Also train the random forest and the paper-style CNN in the same folds.
    mock_fields : int
        Halo-free mock-sky fields added to every fold's training fields (``training.mock_fields``;
        0: none). Never validation, calibration or test fields.
    mock_seed : int
        Seed of that mock sky (not the demo's 0).
    seed : int
        Seeds folds, pools, training and injections.
    training_seed : int, optional
        Seeds the classifiers' training alone (weights, batches); folds, pools, mining
        floors and the completeness grid stay those of ``seed``. Two runs that differ only
        here measure how much the numbers move with the training's randomness.
    ensemble : int
        Classifiers trained per fold (each with its own mining), alike but for their
        training seed (``training.ensemble.member_seed``); the fold's model averages their
        probabilities. 1: a single classifier.
    """

    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        arch="cnn", epochs=40, steps_per_epoch=60, patience=8, normalisation="log", kind_shares=DEFAULT_SHARES))
    sizes: PoolSizes = PoolSizes()
    prior: HaloPrior = HaloPrior()
    n_folds: int = 5
    repeats: int = 1
    val_fraction: float = 0.2
    target_rate_per_deg2: float = 0.1
    mining_rounds: int = 1
    mined_per_field: int = 30
    mining_floor: float = 0.5
    grid_flux_150mhz_jy: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
    grid_r_e_arcmin: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0)
    per_cell: int = 4
    baselines: bool = True
    mock_fields: int = 0
    mock_seed: int = MOCK_TRAINING_SEED
    seed: int = 0
    training_seed: int | None = None
    ensemble: int = 1

    def seed_of_training(self, offset: int = 0) -> int:
        """The seed a classifier's training gets: ``training_seed`` when set, else ``seed``, plus ``offset`` (a fold's)."""
        return (self.seed if self.training_seed is None else self.training_seed) + offset


def training_mock_fields(config: BlindConfig) -> list[Field]:
    """The mock-sky fields every fold trains on besides its real ones (``config.mock_fields`` of them)."""
    return mock_fields(config.mock_fields, seed=config.mock_seed)


def build_pools(fields: Sequence[Field], config: BlindConfig, *, cache: Path | None = None,
                log: Callable[[str], None] = print) -> dict[str, Pool]:
    """Every field's base samples (``training.samples.field_pool``), cached on disk when ``cache`` is given.

    Parameters
    ----------
    fields : sequence of Field
        The fields.
    config : BlindConfig
        Sizes, prior and seed of the pools.
    cache : Path, optional
        Directory for one ``.npz`` per field, keyed by the pool settings.
    log : callable
        Progress messages.

    Returns
    -------
    dict of str to Pool
        By field name.
    """
    from training.samples import POOL_COLUMNS

    settings = json.dumps({"sizes": asdict(config.sizes), "prior": asdict(config.prior), "seed": config.seed,
                           "version": POOL_VERSION}, sort_keys=True)
    key = int(hashlib.sha256(settings.encode()).hexdigest()[:10], 16)
    pools = {}
    start = time.perf_counter()
    for f in fields:
        path = cache / f"pool-{key:010x}-{f.name.replace(' ', '_').replace('/', '_')}.npz" if cache else None
        if path is not None and path.exists():
            data = np.load(path, allow_pickle=False)
            pools[f.name] = Pool(*(data[name] for name in POOL_COLUMNS))
            continue
        pools[f.name] = field_pool(f, sizes=config.sizes, prior=config.prior, seed=config.seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **{name: getattr(pools[f.name], name) for name in POOL_COLUMNS})
    log(f"pools of {len(fields)} fields: {sum(len(p) for p in pools.values())} samples "
        f"in {time.perf_counter() - start:.0f} s")
    return pools


def mine(fields: Sequence[Field], scans: Sequence[FieldScan], *, per_field: int, floor: float) -> Pool:
    """The highest-scoring candidates outside the exclusions of each field, as ``mined`` negatives.

    Parameters
    ----------
    fields : sequence of Field
        The fields scanned (the model's own training fields).
    scans : sequence of FieldScan
        Their scans.
    per_field : int
        Candidates taken from each field.
    floor : float
        Lowest score mined.

    Returns
    -------
    Pool
    """
    from training.scan import candidate_peaks

    parts = []
    for f, scan in zip(fields, scans):
        peaks = candidate_peaks(f.ipix, scan.scores, threshold=floor, order=f.window_order)
        peaks = peaks[~f.excluded[peaks]]
        best = peaks[np.argsort(-scan.scores[peaks])][:per_field]
        if best.size:
            parts.append(window_samples(f, f.ra_win[best], f.dec_win[best], label=0, kind="mined"))
    return concat(parts)


def train_with_mining(train_fields: Sequence[Field], val_fields: Sequence[Field], pools: Mapping[str, Pool],
                      config: BlindConfig, *, seed: int, log: Callable[[str], None] = print,
                      generated: GeneratedSet | None = None, mock: Sequence[Field] = ()):
    """Train on the training fields' pools, mine their hard negatives, train again.

    Parameters
    ----------
    train_fields, val_fields : sequence of Field
        Inner-training fields (samples, mining) and inner-validation fields (early stopping).
    pools : mapping of str to Pool
        Base samples by field.
    config : BlindConfig
        Training and mining settings.
    seed : int
        Seeds the training runs.
    log : callable
        Progress messages.
    generated : GeneratedSet, optional
        Generated halos added to the training samples (never to validation), weighed by
        ``config.train.kind_shares``'s ``"1:generated"``.
    mock : sequence of Field
        Mock-sky training fields (``training.mock_fields``): their samples train and they are
        mined like the training fields, but the input scaling is fitted on real fields only.

    Returns
    -------
    model : keras.Model
        The last round's model.
    norm : Normalisation
        Its input scaling, fitted on the training samples.
    record : dict
        Best epochs, sample counts and mined counts per round.
    """
    if generated is not None and "1:generated" not in dict(config.train.kind_shares):
        raise ValueError(f"generated halos from {generated.directory} were given but the training shares "
                         f"{dict(config.train.kind_shares)} have no '1:generated' weight (training.generated.generated_shares)")
    train = concat([pools[f.name] for f in train_fields])
    val = concat([pools[f.name] for f in val_fields])
    # The scaling is fitted on real samples only: the same with and without generated halos or mock fields.
    norm = fit_normalisation(train.sample_set(), kind=config.train.normalisation)
    train_fields = [*train_fields, *mock]
    train = concat([train, *(pools[f.name] for f in mock)])
    if generated is not None:
        train = concat([train, generated_samples(generated, seed=seed)])
    record = {"rounds": []}
    for round_ in range(config.mining_rounds + 1):
        start = time.perf_counter()
        result = train_classifier(train.sample_set(), val.sample_set(), config=replace(config.train, seed=seed + round_),
                                  norm=norm)
        kinds = {k: int(n) for k, n in zip(*np.unique(train.kind, return_counts=True))}
        record["rounds"].append({"best_epoch": result.best_epoch, "samples": kinds,
                                 "seconds": round(time.perf_counter() - start, 1)})
        log(f"  round {round_}: best epoch {result.best_epoch}, {len(train)} samples, "
            f"{time.perf_counter() - start:.0f} s")
        if round_ == config.mining_rounds:
            return result.model, norm, record
        scorer = keras_scorer(result.model)
        train = concat([train, mine(train_fields, scan_fields(train_fields, scorer=scorer, normalisation=norm),
                                    per_field=config.mined_per_field, floor=config.mining_floor)])
        val = concat([val, mine(val_fields, scan_fields(val_fields, scorer=scorer, normalisation=norm),
                                per_field=config.mined_per_field, floor=config.mining_floor)])
    raise AssertionError("unreachable")


def train_ensemble(train_fields: Sequence[Field], val_fields: Sequence[Field], pools: Mapping[str, Pool],
                   config: BlindConfig, *, seed: int, log: Callable[[str], None] = print,
                   generated: GeneratedSet | None = None, mock: Sequence[Field] = ()):
    """``config.ensemble`` runs of ``train_with_mining`` that differ only in their seed, averaged into one model.

    Parameters
    ----------
    train_fields, val_fields : sequence of Field
        As for ``train_with_mining``.
    pools : mapping of str to Pool
        Base samples by field.
    config : BlindConfig
        Training, mining and the ensemble's size.
    seed : int
        The first member's seed (``training.ensemble.member_seed``).
    log : callable
        Progress messages.
    generated : GeneratedSet, optional
        As for ``train_with_mining``.
    mock : sequence of Field
        As for ``train_with_mining``.

    Returns
    -------
    model : keras.Model
        The members' average (``training.ensemble.average_of``); the member itself when there is one.
    norm : Normalisation
        The input scaling, the same for every member (fitted on the same real samples).
    record : dict
        The first member's rounds under ``rounds`` and, for an ensemble, every member's record
        under ``members``.
    """
    from training.ensemble import average_of, member_seed

    models, records = [], []
    norm = None
    for member in range(config.ensemble):
        if config.ensemble > 1:
            log(f"  member {member + 1} of {config.ensemble} (training seed {member_seed(seed, member)})")
        model, norm, record = train_with_mining(train_fields, val_fields, pools, config, seed=member_seed(seed, member),
                                                log=log, generated=generated, mock=mock)
        models.append(model)
        records.append({"seed": member_seed(seed, member), **record})
    combined = {"rounds": records[0]["rounds"]}
    if config.ensemble > 1:
        combined["members"] = records
    return average_of(models), norm, combined


def completeness_grid(fields: Sequence[Field], config: BlindConfig, rng: np.random.Generator) -> list[tuple[Field, Halo]]:
    """The grid's halos, ``per_cell`` per (flux, r_e) cell, spread over ``fields`` at random counted windows.

    Parameters
    ----------
    fields : sequence of Field
        The test fold's fields.
    config : BlindConfig
        The grid and how many halos per cell.
    rng : numpy.random.Generator
        Source of positions and shapes.

    Returns
    -------
    list of (Field, Halo)
        Halos of one field are far enough apart to be injected together.
    """
    cells = [(flux, r_e) for flux in config.grid_flux_150mhz_jy for r_e in config.grid_r_e_arcmin] * config.per_cell
    order = rng.permutation(len(cells))
    placed: list[tuple[Field, Halo]] = []
    slots = [(f, pos) for f in fields for pos in place_halos(f, 6, rng)]
    rng.shuffle(slots)
    for i, cell_index in enumerate(order):
        f, (ra, dec) = slots[i % len(slots)]
        flux, r_e = cells[cell_index]
        halo = Halo(ra, dec, flux, r_e, axis_ratio=float(rng.uniform(0.6, 1.0)), position_angle_deg=float(rng.uniform(0, 180)),
                    spectral_index=float(np.clip(rng.normal(-1.3, 0.2), -2.2, -0.6)), turbulence=float(rng.uniform(0, 0.4)),
                    seed=int(rng.integers(1 << 31)), name=f"grid-{i}")
        placed.append((f, halo))
    return placed


def measure_completeness(placed: Sequence[tuple[Field, Halo]], *, scorer, normalisation, seed: int) -> list[Recovery]:
    """Inject the grid's halos (those of a field and a slot round together) and scan around each.

    Parameters
    ----------
    placed : sequence of (Field, Halo)
        From ``completeness_grid``.
    scorer : Scorer
        The fold's model.
    normalisation : Normalisation
        Its input scaling.
    seed : int
        Seeds the restored noise.

    Returns
    -------
    list of Recovery
    """
    recoveries: list[Recovery] = []
    by_field: dict[str, list[list[Halo]]] = {}
    fields = {f.name: f for f, _ in placed}
    for f, halo in placed:
        batches = by_field.setdefault(f.name, [])
        # Halos share a batch only when far apart (slots of one field are 0.75 deg apart).
        target = next((b for b in batches if all(abs(h.ra_deg - halo.ra_deg) + abs(h.dec_deg - halo.dec_deg) > 1e-9
                                                    for h in b)), None)
        if target is None:
            batches.append([halo])
        else:
            target.append(halo)
    for name, batches in by_field.items():
        for index, batch in enumerate(batches):
            recoveries += recover(fields[name], batch, scorer=scorer, normalisation=normalisation,
                                  seed=seed + 7919 * index + len(name))
    return recoveries


def recovery_rows(recoveries: Sequence[Recovery], threshold: float) -> list[dict]:
    """JSON rows: each injected halo, its targets-mode score and whether the blind scan recovered it at ``threshold``."""
    return [{"field": r.field, "flux_150mhz_jy": r.halo.flux_150mhz_jy, "r_e_arcmin": r.halo.r_e_arcmin,
             "axis_ratio": r.halo.axis_ratio, "spectral_index": r.halo.spectral_index, "turbulence": r.halo.turbulence,
             "target_score": r.target_score, "target_recovered": bool(r.target_score >= threshold),
             "blind_recovered": r.recovered(threshold),
             "blind_recovered_at_rate_thresholds": [r.recovered(float(t)) for t in RATE_THRESHOLDS],
             "blind_best_score_within_5": float(r.scores[r.distance_arcmin <= 5.0].max(initial=0.0)),
             "ring_max_scores": ring_max_scores(r)}
            for r in recoveries]


def ring_max_scores(recovery: Recovery) -> list[float]:
    """The best window score in each ring of ``OFFSET_RINGS_ARCMIN`` around the halo; NaN for a ring with no window."""
    out = []
    for lo, hi in zip(OFFSET_RINGS_ARCMIN[:-1], OFFSET_RINGS_ARCMIN[1:]):
        ring = recovery.scores[(recovery.distance_arcmin >= lo) & (recovery.distance_arcmin < hi)]
        out.append(float(ring.max()) if ring.size else float("nan"))
    return out


def blind_protocol(fields: Sequence[Field], pools: Mapping[str, Pool], config: BlindConfig, *,
                   cutouts: Sequence[SourceCutouts] | None = None, log: Callable[[str], None] = print,
                   generated: Sequence[GeneratedSet] = (), mock: Sequence[Field] = ()) -> dict:
    """Run the protocol (module docstring) over every fold; returns every prediction and measurement.

    Parameters
    ----------
    fields : sequence of Field
        The 46 fields (one per source).
    pools : mapping of str to Pool
        Their base samples (``build_pools``).
    config : BlindConfig
        The protocol's settings.
    cutouts : sequence of SourceCutouts, optional
        The sources as ``training.data.load_training_set`` gives them, in ``fields`` order:
        needed for the baselines (``config.baselines``).
    log : callable
        Progress messages.
    generated : sequence of GeneratedSet
        Generated halos for the classifier's training samples; each fold uses the first set
        whose generator never saw its test sources (``training.generated``). The
        baselines never get them.
    mock : sequence of Field
        Mock-sky fields (``training_mock_fields``) added to every fold's training fields
        only; their pools must be in ``pools``.

    Returns
    -------
    dict
        ``folds``: per fold its fields, threshold, validation and test false candidates,
        rate curve, sources' scores and completeness rows; ``config``.
    """
    groups = np.array([f.group for f in fields])
    labels = np.array([f.label for f in fields])
    per_fold = generated_per_fold(generated, [f.name for f in fields], groups, labels, n_folds=config.n_folds,
                                  repeats=config.repeats, seed=config.seed)
    folds_out = []
    for repeat in range(config.repeats):
        folds = grouped_folds(groups, labels, n_folds=config.n_folds, seed=config.seed + 1000 * repeat)
        for fold in range(config.n_folds):
            start = time.perf_counter()
            test_idx = np.flatnonzero(folds == fold)
            train_idx, val_idx = inner_split(np.flatnonzero(folds != fold), groups, labels,
                                             fraction=config.val_fraction, seed=config.seed + 31 * fold + repeat)
            pick = lambda ids: [fields[i] for i in ids]  # noqa: E731
            log(f"repeat {repeat} fold {fold}: {len(train_idx)} training, {len(val_idx)} validation, "
                f"{len(test_idx)} test fields")
            fold_seed = config.seed + 100 * repeat + fold
            chosen = per_fold[repeat, fold]
            model, norm, record = train_ensemble(pick(train_idx), pick(val_idx), pools, config,
                                                 seed=config.seed_of_training(100 * repeat + fold),
                                                 log=log, generated=chosen, mock=mock)
            scorer = keras_scorer(model)
            phase = time.perf_counter()
            val_scans = scan_fields(pick(val_idx), scorer=scorer, normalisation=norm)
            threshold = threshold_for_rate(val_scans, target_per_deg2=config.target_rate_per_deg2)
            val_count, val_area = false_candidates(val_scans, threshold)
            test_scans = scan_fields(pick(test_idx), scorer=scorer, normalisation=norm)
            test_count, test_area = false_candidates(test_scans, threshold)
            counts, _, _ = rate_curve(test_scans, RATE_THRESHOLDS)
            centre_scores = [float(scorer(_centre_planes(f, norm))[0]) for f in pick(test_idx)]
            log(f"  scans of validation and test fields: {time.perf_counter() - phase:.0f} s")
            phase = time.perf_counter()
            rng = np.random.default_rng([config.seed, repeat, fold, 17])
            recoveries = measure_completeness(completeness_grid(pick(test_idx), config, rng), scorer=scorer,
                                              normalisation=norm, seed=fold_seed)
            log(f"  completeness ({len(recoveries)} injected halos): {time.perf_counter() - phase:.0f} s")
            phase = time.perf_counter()
            sources = [{"name": f.name, "label": f.label, "group": f.group, "score": s}
                       for f, s in zip(pick(test_idx), centre_scores)]
            if config.baselines and cutouts is not None:
                baseline_rows, _, _ = fold_predictions(list(cutouts), test_idx, train_idx, val_idx,
                                                        config=_paper_style(config.train), fold_seed=fold_seed)
                for row, base in zip(sources, baseline_rows):
                    row.update(paper_cnn_score=base["score"], paper_cnn_score_tta=base["score_tta"],
                               rf_score=base["rf_score"])
                log(f"  baselines in the same fold: {time.perf_counter() - phase:.0f} s")
            folds_out.append({
                "repeat": repeat, "fold": fold, "test_fields": [f.name for f in pick(test_idx)],
                "val_fields": [f.name for f in pick(val_idx)], "threshold": threshold,
                "val_false_candidates": val_count, "val_area_deg2": val_area,
                "test_false_candidates": test_count, "test_area_deg2": test_area,
                "rate_thresholds": list(RATE_THRESHOLDS), "test_false_counts": counts.tolist(),
                "sources": sources, "completeness": recovery_rows(recoveries, threshold),
                "training": record, "normalisation": norm.to_dict(),
                "generated": chosen.describe() if chosen else None,
                "seconds": round(time.perf_counter() - start, 1),
            })
            log(f"  threshold {threshold:.4f}: validation {val_count} false in {val_area:.1f} deg2, test "
                f"{test_count} in {test_area:.1f} deg2; {time.perf_counter() - start:.0f} s")
    return {"protocol": "blind", "config": config_dict(config), "folds": folds_out,
            "summary": summarise(folds_out, config)}


def _centre_planes(f: Field, norm) -> np.ndarray:
    from survey.model.preprocess import IMAGE_COLUMN, cut_windows

    return cut_windows(f.clipped, f.ra_deg, f.dec_deg, normalisation=norm)[IMAGE_COLUMN]


def _paper_style(train: TrainConfig) -> TrainConfig:
    """The recipe of the previous shipped model (classic augmentation, centres and side cut-outs, log scaling)."""
    return TrainConfig(arch="cnn", epochs=40, steps_per_epoch=30, patience=8, normalisation="log", seed=train.seed)


def config_dict(config: BlindConfig) -> dict:
    """``config`` as the JSON a results file stores (pairs as lists)."""
    data = asdict(config)
    data["train"]["kind_shares"] = [list(pair) for pair in config.train.kind_shares]
    return data


# --------------------------------------------------------------------------------------
# Summaries (pure: JSON rows in, numbers out)
# --------------------------------------------------------------------------------------


def wilson_interval(k: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n.

    Parameters
    ----------
    k, n : int
        Successes and trials.
    z : float
        Normal quantile (1.96: 95 %).

    Returns
    -------
    tuple of float
        (low, high); NaN for no trials.

    Examples
    --------
    >>> [round(v, 3) for v in wilson_interval(8, 10)]
    [0.49, 0.943]
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # Clipped: at k = 0 or k = n the bounds are 0 and 1 up to rounding.
    return (float(max(centre - half, 0.0)), float(min(centre + half, 1.0)))


def poisson_interval(k: int, *, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson count.

    >>> [round(v, 2) for v in poisson_interval(0)]
    [0.0, 3.69]
    """
    from scipy.stats import chi2

    alpha = 1 - level
    low = 0.0 if k == 0 else chi2.ppf(alpha / 2, 2 * k) / 2
    high = chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return (float(low), float(high))


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, *, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of the ROC-AUC, resampling sources.

    Parameters
    ----------
    labels, scores : numpy.ndarray
        One per source.
    seed : int
        Seeds the resampling.
    n : int
        Resamples.

    Returns
    -------
    tuple of float
        (2.5 %, 97.5 %) percentiles.
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        if len(set(labels[idx])) == 2:
            values.append(roc_auc_score(labels[idx], scores[idx]))
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


def summarise(folds: Sequence[Mapping], config: BlindConfig) -> dict:
    """The headline numbers of a run: (a) per model, (b) per grid cell and the goal's pooled cells, (c) the rate.

    Parameters
    ----------
    folds : sequence of dict
        ``blind_protocol``'s fold records.
    config : BlindConfig
        Its settings (the grid, the target rate).

    Returns
    -------
    dict
    """
    rows = [s for f in folds for s in f["sources"]]
    labels = np.array([r["label"] for r in rows])
    models = {"blind_cnn": "score", "paper_cnn": "paper_cnn_score", "random_forest": "rf_score"}
    thresholds = {r["name"]: f["threshold"] for f in folds for r in f["sources"]}
    sources = {}
    for model, key in models.items():
        if not all(key in r for r in rows):
            continue
        scores = np.array([r[key] for r in rows])
        at_op = np.array([r[key] >= thresholds[r["name"]] for r in rows]) if model == "blind_cnn" else None
        metrics = binary_metrics(labels, scores)
        entry = {"roc_auc": metrics["roc_auc"], "roc_auc_95": bootstrap_auc(labels, scores),
                 "accuracy_at_0.5": metrics["accuracy"], "recall_at_0.5": metrics["recall"], "n": int(len(rows))}
        if at_op is not None:
            entry["recall_at_operating_point"] = float(at_op[labels == 1].mean())
            entry["false_positive_rate_at_operating_point"] = float(at_op[labels == 0].mean())
            entry["accuracy_at_operating_point"] = float((at_op == (labels == 1)).mean())
        sources[model] = entry
    count = sum(f["test_false_candidates"] for f in folds)
    area = sum(f["test_area_deg2"] for f in folds)
    low, high = poisson_interval(count)
    comp = [c for f in folds for c in f["completeness"]]
    cells = {}
    for flux in config.grid_flux_150mhz_jy:
        for r_e in config.grid_r_e_arcmin:
            chosen = [c for c in comp if np.isclose(c["flux_150mhz_jy"], flux) and np.isclose(c["r_e_arcmin"], r_e)]
            blind = sum(c["blind_recovered"] for c in chosen)
            targets = sum(c["target_recovered"] for c in chosen)
            cells[f"{flux:g}Jy_{r_e:g}arcmin"] = {
                "flux_150mhz_jy": flux, "r_e_arcmin": r_e, "n": len(chosen), "blind_recovered": int(blind),
                "blind_95": wilson_interval(int(blind), len(chosen)), "targets_recovered": int(targets),
                "targets_95": wilson_interval(int(targets), len(chosen)),
            }
    goal = [c for c in comp if in_goal_cells(c)]
    goal_blind = sum(c["blind_recovered"] for c in goal)
    return {"sources": sources,
            "false_candidates": {"count": count, "area_deg2": area, "per_deg2": count / area if area else float("nan"),
                                 "per_deg2_95": (low / area, high / area) if area else None},
            "completeness_cells": cells,
            "goal_cells": {"n": len(goal), "blind_recovered": int(goal_blind),
                           "fraction": goal_blind / len(goal) if goal else float("nan"),
                           "fraction_95": wilson_interval(int(goal_blind), len(goal))},
            "thresholds": [f["threshold"] for f in folds]}
