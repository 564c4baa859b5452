"""halo-train: halo classifiers trained on real GLEAM images, evaluated honestly, exported to ONNX with a card.

The public API; names load on first use (PEP 562), because most of this package imports
TensorFlow and ``halo-train --help`` should not wait for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "load_training_set": "training.data",
    "samples_of": "training.data",
    "TrainConfig": "training.train",
    "train_classifier": "training.train",
    "build_classifier": "training.models",
    "paper_protocol": "training.evaluate",
    "grouped_protocol": "training.evaluate",
    "export_with_card": "training.export",
    "upgrade_model": "training.onnx_layout",
    "halo_set": "training.halos",
    "train_ddpm": "training.diffusion",
    "train_wgan": "training.wgan",
    "generate_halos": "training.generate",
    "HaloGenerator": "training.generate",
    "quality_report": "training.metrics",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
