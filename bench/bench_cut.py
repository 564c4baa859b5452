"""The cut of a fused actor: its tile's geometry worked out once against once per part, and the copy's batch size.

Two measurements, CPU time of this one process (no Ray), on the benchmark's mock-sky tiles
(``bench_survey.nearest_full_tiles``) with their fields clipped and normalised beforehand:

1. ``cut_parts`` (the survey's path: the tile's WCS transforms, corners and fractions once,
   ``window_geometry``) against the same parts cut with ``cut_windows`` working them out
   for each part itself (the path before commit 59f5299), in interleaved rounds;
2. the compiled gather alone (``survey.model.kernels.gather``) cutting every window of the
   tiles in batches of 16 to 1,024: the copy of 64 KiB per window is cheaper while the
   batch stays in cache.

Example::

    python bench/bench_cut.py --tiles 8 --rounds 6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_survey import machine_description, nearest_full_tiles  # noqa: E402

from survey.defaults import DEFAULT_MODEL, DEFAULT_TILE_ORDER, DEFAULT_WINDOW_ORDER  # noqa: E402
from survey.images.mock import MockSky, MockSource  # noqa: E402
from survey.model import kernels  # noqa: E402
from survey.model.badpixels import INF_PIXELS_COLUMN, infinite_masks, infinite_pixels  # noqa: E402
from survey.model.modelcard import load_model_card  # noqa: E402
from survey.model.preprocess import batch_buffer, clip_field, cut_windows, window_geometry  # noqa: E402
from survey.run.arguments import CPU_BATCH  # noqa: E402
from survey.run.stages import cut_parts, window_rows  # noqa: E402
from survey.sky.bands import BAND_NAMES  # noqa: E402
from survey.sky.fields import tile_request  # noqa: E402
from survey.sky.tiling import windows_in_tile  # noqa: E402


def prepared_tiles(n: int, normalisation) -> list[tuple]:
    """(tile, windows, clipped field) of ``n`` mock-sky tiles, each band already normalised."""
    source = MockSource(MockSky(seed=0))
    out = []
    for tile in nearest_full_tiles(n, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER):
        request = tile_request(tile, tile_order=DEFAULT_TILE_ORDER)
        field = clip_field(source.read_field(request), key=request.key)
        for band in BAND_NAMES:
            field.band_pixels(band, normalisation)
        windows = windows_in_tile(tile, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER)
        out.append((tile, windows, field))
    return out


def parts_working_out_each(tiles, *, normalisation, buffer) -> None:
    """The per-part path before 59f5299: every part's ``cut_windows`` works out its own geometry."""
    for tile, windows, field in tiles:
        masks = infinite_masks(field.images)
        for start in range(0, len(windows), CPU_BATCH):
            part = slice(start, start + CPU_BATCH)
            ra, dec = windows.ra_deg[part], windows.dec_deg[part]
            cut = cut_windows(field, ra, dec, normalisation=normalisation, out=buffer)
            cut[INF_PIXELS_COLUMN] = infinite_pixels(field.images, ra, dec, masks=masks)
            window_rows(tile, windows.ipix[part], ra, dec, cut, tile_rows=len(windows))


def parts_sharing_geometry(tiles, *, normalisation, buffer) -> None:
    """The survey's ``cut_parts``."""
    for tile, windows, field in tiles:
        for _ in cut_parts(tile, windows, field, normalisation=normalisation, max_rows=CPU_BATCH, buffer=buffer):
            pass


def gather_us(tiles, *, normalisation, batch: int, rounds: int) -> float:
    """Best CPU us per window of the compiled gather alone, cutting all windows ``batch`` at a time."""
    planes, peaks = batch_buffer(batch), np.empty(batch, np.float32)
    jobs = []
    for _, windows, field in tiles:
        geometry = window_geometry(field, windows.ra_deg, windows.dec_deg)
        for channel, band in enumerate(BAND_NAMES):
            image, fill = field.band_pixels(band, normalisation)
            jobs.append((image, *geometry.corners[band], np.float32(fill), channel))
    n = sum(len(w) for _, w, _ in tiles)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for image, x0, y0, fill, channel in jobs:
            for s in range(0, x0.size, batch):
                m = min(batch, x0.size - s)
                kernels.gather(image, x0[s:s + m], y0[s:s + m], fill, planes[:m], channel, peaks[:m])
        best = min(best, time.process_time() - start)
    return 1e6 * best / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=8)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="only its card's normalisation is used")
    options = p.parse_args(argv)
    if not kernels.enabled():
        raise SystemExit("bench_cut: the compiled kernels are off (numba missing or HALO_SURVEY_NUMBA=0)")
    normalisation = load_model_card(options.model).normalisation
    tiles = prepared_tiles(options.tiles, normalisation)
    n = sum(len(w) for _, w, _ in tiles)
    buffer = batch_buffer(CPU_BATCH)
    paths = {"each part works out its positions, corners and fractions (before 59f5299)": parts_working_out_each,
             "the tile's geometry once, each part a slice of it (cut_parts)": parts_sharing_geometry}
    for path in paths.values():  # first calls compile and warm
        path(tiles[:1], normalisation=normalisation, buffer=buffer)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(options.rounds):
        for name, path in paths.items():
            start = time.process_time()
            path(tiles, normalisation=normalisation, buffer=buffer)
            times[name].append(1e6 * (time.process_time() - start) / n)
    print("\n".join(machine_description()))
    print(f"\nCommand: `python bench/bench_cut.py {' '.join(sys.argv[1:])}` ({len(tiles)} tiles, {n:,} windows)\n")
    print(f"| normalised fields cut {CPU_BATCH} windows at a time | CPU us per window, each round | best |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {' / '.join(f'{v:.1f}' for v in values)} | {min(values):.1f} |")
    print("\n| batch (windows) | compiled gather alone, CPU us per window (best round) |")
    print("|---|---|")
    for batch in (16, 64, 256, 1024):
        print(f"| {batch} | {gather_us(tiles, normalisation=normalisation, batch=batch, rounds=options.rounds):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
