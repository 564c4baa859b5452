"""``halo-train ship``: the model the survey runs, trained, calibrated and exported by one command from a data directory.

The recipe is the blind-scan protocol's (``training.blind``), on all fields at once:

1. the fields are split, overlap groups kept whole, into training fields, early-stopping
   fields and calibration fields (``CALIBRATION_FRACTION`` of them);
2. the classifier trains on the training fields' samples (real centres, injected halos,
   empty windows, compact sources) and on any mock-sky training fields (``--mock-fields``),
   mines their hard negatives and trains again;
3. its threshold is the lowest at which a blind scan of every field its weights never
   fitted (the early-stopping and the calibration fields together) gives at most the target
   rate of false candidates. The protocol calibrates on its early-stopping fields too; here
   the calibration fields add area, because the rate is a count of a few candidates: on
   the ~25 deg2 of the calibration fields alone, the first shipped threshold (0.675) let
   through 2 false candidates there but 21 on the early-stopping fields;
4. it is exported to ONNX with its card: the threshold, the rate measured where it was
   chosen, every field with its role, the injection and mining settings, the honest
   protocol's cross-validated results when given (``--metrics``), and this command.

Fields can be left out (``--exclude``) to retrain the model without them and measure it there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from survey.model.modelcard import ModelCard, TrainingFile, TrainingRecord, TrainingSource, sha256_file
from survey.model.preprocess import IMAGE_COLUMN, channels_last, cut_windows
from training.blind import BlindConfig, build_pools, poisson_interval, train_ensemble, training_mock_fields
from training.evaluate import inner_split
from training.fields import Field
from training.generate import read_samples
from training.generated import GeneratedSet, choose_for_fold
from training.scan import false_candidates, keras_scorer, scan_fields, threshold_for_rate

CALIBRATION_FRACTION = 0.2
"""Share of the fields (whole overlap groups) kept back to calibrate the threshold."""

VALIDATION_FRACTION = 0.2
"""Share of the remaining fields that early-stop the training."""


def split_roles(fields: Sequence[Field], *, seed: int) -> dict[str, list[Field]]:
    """Training, early-stopping and calibration fields: group-disjoint, both classes in each.

    Parameters
    ----------
    fields : sequence of Field
        All fields.
    seed : int
        Seeds the splits.

    Returns
    -------
    dict
        ``{"train": [...], "validation": [...], "calibration": [...]}``.
    """
    groups = np.array([f.group for f in fields])
    labels = np.array([f.label for f in fields])
    rest, calibration = inner_split(np.arange(len(fields)), groups, labels, fraction=CALIBRATION_FRACTION, seed=seed)
    train, validation = inner_split(rest, groups, labels, fraction=VALIDATION_FRACTION, seed=seed + 1)
    return {role: [fields[i] for i in sorted(idx)] for role, idx in
            (("train", train), ("validation", validation), ("calibration", calibration))}


def training_sources(roles: dict[str, list[Field]], files: dict[str, dict[str, Path]], *, root: Path
                     ) -> tuple[TrainingSource, ...]:
    """The card's record of every field: label, role and group, and its files with their sha256.

    Parameters
    ----------
    roles : dict
        Fields by role (``split_roles``).
    files : dict
        Band files of each field, by field name then band.
    root : Path
        Data directory the file paths are written relative to.

    Returns
    -------
    tuple of TrainingSource
    """
    out = []
    for role, fields in roles.items():
        for f in fields:
            record = tuple(TrainingFile(str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else str(p),
                                        sha256_file(p)) for p in files[f.name].values())
            out.append(TrainingSource(f.name, f.label, f"{role}, group {f.group}", record))
    return tuple(out)


RECIPE_KEYS = ("train", "sizes", "prior", "mining_rounds", "mined_per_field", "mining_floor", "mock_fields",
               "mock_seed", "ensemble", "target_rate_per_deg2")
"""The ``BlindConfig`` settings that make a model what it is: a protocol run speaks for a model only if they agree."""


def recipe_of(config: BlindConfig) -> dict:
    """``config``'s recipe (``RECIPE_KEYS``) as JSON values, the form results files and cards store."""
    from training.blind import config_dict

    data = config_dict(config)
    return json.loads(json.dumps({key: data[key] for key in RECIPE_KEYS}))


