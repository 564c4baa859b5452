"""The driver's CPU while streaming: what it costs per Ray Data task and per second, and the rate one driver can carry.

With fused actors writing their own tiles (the default on CPUs), the driver no longer sees
windows: its CPU while streaming is Ray Data's executor polling (a share of a core, per
second) plus a cost per task it schedules and collects. This bench scans the same mock-sky
tiles with 1, 4 and 16 tiles per task (``survey.run.dataset.WINDOWS_PER_CALL``, overridden
here), reads the driver's CPU from each run's manifest (``pipeline_driver_cpu``), fits

    driver CPU seconds = a * streaming seconds + b * tasks

by least squares, and prints the rate at which one driver core would saturate at the
survey's default of 4,096 windows per task: (1 - a) / b * 4096 windows/s. That is the
scaling limit of one run however many nodes it has.

Example::

    python bench/bench_driver.py --tiles 96 --tiles-per-task 1,4,16 --repeats 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_survey import machine_description, nearest_full_tiles  # noqa: E402

import survey.run.dataset as dataset  # noqa: E402
from survey import SurveyArguments, run_survey  # noqa: E402
from survey.defaults import DEFAULT_MODEL, DEFAULT_TILE_ORDER, DEFAULT_WINDOW_ORDER  # noqa: E402

SURVEY_WINDOWS_PER_CALL = dataset.WINDOWS_PER_CALL
"""The survey's own setting, read before ``scan`` overrides it."""


def scan(tiles: list[int], *, tiles_per_task: int, out: Path) -> dict[str, float]:
    """One scan with ``tiles_per_task`` tiles per Ray Data task; the manifest's timings and the task count."""
    windows_per_tile = 4 ** (DEFAULT_WINDOW_ORDER - DEFAULT_TILE_ORDER)
    dataset.WINDOWS_PER_CALL = tiles_per_task * windows_per_tile
    dataset.CALLS_PER_ACTOR = 1  # exactly tiles_per_task, however few tasks that leaves
    args = SurveyArguments(model=DEFAULT_MODEL, output=out, region=f"tiles:{DEFAULT_TILE_ORDER}:{','.join(map(str, tiles))}",
                           progress=False, match_catalogs=())
    summary = run_survey(args)
    return {**summary.manifest.timings, "windows": summary.manifest.windows,
            "tasks": -(-len(tiles) // tiles_per_task), "tiles_per_task": tiles_per_task}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=96)
    p.add_argument("--tiles-per-task", default="1,4,16")
    p.add_argument("--repeats", type=int, default=2)
    options = p.parse_args(argv)
    import ray
    import ray.data

    tiles = nearest_full_tiles(options.tiles, tile_order=DEFAULT_TILE_ORDER, window_order=DEFAULT_WINDOW_ORDER)
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    runs = []
    try:
        for _ in range(options.repeats):  # interleaved, as this VM's speed drifts
            for per_task in (int(x) for x in options.tiles_per_task.split(",")):
                with tempfile.TemporaryDirectory(prefix="halo-driver-") as tmp:
                    runs.append(scan(tiles, tiles_per_task=per_task, out=Path(tmp) / "out"))
    finally:
        ray.shutdown()
    print("\n".join(machine_description()))
    print(f"\nCommand: `python bench/bench_driver.py {' '.join(sys.argv[1:])}`\n")
    print("| tiles per task | tasks | streaming s | windows/s | driver CPU s | driver CPU us per window |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['tiles_per_task']} | {r['tasks']} | {r['pipeline']:.1f} | {r['windows_per_s']:,.0f} | "
              f"{r['pipeline_driver_cpu']:.2f} | {1e6 * r['pipeline_driver_cpu'] / r['windows']:.1f} |")
    design = np.array([[r["pipeline"], r["tasks"]] for r in runs])
    cpu = np.array([r["pipeline_driver_cpu"] for r in runs])
    (per_second, per_task), *_ = np.linalg.lstsq(design, cpu, rcond=None)
    windows_per_task = SURVEY_WINDOWS_PER_CALL
    cap = (1 - per_second) / per_task * windows_per_task if per_task > 0 else float("inf")
    print(f"\nFit: driver CPU = {per_second:.3f} cores x streaming time + {1e3 * per_task:.1f} ms x tasks. "
          f"At {windows_per_task:,} windows per task one driver core saturates at {cap:,.0f} windows/s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
