"""Resumable checkpoints of the generative models: weights, optimiser state and a JSON state, swapped in atomically.

A model directory holds ``model.json`` (what the model is: kind, configs, data record,
provenance; written once at the start), ``history.jsonl`` (a line per logged step) and
``checkpoint/``:

====================  =====================================================
``NAME.weights.h5``   the weights of each named network (``network``, ``ema``, ...)
``optimizers.npz``    every optimiser variable, iteration counters included
``state.json``        step, seconds trained, last losses; written last
====================  =====================================================

A save writes ``checkpoint.tmp/`` completely, then swaps it in with two renames, so an
interrupted save leaves the previous checkpoint whole (``checkpoint.old/`` is its name for
the instant between the renames, and ``restore_checkpoint`` falls back to it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

CHECKPOINT_DIR = "checkpoint"
MODEL_JSON = "model.json"
STATE_JSON = "state.json"
OPTIMIZERS_NPZ = "optimizers.npz"


def checkpoint_dir(model_dir: str | Path) -> Path:
    """The checkpoint folder of a model directory (the last complete one, if a swap was interrupted)."""
    model_dir = Path(model_dir)
    current, old = model_dir / CHECKPOINT_DIR, model_dir / f"{CHECKPOINT_DIR}.old"
    if not (current / STATE_JSON).exists() and (old / STATE_JSON).exists():
        return old
    return current


def has_checkpoint(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a complete checkpoint."""
    return (checkpoint_dir(model_dir) / STATE_JSON).exists()


def write_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON through a temporary file and a rename."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_json_default))
    tmp.replace(path)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def append_history(model_dir: str | Path, row: dict) -> None:
    """Append one JSON line to ``model_dir/history.jsonl`` (the loss curve; survives interruptions and resumes)."""
    with open(Path(model_dir) / "history.jsonl", "a") as handle:
        handle.write(json.dumps(row, default=_json_default) + "\n")


def read_model_json(model_dir: str | Path) -> dict:
    """``model.json`` of a model directory, with a message naming the directory when it is missing."""
    path = Path(model_dir) / MODEL_JSON
    if not path.exists():
        raise FileNotFoundError(f"{model_dir} is not a generative model directory (no {MODEL_JSON}); "
                                f"train one with `halo-train ddpm` or `halo-train wgan`")
    return json.loads(path.read_text())


def save_checkpoint(model_dir: str | Path, *, models: Mapping[str, keras.Model],
                    optimizers: Mapping[str, keras.optimizers.Optimizer], state: dict) -> Path:
    """Save weights, optimiser variables and ``state`` under ``model_dir/checkpoint``.

    Parameters
    ----------
    model_dir : path-like
        The model directory (created if needed).
    models : mapping of str to keras.Model
        Networks to save, by name.
    optimizers : mapping of str to keras.optimizers.Optimizer
        Optimisers to save, by name (built ones: their variables exist).
    state : dict
        JSON-ready training state (``step`` at least).

    Returns
    -------
    Path
        The checkpoint folder.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp, final, old = (model_dir / f"{CHECKPOINT_DIR}{s}" for s in (".tmp", "", ".old"))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, model in models.items():
        model.save_weights(tmp / f"{name}.weights.h5")
    arrays = {f"{name}/{i:04d}": np.asarray(v.numpy()) for name, opt in optimizers.items()
              for i, v in enumerate(opt.variables)}
    np.savez(tmp / OPTIMIZERS_NPZ, **arrays)
    write_json(tmp / STATE_JSON, state)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def training_end(total_steps: int, *, stop_after: int | None = None, extend_to: int | None = None) -> int:
    """The step a training call stops at: the configured total, or ``extend_to`` past it, or ``stop_after`` before.

    Parameters
    ----------
    total_steps : int
        The configuration's total (what its learning-rate schedule spans).
    stop_after : int, optional
        Stop early, with a checkpoint, at this step.
    extend_to : int, optional
        Train past ``total_steps`` to this step; at least ``total_steps``.

    Returns
    -------
    int

    >>> training_end(3000), training_end(3000, extend_to=6000), training_end(3000, extend_to=6000, stop_after=4000)
    (3000, 6000, 4000)
    """
    if extend_to is not None and extend_to < total_steps:
        raise ValueError(f"--extend-to {extend_to} is below the configuration's {total_steps} steps; use --stop-after "
                         "to stop early")
    end = total_steps if extend_to is None else extend_to
    return end if stop_after is None else min(end, stop_after)


def restore_checkpoint(model_dir: str | Path, *, models: Mapping[str, keras.Model],
                       optimizers: Mapping[str, tuple[keras.optimizers.Optimizer, list]]) -> dict:
    """Restore what ``save_checkpoint`` saved; returns the saved ``state``.

    Parameters
    ----------
    model_dir : path-like
        The model directory.
    models : mapping of str to keras.Model
        Built networks of the same shapes, by the names they were saved under.
    optimizers : mapping of str to (keras.optimizers.Optimizer, list of variables)
        Each optimiser with the trainable variables it updates; an unbuilt optimiser is
        built on them first, so its slots exist to be assigned.

    Returns
    -------
    dict
        The ``state.json`` of the checkpoint.

    Raises
    ------
    FileNotFoundError
        No complete checkpoint.
    ValueError
        The optimiser state does not fit (a different model or optimiser).
    """
    folder = checkpoint_dir(model_dir)
    if not (folder / STATE_JSON).exists():
        raise FileNotFoundError(f"no checkpoint to resume in {model_dir} (expected {folder / STATE_JSON})")
    for name, model in models.items():
        model.load_weights(folder / f"{name}.weights.h5")
    with np.load(folder / OPTIMIZERS_NPZ) as saved:
        for name, (optimizer, variables) in optimizers.items():
            if not optimizer.built:
                optimizer.build(variables)
            keys = sorted(k for k in saved.files if k.split("/")[0] == name)
            if len(keys) != len(optimizer.variables):
                raise ValueError(f"{folder / OPTIMIZERS_NPZ}: optimiser {name!r} has {len(keys)} saved variables, "
                                 f"the model needs {len(optimizer.variables)}; the checkpoint is of another model")
            for key, variable in zip(keys, optimizer.variables):
                if tuple(saved[key].shape) != tuple(variable.shape):
                    raise ValueError(f"{folder / OPTIMIZERS_NPZ}: {key} has shape {saved[key].shape}, "
                                     f"expected {tuple(variable.shape)}")
                variable.assign(saved[key])
    return json.loads((folder / STATE_JSON).read_text())


__all__ = ["training_end", "append_history", "checkpoint_dir", "has_checkpoint", "save_checkpoint", "restore_checkpoint", "read_model_json", "write_json",
           "MODEL_JSON"]