def recipe_differences(model: dict, run: dict) -> list[str]:
    """Settings of a ``halo-train blind`` run's config that differ from a model's recipe (seeds aside).

    A setting a run's results predate (e.g. ``ensemble`` before seed ensembles) reads as its
    default. The seeds are left out: the protocol trains one model per fold with seeds of its
    own, so no seed of the shipped model is the protocol's.

    Parameters
    ----------
    model : dict
        The model's recipe (``recipe_of``).
    run : dict
        The ``config`` of the run's ``results.json``.

    Returns
    -------
    list of str
        One line per differing setting; empty when the run measured this recipe.
    """
    defaults = recipe_of(BlindConfig())
    model, run = json.loads(json.dumps(model)), json.loads(json.dumps(run))  # tuples and lists compare as JSON does
    out = []
    for key in RECIPE_KEYS:
        mine, theirs = model.get(key, defaults[key]), run.get(key, defaults[key])
        if isinstance(mine, dict) and isinstance(theirs, dict):
            # Nested settings (train, sizes, prior) are named one by one: "train.epochs", not the whole dict.
            pairs = [(f"{key}.{k}", mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs)) if k != "seed"]
        else:
            pairs = [(key, mine, theirs)]
        out += [f"{name}: {b!r} in the run, {a!r} in the model" for name, a, b in pairs if a != b]
    return out


def protocol_metrics(results_dir: Path | None, recipe: dict | None = None) -> dict:
    """The honest protocol's summary from a ``halo-train blind`` results directory (empty without one).

    Parameters
    ----------
    results_dir : Path, optional
        The run's directory (its ``results.json``).
    recipe : dict, optional
        The model's recipe (``recipe_of``): when given, a run of another recipe is refused,
        so a card never carries numbers measured on a different classifier.

    Returns
    -------
    dict
        ``{"blind_protocol": {...}}``, or empty.

    Raises
    ------
    ValueError
        The run's recipe differs from ``recipe``; the message lists each setting.
    """
    if results_dir is None:
        return {}
    path = Path(results_dir) / "results.json"
    results = json.loads(path.read_text())
    differences = recipe_differences(recipe, results["config"]) if recipe is not None else []
    if differences:
        raise ValueError(f"{path} measured another recipe than the model's: " + "; ".join(differences))
    return {"blind_protocol": {"results": str(results_dir), "command": results.get("command"),
                               "summary": results["summary"], "label": "cross-validated on held-out fields"}}


def attach_protocol_metrics(onnx_path: Path, results_dir: Path) -> ModelCard:
    """Put a ``halo-train blind`` run's cross-validated results into an exported model's card.

    For a model shipped before its protocol run finished (the two train independently):
    the run must have measured the card's recipe (``recipe_differences``). The ONNX file is
    not touched, so its sha256 stays.

    Parameters
    ----------
    onnx_path : Path
        ``NAME.onnx`` with its card beside it, written by ``halo-train ship``.
    results_dir : Path
        The run's directory.

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    ValueError
        The card records no recipe (it predates them), or the run measured another one.
    """
    from dataclasses import replace

    from survey.model.modelcard import card_path_for, load_model_card, read_card, write_card

    card = load_model_card(onnx_path)
    recipe = card.training.augment.get("recipe")
    if recipe is None:
        raise ValueError(f"the card of {onnx_path} records no recipe to check {results_dir} against; "
                         "ship the model again")
    card = replace(card, metrics={**card.metrics, **protocol_metrics(results_dir, recipe)})
    write_card(card, card_path_for(onnx_path))
    return read_card(card_path_for(onnx_path))


def _generator_record(generated: GeneratedSet | None) -> dict | None:
    """The card's account of the generated halos: the samples, and the generator checkpoint that drew them."""
    if generated is None:
        return None
    meta = read_samples(generated.directory)[1]
    model = meta.get("model", {})
    return {**generated.describe(), "settings": meta.get("settings", {}), "generator_dir": model.get("model_dir"),
            "generator_step": model.get("state", {}).get("step"), "generator_command": model.get("command"),
            "generator_config": model.get("config")}


