"""Where the real training pixels land under each input scaling (docs/classifiers.md quotes this).

    .venv/bin/python results/input_scaling.py [DATA_DIR]

Prints, for the paper's global min-max and for the signed-log scaling, the range of the
scaled inputs and the interval holding the central 98 % of the non-zero (unclipped) pixels
of all 46 sources' base cut-outs (centres and side cut-outs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from survey.config import data_dir
from training.data import fit_normalisation, load_training_set, median_clip_threshold, samples_of


def main(directory: Path) -> None:
    samples = samples_of(load_training_set(directory))
    unclipped = samples.x != 0
    print(f"{len(samples)} base cut-outs; median clip threshold {median_clip_threshold(samples.x):.4f} Jy/beam; "
          f"brightest pixel {samples.x.max():.1f} Jy/beam")
    print("| scaling | scaled range | central 98 % of non-zero pixels | share of the range |")
    print("|---|---|---|---|")
    for kind in ("minmax", "log"):
        scaled = fit_normalisation(samples, kind=kind).apply(samples.x)
        low, high = np.quantile(scaled[unclipped], [0.01, 0.99])
        width = scaled.max() - scaled.min()
        print(f"| {kind} | [{scaled.min():.3f}, {scaled.max():.3f}] | [{low:.3f}, {high:.3f}] | {(high - low) / width:.1%} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else data_dir() / "gleam")
