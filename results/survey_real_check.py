"""How the shipped classifier sees the real halos when windows are not centred on them (docs/survey.md quotes this).

    RAY_AUTH_MODE=disabled .venv/bin/python results/survey_real_check.py [DATA_DIR] [--orders 9,10]

Two measurements on the paper's 46 real GLEAM fields, with the shipped model and the
survey's own preprocessing:

1. **Score against window offset**: each source's field is clipped and normalised as in a
   survey, and windows are cut at 0-7' from the catalogued centre in 8 directions.
   Training cut-outs were always centred, and a blind scan's nearest window lies up to
   about 0.7 window spacings (4.9' at window order 9) from a halo.
2. **Blind scans** through the real pipeline (``run``, local Ray) of every
   tile holding a source, at each window order: which sources have a candidate within
   one and within two window spacings, and how many candidates there are per deg2.

The shipped model was trained on all 46 sources, so every score here is on its own
training fields: an upper bound on what it does on new clusters. Prints Markdown tables.
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
from survey.sky import healpix
from survey.sky.geometry import angular_distance_deg
from training.data import side_positions

OFFSETS_ARCMIN = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0)
DIRECTIONS = 8
CLASSES = {1: "halo", 0: "non-halo"}


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
    by_class = {label: {r: [] for r in OFFSETS_ARCMIN} for label in CLASSES}
    for source in sources:
        for radius, scores in offset_scores(source, classifier).items():
            by_class[source.label][radius].extend(scores.tolist())
    threshold = classifier.card.threshold
    lines = [f"| class | offset | windows | median score | score >= 0.5 | score >= {threshold:g} |", "|---|---|---|---|---|---|"]
    for label, name in CLASSES.items():
        for radius in OFFSETS_ARCMIN:
            s = np.array(by_class[label][radius])
            lines.append(f"| {name} | {radius:g}' | {s.size} | {np.median(s):.3f} | {np.mean(s >= 0.5):.0%} | "
                         f"{np.mean(s >= threshold):.0%} |")
    return lines


def blind_scan(sources: list[GleamSource], directory: Path, *, window_order: int, out: Path) -> dict:
    """Scan every tile holding a source; per source, the distance to the nearest candidate."""
    from survey.output.query import read_candidates
    from survey.run.pipeline import run

    centres = np.array([s.centre_radec for s in sources])
    tiles = sorted({int(t) for t in healpix.ang2pix(DEFAULT_TILE_ORDER, centres[:, 0], centres[:, 1])})
    args = SurveyArguments(region=f"tiles:{DEFAULT_TILE_ORDER}:{','.join(map(str, tiles))}", source=f"fits:{directory}",
                           window_order=window_order, output=out, progress=False, match_catalogs=())
    summary = run(args)
    frame = read_candidates(out / "candidates")
    nearest = [float(angular_distance_deg(frame["ra"], frame["dec"], ra, dec).min() * 60) if len(frame) else np.inf
               for ra, dec in centres]
    return {"summary": summary, "nearest_arcmin": np.array(nearest), "flags_ok": int((frame["flags"] == "ok").sum())}


def scan_table(sources: list[GleamSource], results: dict[int, dict]) -> list[str]:
    lines = ["| window order (spacing) | windows | area | candidates (flags ok) | per deg2 | halos with a candidate "
             "within 1 / 2 spacings | non-halos with a candidate within 1 / 2 spacings |", "|---|---|---|---|---|---|---|"]
    labels = np.array([s.label for s in sources])
    for order, r in results.items():
        spacing = healpix.resolution_arcmin(order)
        s = r["summary"]
        cells = []
        for label in CLASSES:
            near = r["nearest_arcmin"][labels == label]
            cells.append(f"{np.sum(near <= spacing)} / {np.sum(near <= 2 * spacing)} of {near.size}")
        lines.append(f"| {order} ({spacing:.2f}') | {s.manifest.windows:,} | {s.area_deg2:.0f} deg2 | {s.candidates} "
                     f"({r['flags_ok']}) | {s.candidates_per_deg2:.2f} | {cells[0]} | {cells[1]} |")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory", nargs="?", type=Path, default=data_dir() / "gleam")
    p.add_argument("--orders", default="9,10", help="window orders of the blind scans")
    options = p.parse_args(argv)
    loaded = scan_directory(options.directory)
    sources = [s for s in loaded.sources if s.label is not None]
    classifier = OnnxClassifier(DEFAULT_MODEL, providers="cpu")
    print(f"{len(sources)} labelled sources in {options.directory}; model {classifier.card.name} "
          f"(sha256 {classifier.card.onnx_sha256[:12]}), threshold {classifier.card.threshold:g}\n")
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
                                              out=Path(tmp) / f"order{order}")
                       for order in options.orders.split(",")}
    finally:
        ray.shutdown()
    print("\nBlind scans of every order-5 tile holding a source (fits source, shipped model, card threshold):\n")
    print("\n".join(scan_table(sources, results)))


if __name__ == "__main__":
    main()