def ship(fields: Sequence[Field], files: dict[str, dict[str, Path]], out: Path, *, config: BlindConfig, data: Path,
         command: str, metrics_dir: Path | None = None, cache: Path | None = None,
         log: Callable[[str], None] = print, generated: Sequence[GeneratedSet] = ()) -> ModelCard:
    """Train, mine, calibrate and export the survey's model (module docstring).

    Parameters
    ----------
    fields : sequence of Field
        The fields to use (already without any excluded ones).
    files : dict
        Band files of each field, for the card.
    out : Path
        The ``.onnx`` to write; the card goes beside it.
    config : BlindConfig
        Training, pools, mining and the target false-candidate rate.
    data : Path
        The data directory (file paths in the card are relative to it).
    command : str
        The command line, stored in the card.
    metrics_dir : Path, optional
        A ``halo-train blind`` run whose cross-validated results go into the card.
    cache : Path, optional
        Pool cache directory.
    log : callable
        Progress messages.
    generated : sequence of GeneratedSet
        Generated halos for the training samples: the first set whose generator never saw
        the calibration fields' sources is used, and named in the card.

    Returns
    -------
    ModelCard
        The card written beside ``out``.
    """
    from training.export import export_with_card

    start = time.perf_counter()
    protocol = protocol_metrics(metrics_dir, recipe_of(config))  # before training: a wrong run fails at once
    roles = split_roles(fields, seed=config.seed)
    log("roles: " + ", ".join(f"{role} {len(fs)}" for role, fs in roles.items()))
    held_out = roles["validation"] + roles["calibration"]
    chosen = (choose_for_fold(generated, [f.name for f in held_out], fold="the early-stopping and calibration fields")
              if generated else None)
    mock = training_mock_fields(config)
    pools = build_pools([*fields, *mock], config, cache=cache, log=log)
    model, norm, record = train_ensemble(roles["train"], roles["validation"], pools, config,
                                         seed=config.seed_of_training(), log=log, generated=chosen, mock=mock)
    scans = scan_fields(held_out, scorer=keras_scorer(model), normalisation=norm)
    threshold = threshold_for_rate(scans, target_per_deg2=config.target_rate_per_deg2)
    count, area = false_candidates(scans, threshold)
    low, high = poisson_interval(count)
    log(f"threshold {threshold:.4f}: {count} false candidates in {area:.1f} deg2 of early-stopping and calibration fields")
    operating_point = {
        "threshold": threshold, "target_false_per_deg2": config.target_rate_per_deg2,
        "calibration_false_candidates": count, "calibration_area_deg2": area,
        "calibration_false_per_deg2": count / area, "calibration_false_per_deg2_95": [low / area, high / area],
        "calibration_fields": [f.name for f in held_out],
        "label": "measured on the early-stopping and calibration fields, which the weights never fitted; they chose "
                 "the threshold, so the rate there is the target by construction: the cross-validated rate is under "
                 "blind_protocol",
    }
    check = np.concatenate([channels_last(cut_windows(f.clipped, f.ra_deg, f.dec_deg, normalisation=norm)[IMAGE_COLUMN])
                            for f in fields])
    training = TrainingRecord(
        sources=training_sources(roles, files, root=data), protocol="blind", seed=config.seed,
        epochs=max(r["best_epoch"] for r in record["rounds"]),
        augment={"classic": {"rotations_deg": list(range(0, 360, 45)), "flips": ["up-down", "left-right"],
                             "brightness": [0.9, 1.4]},
                 "injection": {"prior": config.prior.__dict__, "per_field": config.sizes.__dict__},
                 "recipe": recipe_of(config),
                 "mining_rounds": config.mining_rounds, "ensemble_members": record.get("members"),
                 "kind_shares": [list(p) for p in config.train.kind_shares],
                 "rounds": record["rounds"], "generated": _generator_record(chosen),
                 "mock_fields": {"fields": [f.name for f in mock], "seed": config.mock_seed,
                                 "role": "training only (training.mock_fields)"} if mock else None},
        command=command,
    )
    metrics = {"operating_point": operating_point, **protocol,
               "seconds": round(time.perf_counter() - start, 1)}
    return export_with_card(model, out, normalisation=norm, training=training, check_inputs=check, metrics=metrics,
                            threshold=threshold, architecture=config.train.arch)
