"""False candidates of the shipped model by field role and threshold: why ship calibrates on ~50 deg2, not 25.

    HALO_DATA_DIR=../shared/data .venv/bin/python results/threshold_by_role.py > results/threshold-by-role.md

Scans every field of the 46 in memory, as ``halo-train blind`` does (``training.scan``:
usable windows, the survey's merging, 15' around sources and catalogued clusters
excluded), with the shipped ONNX model, and counts false candidates per role of the card
(fields it trained on, early-stopping fields, calibration fields) at a few thresholds,
with the threshold each held-out role would choose alone and together.
"""

from __future__ import annotations

import numpy as np

from survey.config import data_dir
from survey.defaults import DEFAULT_MODEL
from survey.model.infer import OnnxClassifier
from survey.sky.groups import overlap_groups
from training.fields import data_sources, load_fields
from training.scan import onnx_scorer, rate_curve, scan_fields, threshold_for_rate

THRESHOLDS = (0.5, 0.6, 0.675, 0.7, 0.75, 0.8, 0.85, 0.883, 0.9, 0.95, 0.98)
TARGET = 0.1


def main() -> None:
    classifier = OnnxClassifier(DEFAULT_MODEL, providers="cpu")
    roles = {s.name: s.split_or_group.split(",")[0] for s in classifier.card.training.sources}
    sources = data_sources(data_dir() / "gleam")
    positions = np.array([s.centre_radec for s in sources])
    fields = load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))
    scorer = onnx_scorer(classifier)
    print(f"Model {DEFAULT_MODEL.name} (sha256 {classifier.card.onnx_sha256[:12]}), card threshold "
          f"{classifier.card.threshold:.4f}. False candidates by field role and threshold:\n")
    print("| fields | n | area | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + f" | threshold for {TARGET:g} per deg2 |")
    print("|---|---|---|" + "---|" * (len(THRESHOLDS) + 1))
    for name, chosen in (("trained on", {"train"}), ("early-stopping", {"validation"}), ("calibration", {"calibration"}),
                         ("early-stopping + calibration", {"validation", "calibration"})):
        members = [f for f in fields if roles[f.name] in chosen]
        scans = scan_fields(members, scorer=scorer, normalisation=classifier.normalisation)
        counts, _, area = rate_curve(scans, THRESHOLDS)
        threshold = "-" if chosen == {"train"} else f"{threshold_for_rate(scans, target_per_deg2=TARGET):.4f}"
        print(f"| {name} | {len(members)} | {area:.1f} deg2 | " + " | ".join(map(str, counts)) + f" | {threshold} |")


if __name__ == "__main__":
    main()
