"""Profile: CPU microseconds per window of each step of a tile's path, in one process (no Ray).

Runs the steps the Ray stages run, one after the other, on the benchmark's mock-sky tiles
and times each with ``time.process_time`` (CPU time of this process, so a busy machine
distorts it less than wall time; it still counts library threads, e.g. a BLAS pool):

- mock sky: the sources and halos near the field, rendering four bands;
- ``clip_field`` (noise fit and 3-sigma clip of four bands), ``cut_parts`` (normalise each
  band's field with the model card's normalisation, then cut the windows into band planes,
  64 at a time into one reused batch, as a fused actor on CPUs does), and for comparison
  the whole tile cut in one batch, the cut-outs alone and normalising every cut-out
  instead of the fields;
- pickling the preprocessed rows there and back (roughly what Ray's object store costs);
- ``Predictor.__call__``: ONNX Runtime (one thread, fed band planes) and the columns around it;
- the driver's write of the tile's detections (with their cut-outs) into the run's scratch
  catalogue, at the scratch ZSTD level and at hats' default level 15 for comparison.

It shows where a window's CPU goes; Ray's own costs (actor start-up, scheduling, moving
rows between processes) are what ``bench_survey.py`` adds on top. The input builder runs
its compiled kernels (``survey.model.kernels``); ``HALO_SURVEY_NUMBA=0`` times its numpy
reference path instead.

Example::

    python bench/profile_tile.py --tiles 4
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_survey import nearest_full_tiles  # noqa: E402

from survey.defaults import DEFAULT_MODEL, DEFAULT_TILE_ORDER, DEFAULT_WINDOW_ORDER  # noqa: E402
from survey.images.mock import MockSky, MockSource, render_band  # noqa: E402
from survey.model.modelcard import load_model_card  # noqa: E402
from survey.model.preprocess import IMAGE_COLUMN, batch_buffer, clip_field, cut_windows  # noqa: E402
from survey.output.store import PARQUET_COMPRESSION_LEVEL, SCRATCH_COMPRESSION_LEVEL, CatalogWriter  # noqa: E402
from survey.run.arguments import CPU_BATCH  # noqa: E402
from survey.run.candidates import candidate_rows, detections, noise_max_jy  # noqa: E402
from survey.run.stages import Predictor, cut_parts, window_rows  # noqa: E402
from survey.sky.fields import tile_request  # noqa: E402
from survey.sky.tiling import windows_in_tile  # noqa: E402


class Timer:
    """Accumulates CPU seconds per named step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable, *args, **kwargs):
        start = time.process_time()
        result = fn(*args, **kwargs)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start
        return result


def detection_writers(root: Path, *, with_cutout: bool) -> dict[str, CatalogWriter]:
    """A scratch-level and a default-level writer of the detections catalogue, by step name."""
    levels = {"scratch": SCRATCH_COMPRESSION_LEVEL, "hats default": PARQUET_COMPRESSION_LEVEL}
    return {
        f"driver: write detections (zstd {level}, {name})": CatalogWriter(
            root / name.replace(" ", "-"), order=DEFAULT_TILE_ORDER, provenance={"run_id": "profile"},
            with_cutout=with_cutout, compression_level=level)
        for name, level in levels.items()
    }


def profile(tiles: list[int], *, model: Path, scratch: Path, seed: int = 0) -> tuple[Timer, int, int]:
    """Run every step on each tile; returns the timer, the number of windows and of detections."""
    source = MockSource(MockSky(seed=seed))
    card = load_model_card(model)
    predictor = Predictor(str(model), input_normalisation=card.normalisation, providers="cpu", intra_op_threads=1,
                          keep_above=card.threshold)
    writers = detection_writers(scratch, with_cutout=True)
    found_total = 0
    first = tile_request(tiles[0], tile_order=DEFAULT_TILE_ORDER)  # first-call costs (numba compiles its kernels)
    warm = windows_in_tile(tiles[0], tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER)
    for normalisation in (None, card.normalisation):
        cut_windows(clip_field(source.read_field(first), key=first.key), warm.ra_deg[:4], warm.dec_deg[:4],
                    normalisation=normalisation, out=batch_buffer(4))
    timer, windows = Timer(), 0
    buffer = batch_buffer(max(len(windows_in_tile(t, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER))
                              for t in tiles))  # the comparison's whole-tile batch
    part_buffer = batch_buffer(CPU_BATCH)  # a fused actor reuses one batch's buffer
    for tile in tiles:
        request = tile_request(tile, tile_order=DEFAULT_TILE_ORDER)
        found = windows_in_tile(tile, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER)
        sources, halos = timer("mock: sources and halos near the field", source.nearby, request)
        images = {band.name: timer("mock: render four bands", render_band, source.sky, band, request,
                                   sources=sources, halos=halos) for band in source.bands}
        field = timer("noise fit + clip (clip_field)", clip_field, images, key=request.key)
        raw = timer("(comparison) cut-outs alone, not normalised", cut_windows, field, found.ra_deg, found.dec_deg)
        timer("(comparison) normalising every cut-out instead", card.normalisation.apply, raw[IMAGE_COLUMN])
        timer(f"normalise fields + cut as a fused actor does ({CPU_BATCH} windows at a time into one reused batch, "
              "cut_parts)", lambda *a, **k: sum(1 for _ in cut_parts(*a, **k)), tile, found, field,
              normalisation=card.normalisation, max_rows=CPU_BATCH, buffer=part_buffer)
        cut = timer("(comparison) the same, the whole tile in one batch (cut_windows)", cut_windows,
                    field, found.ra_deg, found.dec_deg, normalisation=card.normalisation, out=buffer)
        rows = window_rows(tile, found.ipix, found.ra_deg, found.dec_deg, cut)
        rows["tile_seconds"] = np.zeros(found.ipix.size)
        rows = timer("rows there and back (pickle, ~ object store)", lambda r: pickle.loads(pickle.dumps(r, 5)), rows)
        timer("ONNX Runtime alone (1 thread)", predictor.classifier.predict, rows[IMAGE_COLUMN])
        scored = timer("Predictor.__call__ (ONNX Runtime and the columns)", predictor, rows)
        scored = scored.filter(pa.array(detections(scored.column("score").to_numpy(), threshold=card.threshold)))
        table = candidate_rows(scored, run_id="profile", tile_order=DEFAULT_TILE_ORDER,
                               window_order=DEFAULT_WINDOW_ORDER, noise_max=noise_max_jy(card))
        for name, writer in writers.items():
            timer(name, writer.write_tile, tile, table)
        windows += found.ipix.size
        found_total += table.num_rows
    return timer, windows, found_total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=4, help="mock-sky tiles to profile (1,024 windows each)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    options = p.parse_args(argv)
    tiles = nearest_full_tiles(options.tiles, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER)
    with tempfile.TemporaryDirectory(prefix="halo-profile-") as scratch:
        timer, windows, found = profile(tiles, model=options.model, scratch=Path(scratch))
    print(f"| step ({len(tiles)} tiles, {windows:,} windows, {found:,} detections) | CPU us per window |")
    print("|---|---|")
    for name, seconds in timer.seconds.items():
        print(f"| {name} | {1e6 * seconds / windows:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
