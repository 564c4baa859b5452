"""How the shipped classifier sees the real halos when windows are not centred on them (docs/survey.md quotes this).

    RAY_AUTH_MODE=disabled .venv/bin/python results/survey_real_check.py [DATA_DIR] [--orders 9,10] [--model M.onnx]

Two measurements on the paper's 46 real GLEAM fields, with the shipped model and the
survey's own preprocessing:

1. **Score against window offset**: each source's field is clipped and normalised as in a
   survey, and windows are cut at 0-7' from the catalogued centre in 8 directions.
   Training cut-outs were always centred, and a blind scan's nearest window lies up to
   about 0.7 window spacings (4.9' at window order 9) from a halo.
2. **Blind scans** through the real pipeline (``run``, local Ray) of every
   tile holding a source, at each window order: which sources have a candidate within
   one and within two window spacings, and how many candidates there are per deg2.

The shipped model (``halo-train ship``) trained on some of the 46 fields, early-stopped on
others and chose its threshold on the rest; its card names each field's role. Tables split
the fields into those it trained on (an optimistic view) and those it never trained on.
Candidates farther than ``AWAY_ARCMIN`` from every labelled source and every catalogued
cluster (PSZ2, MCXC, MGCLS) count as false, as in ``halo-train blind``. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from survey.config import data_dir
from survey.defaults import DEFAULT_MODEL, DEFAULT_TILE_ORDER
from survey.exceptions import NoDetectionsWarning
from survey.images.discovery import GleamSource, scan_directory
from survey.model.infer import OnnxClassifier
from survey.model.preprocess import IMAGE_COLUMN, clip_field, cut_windows
from survey.run.arguments import SurveyArguments
from survey.run.candidates import TRUNCATED_MAX_FRACTION
from survey.sky import healpix
from survey.sky.geometry import angular_distance_deg
from training.data import side_positions
from training.fields import catalogued_clusters, near_any

OFFSETS_ARCMIN = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0)
DIRECTIONS = 8
CLASSES = {1: "halo", 0: "non-halo"}
AWAY_ARCMIN = 15.0


def trained_on(classifier: OnnxClassifier) -> set[str]:
    """Names of the fields the model's weights were fitted on (role ``train`` in its card)."""
    return {s.name for s in classifier.card.training.sources if s.split_or_group.split(",")[0] == "train"}


def offset_positions(ra: float, dec: float, radius_arcmin: float) -> tuple[np.ndarray, np.ndarray]:
    """``DIRECTIONS`` positions ``radius_arcmin`` from (ra, dec), the training side cut-outs' ring; one for radius 0."""
    ring = [(ra, dec)] if radius_arcmin == 0 else side_positions(ra, dec, offset_deg=radius_arcmin / 60.0, n=DIRECTIONS)
    ras, decs = np.array(ring).T
    return ras, decs


def offset_scores(source: GleamSource, classifier: OnnxClassifier) -> dict[float, np.ndarray]:
    """Scores of the windows at each offset from the source's centre."""
    field = clip_field(source.images, key=source.name)
    ra, dec = source.centre_radec
    scores = {}
    for radius in OFFSETS_ARCMIN:
        ras, decs = offset_positions(ra, dec, radius)
        cut = cut_windows(field, ras, decs, normalisation=classifier.normalisation)
        scores[radius] = classifier.predict(cut[IMAGE_COLUMN])
    return scores


def offset_table(sources: list[GleamSource], classifier: OnnxClassifier) -> list[str]:
    seen = trained_on(classifier)
    roles = {True: "trained on", False: "never trained on"}
    by_class = {(label, role): {r: [] for r in OFFSETS_ARCMIN} for label in CLASSES for role in roles}
    for source in sources:
        for radius, scores in offset_scores(source, classifier).items():
            by_class[source.label, source.name in seen][radius].extend(scores.tolist())
    threshold = classifier.card.threshold
    lines = [f"| class | fields | offset | windows | median score | score >= 0.5 | score >= {threshold:.3g} |",
             "|---|---|---|---|---|---|---|"]
    for (label, role), rows in by_class.items():
        for radius in OFFSETS_ARCMIN:
            s = np.array(rows[radius])
            if s.size:
                lines.append(f"| {CLASSES[label]} | {roles[role]} | {radius:g}' | {s.size} | {np.median(s):.3f} | "
                             f"{np.mean(s >= 0.5):.0%} | {np.mean(s >= threshold):.0%} |")
    return lines


