"""`halo-train export RUN_DIR`: turn a trained run into a shipped ONNX model with its card.

The card records the training sources with their file hashes, the normalisation fitted
at training time, and both protocols' metrics read from the protocol runs' results.json,
so no number in a card is typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from survey.model.modelcard import ModelCard, TrainingFile, TrainingRecord, TrainingSource
from survey.model.normalisation import Normalisation


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing {what}; is this a run directory written by `halo-train classifier` (without --protocol)?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt {what} ({exc})") from exc


def load_trained_model(run_dir: Path):
    """The Keras model of a run; a missing or corrupt checkpoint gets a clear message."""
    import keras

    path = run_dir / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; train with `halo-train classifier --arch ... --out {run_dir}` first")
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # keras raises many types for a damaged zip/h5
        raise ValueError(f"{path}: corrupt checkpoint, cannot be loaded ({type(exc).__name__}: {exc}); retrain the run") from exc


def training_record(run_dir: Path, results: dict) -> TrainingRecord:
    """Sources, file hashes, seed and epochs of a final run, from its manifest and results."""
    manifest = _read_json(run_dir / "manifest.json", "dataset manifest")
    val = set(results.get("val_sources", []))
    sources = tuple(
        TrainingSource(s["name"], int(s["label"]), "validation" if s["name"] in val else f"group {s['group']}",
                       tuple(TrainingFile(f["path"], f["sha256"]) for f in s["files"].values()))
        for s in manifest["sources"]
    )
    config = results["config"]
    augment = {"classic": {"rotations_deg": list(range(0, 360, 45)), "flips": ["up-down", "left-right"], "brightness": [0.9, 1.4]},
               "side_cutouts_per_halo": int(max(s["n_side_cutouts"] for s in manifest["sources"]))}
    return TrainingRecord(sources, "all-sources", int(config["seed"]), int(results["best_epoch"]), augment)


def protocol_metrics(dirs: list[Path]) -> dict:
    """Metrics of protocol runs keyed by protocol, with the command that produced each."""
    metrics = {}
    for directory in dirs:
        results = _read_json(directory / "results.json", "protocol results")
        key = f"{results['protocol']}_protocol" if results["protocol"] in ("paper", "grouped") else results["protocol"]
        metrics[key] = {"arch": results.get("arch"), "command": results.get("command"), "metrics": results["metrics"]}
    return metrics


def training_noise_range(data_dir: str | Path) -> dict[str, list[float]]:
    """Per-band [min, max] noise sigma (Jy/beam) over the training files.

    The survey flags candidates whose noise lies above this range (`noise_high`): the
    classifier has never seen such images.
    """
    from survey.images.discovery import scan_directory
    from survey.model.noise import estimate_noise

    sigmas: dict[str, list[float]] = {}
    for source in scan_directory(data_dir).sources:
        for band, image in source.images.items():
            sigmas.setdefault(band, []).append(estimate_noise(image.data).sigma)
    return {band: [float(min(v)), float(max(v))] for band, v in sigmas.items()}


def export_run(run_dir: Path, out: Path, *, metrics_dirs: list[Path], threshold: float = 0.95) -> ModelCard:
    """Export a final run to ``out`` (.onnx) with a parity check on real cut-outs and a card.

    Parameters
    ----------
    run_dir : Path
        A run written by ``halo-train classifier`` without ``--protocol``: its
        ``results.json``, ``normalisation.json``, ``manifest.json`` and ``model.keras``
        are read, and its training data (``results["data"]``) gives the parity inputs.
    out : Path
        Destination ``.onnx`` file; its folder is created and the card goes beside it.
    metrics_dirs : list of Path
        Protocol runs whose ``results.json`` metrics go into the card.
    threshold : float
        Candidate threshold recorded in the card.

    Returns
    -------
    ModelCard
        The card, as written.

    Raises
    ------
    FileNotFoundError
        A file of the run (or of a protocol run) is missing.
    ValueError
        The run is a protocol run, or a file is corrupt.
    OnnxParityError
        The exported file disagrees with the Keras model.
    """
    from training.data import load_training_set
    from training.export import export_with_card

    results = _read_json(run_dir / "results.json", "run results")
    if results.get("protocol") != "final":
        raise ValueError(f"{run_dir}: a {results.get('protocol')} protocol run has no single model to export; train one without --protocol")
    norm = Normalisation.from_dict(_read_json(run_dir / "normalisation.json", "normalisation"))
    model = load_trained_model(run_dir)
    sources = load_training_set(results["data"])
    check = norm.apply(np.stack([s.centre for s in sources]))
    metrics = {**protocol_metrics(metrics_dirs), "training_noise_jy_per_beam": training_noise_range(results["data"])}
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_with_card(model, out, normalisation=norm, training=training_record(run_dir, results),
                            check_inputs=check, metrics=metrics, threshold=threshold, architecture=results["arch"])