def blind_scan(sources: list[GleamSource], directory: Path, *, window_order: int, out: Path, model: Path) -> dict:
    """Scan every tile holding a source; per source, the distance to the nearest candidate."""
    from survey.output.query import read_candidates
    from survey.run.pipeline import run

    centres = np.array([s.centre_radec for s in sources])
    tiles = sorted({int(t) for t in healpix.ang2pix(DEFAULT_TILE_ORDER, centres[:, 0], centres[:, 1])})
    args = SurveyArguments(model=model, region=f"tiles:{DEFAULT_TILE_ORDER}:{','.join(map(str, tiles))}",
                           source=f"fits:{directory}", window_order=window_order, output=out, progress=False,
                           match_catalogs=(), all_scores=True)
    summary = run(args)
    frame = read_candidates(out / "candidates")
    # arcmin from each source (rows) to each candidate (columns)
    to_sources = np.array([angular_distance_deg(frame["ra"], frame["dec"], ra, dec) * 60 for ra, dec in centres])
    nearest = to_sources.min(axis=1) if len(frame) else np.full(len(centres), np.inf)
    far = to_sources.min(axis=0) > AWAY_ARCMIN if len(frame) else np.zeros(0, bool)
    # As in halo-train blind: nothing within AWAY_ARCMIN of a catalogued cluster (PSZ2, MCXC, MGCLS) is false either.
    far &= ~near_any(frame["ra"], frame["dec"], *catalogued_clusters(), radius_arcmin=AWAY_ARCMIN)
    # The 46 files are ~2-4 deg2 cut-outs, smaller than the tiles around them: most windows of a
    # tile lie partly off the image, where no survey of the full GLEAM mosaics would have an edge.
    # The rate comparable with halo-train blind's counts untruncated candidates per deg2 of
    # untruncated windows (at most TRUNCATED_MAX_FRACTION of the cut-out without data).
    scores = read_candidates(out / "scores", columns=["zero_fraction"])
    imaged = int(np.sum(scores["zero_fraction"] <= TRUNCATED_MAX_FRACTION))
    return {"summary": summary, "nearest_arcmin": nearest, "flags_ok": int((frame["flags"] == "ok").sum()),
            "away": int(far.sum()), "away_imaged": int((far & ~frame["flag_truncated"].to_numpy(bool)).sum()),
            "imaged_deg2": imaged * healpix.pixel_area_deg2(window_order)}


def scan_table(sources: list[GleamSource], results: dict[int, dict]) -> list[str]:
    lines = ["| window order (spacing) | windows | area | candidates (flags ok) | per deg2 | farther than "
             f"{AWAY_ARCMIN:g}' from every source and catalogued cluster (per deg2) | the same, untruncated, per deg2 "
             "of untruncated windows | "
             "halos with a candidate within 1 / 2 spacings | non-halos with a candidate within 1 / 2 spacings |",
             "|---|---|---|---|---|---|---|---|---|"]
    labels = np.array([s.label for s in sources])
    for order, r in results.items():
        spacing = healpix.resolution_arcmin(order)
        s = r["summary"]
        cells = []
        for label in CLASSES:
            near = r["nearest_arcmin"][labels == label]
            cells.append(f"{np.sum(near <= spacing)} / {np.sum(near <= 2 * spacing)} of {near.size}")
        lines.append(f"| {order} ({spacing:.2f}') | {s.manifest.windows:,} | {s.area_deg2:.0f} deg2 | {s.candidates} "
                     f"({r['flags_ok']}) | {s.candidates_per_deg2:.2f} | {r['away']} ({r['away'] / s.area_deg2:.2f}) | "
                     f"{r['away_imaged']} in {r['imaged_deg2']:.0f} deg2 ({r['away_imaged'] / r['imaged_deg2']:.3f}) | "
                     f"{cells[0]} | {cells[1]} |")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory", nargs="?", type=Path, default=data_dir() / "gleam")
    p.add_argument("--orders", default="9,10", help="window orders of the blind scans")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a model halo-train ship exported (default the survey's)")
    options = p.parse_args(argv)
    loaded = scan_directory(options.directory)
    sources = [s for s in loaded.sources if s.label is not None]
    classifier = OnnxClassifier(options.model, providers="cpu")
    print(f"{len(sources)} labelled sources in {options.directory}; model {classifier.card.name} "
          f"(sha256 {classifier.card.onnx_sha256[:12]}), threshold {classifier.card.threshold:.4g}; it trained on "
          f"{len(trained_on(classifier))} of these fields\n")
    print("Score against window offset from the catalogued centre:\n")
    print("\n".join(offset_table(sources, classifier)))

    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", NoDetectionsWarning)
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory(prefix="halo-real-") as tmp:
            results = {int(order): blind_scan(sources, options.directory, window_order=int(order),
                                              out=Path(tmp) / f"order{order}", model=options.model)
                       for order in options.orders.split(",")}
    finally:
        ray.shutdown()
    print("\nBlind scans of every order-5 tile holding a source (fits source, shipped model, card threshold):\n")
    print("\n".join(scan_table(sources, results)))


if __name__ == "__main__":
    main()
