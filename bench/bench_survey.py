"""Benchmark: survey pipeline throughput against bare ONNX Runtime, and peak memory vs scan size.

Three measurements on the same machine and the same model:

1. **Pure ONNX Runtime** - ``OnnxClassifier.predict`` on ready-made normalised batches, no I/O:
   the ceiling for inference alone (windows/s). Timed before and again after the pipeline
   runs: on a shared virtual machine it varies by tens of percent from minute to minute,
   and the ratio divides by the fastest figure, the least flattering one.
2. **Pipeline** - ``survey.run.pipeline.run`` over ``N`` and ``SCALE x N`` full tiles of
   the mock sky (fields rendered, clipped, cut, normalised, scored, merged, written);
   windows/s of the streaming phase (Ray start-up excluded, actor start-up included). The
   target is >= 70 % of pure ONNX Runtime on the larger run.
3. **Peak memory** - the largest sum of RSS over the driver and every process it started
   (Ray's GCS, raylet, workers), sampled every 0.2 s during each pipeline run. Shared pages
   (Ray's object store) are counted once per process that touches them, so this is an upper
   bound. Streaming should keep the peak roughly flat from ``N`` to ``SCALE x N`` tiles.

Without ``--model`` the shipped ``models/halo-classifier.onnx`` is used when present, else an
*untrained* stand-in CNN built here with ``onnx.helper`` (three 3x3 conv layers; random
weights) so inference costs something like a real classifier. Prints a Markdown table with
a description of the machine.

Examples
--------
Tiny smoke run (about a minute on two cores)::

    python bench/bench_survey.py --tiles 1 --scale 2 --ort-batches 5

A real measurement (idle machine)::

    python bench/bench_survey.py --tiles 4 --scale 10
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from survey import NoDetectionsWarning, OnnxClassifier, SurveyArguments, run_survey  # noqa: E402
from survey.defaults import (  # noqa: E402
    DEFAULT_MODEL,
    DEFAULT_TILE_ORDER,
    DEFAULT_WINDOW_ORDER,
    PROVIDERS,
    STAGE_LAYOUTS,
    TILE_WRITERS,
)
from survey.run.arguments import default_batch  # noqa: E402
from survey.sky import healpix  # noqa: E402
from survey.sky.bands import BAND_NAMES  # noqa: E402
from survey.sky.tiling import parse_region, plan  # noqa: E402

CENTRE = (339.6, -39.6)
"""Mock-sky position the benchmark tiles are taken around (the demo region's centre)."""


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


def standin_cnn(path: Path, *, seed: int = 0) -> Path:
    """Write an untrained CNN ((N, 4, 64, 64) band planes -> 2 softmax) and its card; returns the ONNX path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from survey.model.modelcard import TrainingRecord, build_card, card_path_for, write_card
    from survey.model.normalisation import Normalisation

    rng = np.random.default_rng(seed)
    weights, nodes, current, channels = [], [], "image", 4
    for i, out in enumerate((16, 32, 64), start=1):
        w = (rng.normal(0, np.sqrt(2 / (9 * channels)), (out, channels, 3, 3))).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(out, np.float32), f"b{i}")]
        nodes += [
            helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
            helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        current, channels = f"p{i}", out
    dense = rng.normal(0, 0.1, (channels, 2)).astype(np.float32)
    weights.append(numpy_helper.from_array(dense, "wd"))
    nodes += [
        helper.make_node("GlobalAveragePool", [current], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("MatMul", ["flat", "wd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "standin_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 4, 64, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    norm = Normalisation("minmax", -0.1, 2.0)
    helper.set_model_props(model, {"normalisation_id": norm.id})
    onnx.save(model, str(path))
    record = TrainingRecord(sources=(), protocol="paper", seed=seed, epochs=0, augment={"benchmark": "untrained"})
    write_card(build_card(path, architecture="cnn", training=record, normalisation=norm), card_path_for(path))
    return path


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------


def pure_ort_windows_per_s(model: Path, *, batch_size: int, batches: int, providers: str) -> tuple[float, str, float]:
    """Windows/s of ``predict`` on random normalised batches (after one warm-up batch), and CPU s per window.

    The batches have the card's input shape: the band planes the inference actors feed.
    """
    classifier = OnnxClassifier(model, providers=providers)
    batch = np.random.default_rng(0).random((batch_size, *classifier.card.input_spec.shape), dtype=np.float32)
    classifier.predict(batch)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        classifier.predict(batch)
    windows = batch_size * batches
    return windows / (time.perf_counter() - start), classifier.provider, (time.process_time() - cpu_start) / windows


CPU_ROLES = (("preprocess_batch", "preprocessing tasks"), ("Predictor", "inference actors"),
             ("TileWriter", "inference actors"), ("TileScorer", "fused actors"))
"""Ray worker titles (``ray::MapBatches(preprocess_batch)``, ``ray::MapWorker(MapBatches(Predictor))``,
``ray::MapWorker(MapBatches(TileWriter))``, ``ray::MapWorker(MapBatches(TileScorer))``) -> role."""


class ProcessSampler:
    """Samples this process and all its descendants in a background thread: peak RSS, CPU by role.

    CPU seconds are the growth of each process's user + system time since the sampler
    started (all of it for processes started later), attributed to the role its Ray title
    last showed: preprocessing tasks, inference actors, the driver (this process: Ray Data's
    executor, tile writes), or Ray itself (GCS, raylet, idle workers).
    """

    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.peak = 0
        self._start: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._role: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
                cpu = proc.cpu_times()
                title = " ".join(proc.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self._cpu[proc.pid] = cpu.user + cpu.system
            role = "driver" if proc.pid == me.pid else next((r for key, r in CPU_ROLES if key in title), None)
            self._role[proc.pid] = role or self._role.get(proc.pid, "Ray itself")
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcessSampler:
        self._sample()
        self._start = dict(self._cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds per role over the sampled interval."""
        by_role: dict[str, float] = {}
        for pid, seconds in self._cpu.items():
            role = self._role[pid]
            by_role[role] = by_role.get(role, 0.0) + seconds - self._start.get(pid, 0.0)
        return by_role


def nearest_full_tiles(count: int, *, tile_order: int, window_order: int) -> list[int]:
    """The ``count`` tiles nearest ``CENTRE`` (all inside the GLEAM footprint, so every window counts)."""
    radius = 2.0
    while True:
        candidates = plan(parse_region(f"cone:{CENTRE[0]},{CENTRE[1]},{radius}"), tile_order=tile_order,
                          window_order=window_order).tiles
        if candidates.size >= count:
            ra, dec = healpix.pix2ang(tile_order, candidates)
            distance = np.hypot((ra - CENTRE[0]) * np.cos(np.radians(CENTRE[1])), dec - CENTRE[1])
            return sorted(int(t) for t in candidates[np.argsort(distance)[:count]])
        radius *= 1.5


MOSAIC_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "halo-survey-bench"
"""Where ``mosaic_source`` keeps its mosaics between runs (outside the repository)."""


def mosaic_source(tiles: list[int], *, tile_order: int, seed: int = 0) -> str:
    """``fits:DIR`` of one mock-sky mosaic per band covering ``tiles``, written once and cached.

    What a user scanning their own images gives the survey: a directory of four big FITS
    files (``mosaic_<band>.fits``, north-up TAN at each band's native pixel scale), read
    memory-mapped a field at a time (``survey.images.fitsdir``). The sky is the bench's
    mock sky rendered as one field wide enough for every tile's field and margin.
    """
    from astropy.io import fits

    from survey.images.mock import MockSky, MockSource
    from survey.sky.fields import FieldRequest, tile_request

    fields = [tile_request(t, tile_order=tile_order) for t in tiles]
    ra = np.array([f.ra_deg for f in fields])
    dec = np.array([f.dec_deg for f in fields])
    centre_ra = float(np.degrees(np.arctan2(np.sin(np.radians(ra)).mean(), np.cos(np.radians(ra)).mean())) % 360)
    centre_dec = float(dec.mean())
    extent = np.hypot((((ra - centre_ra + 180) % 360) - 180) * np.cos(np.radians(dec)), dec - centre_dec)
    width = float(2 * (extent.max() + max(f.width_deg for f in fields)))
    folder = MOSAIC_CACHE / f"mosaic-o{tile_order}-{min(tiles)}-{max(tiles)}-{len(tiles)}-seed{seed}"
    if not all((folder / f"mosaic_{band}.fits").is_file() for band in BAND_NAMES):
        folder.mkdir(parents=True, exist_ok=True)
        request = FieldRequest("bench mosaic", centre_ra, centre_dec, width)
        for band, image in MockSource(MockSky(seed=seed)).read_field(request).items():
            temp = folder / f".mosaic_{band}.fits.tmp"
            fits.PrimaryHDU(np.asarray(image.data, np.float32), header=image.wcs.to_header()).writeto(temp, overwrite=True)
            temp.replace(folder / f"mosaic_{band}.fits")
    return f"fits:{folder}"


@dataclass
class PipelineResult:
    tiles: int
    windows: int
    windows_per_s: float
    peak_rss_mb: float
    providers: list[str]
    cpu_seconds: dict[str, float]
    layout: str
    timings: dict[str, float]
    tile_writes: str


def pipeline_run(model: Path, tiles: list[int], *, out: Path, options: argparse.Namespace,
                 source: str = "mock") -> PipelineResult:
    """One scan of ``tiles`` from ``source`` (the mock sky, or its mosaics), with peak memory sampled throughout."""
    from survey.run.dataset import inference_actors

    region = f"tiles:{DEFAULT_TILE_ORDER}:{','.join(map(str, tiles))}"
    args = SurveyArguments(model=model, output=out, region=region, progress=False, match_catalogs=(), source=source,
                           batch_size=options.batch_size, concurrency=options.concurrency, stages=options.stages,
                           providers=options.providers, num_gpus=options.num_gpus, tile_writes=options.tile_writes)
    with ProcessSampler() as sampler:
        summary = run_survey(args)
    layout = f"{summary.manifest.arguments['stages']}, {inference_actors(args)} inference actor(s)"
    return PipelineResult(len(tiles), summary.manifest.windows, summary.windows_per_s, sampler.peak / 2**20,
                          summary.providers, sampler.cpu_seconds(), layout, dict(summary.manifest.timings),
                          summary.manifest.arguments.get("tile_writes", "driver"))


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def machine_description() -> list[str]:
    import onnxruntime
    import ray

    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return [
        f"- machine: {platform.node()} ({platform.system()} {platform.release()}, {platform.machine()})",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores ({psutil.cpu_count(logical=False)} physical)",
        f"- memory: {psutil.virtual_memory().total / 2**30:.1f} GiB",
        f"- onnxruntime {onnxruntime.__version__} (providers available: {', '.join(onnxruntime.get_available_providers())}), "
        f"ray {ray.__version__}, python {platform.python_version()}",
        f"- load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def cpu_breakdown(result: PipelineResult, *, ort_cpu_s: float) -> str:
    """CPU microseconds per window by role, e.g. ``preprocessing tasks 350, inference actors 240, ...``."""
    roles = sorted(result.cpu_seconds.items(), key=lambda item: -item[1])
    parts = [f"{role} {1e6 * seconds / max(result.windows, 1):,.0f}" for role, seconds in roles]
    total = 1e6 * sum(result.cpu_seconds.values()) / max(result.windows, 1)
    return f"{total:,.0f} ({', '.join(parts)}); pure ONNX Runtime {1e6 * ort_cpu_s:,.0f}"


def markdown(model: Path, options, ort: dict[str, list[tuple[float, str, float]]], small: PipelineResult,
             large: PipelineResult) -> str:
    """The results table; the ratio is against the fastest bare ONNX Runtime figure (layouts and timings)."""
    ort_rate, ort_provider, ort_cpu_s = max(max(runs) for runs in ort.values())
    ratio = large.windows_per_s / ort_rate if ort_rate else float("nan")
    rows = [
        (f"pure ONNX Runtime, {layout}, before / after the pipeline runs",
         " / ".join(f"{rate:,.0f}" for rate, _, _ in runs) + f" windows/s (batch {ort_batch(options)}, {runs[0][1]})")
        for layout, runs in ort.items()
    ]
    rows += [
        (f"pipeline, {small.tiles} tiles ({small.windows:,} windows)", f"{small.windows_per_s:,.0f} windows/s"),
        (f"pipeline, {large.tiles} tiles ({large.windows:,} windows)", f"{large.windows_per_s:,.0f} windows/s"),
        ("pipeline / pure ONNX Runtime (larger run, the fastest figure above)", f"{ratio:.0%} (target >= 70 %)"),
        (f"peak RSS, {small.tiles} tiles", f"{small.peak_rss_mb:,.0f} MiB"),
        (f"peak RSS, {large.tiles} tiles", f"{large.peak_rss_mb:,.0f} MiB"),
        ("image source (`--source`)", "the mock sky, rendered per tile" if options.source == "mock"
         else "one FITS mosaic per band of the mock sky (`fits:DIR`), read memory-mapped per tile"),
        ("stages (`--stages`), tile writes (`--tile-writes`)", f"{large.layout}; {large.tile_writes}"),
        ("inference provider (actors)", ", ".join(large.providers) or "-"),
        (f"CPU us per window, {large.tiles} tiles", cpu_breakdown(large, ort_cpu_s=ort_cpu_s)),
        (f"driver CPU us per window, {large.tiles} tiles: while streaming / finishing (manifest timings)",
         f"{1e6 * large.timings.get('pipeline_driver_cpu', float('nan')) / max(large.windows, 1):,.1f} / "
         f"{1e6 * large.timings.get('finish_driver_cpu', float('nan')) / max(large.windows, 1):,.1f} "
         f"({large.timings.get('pipeline_driver_cpu', float('nan')) / large.timings.get('pipeline', float('nan')):.1%} "
         "of a core while streaming)"),
    ]
    lines = [f"## halo-survey benchmark: {model.name}", "", *machine_description(), "",
             f"Command: `python bench/bench_survey.py {' '.join(sys.argv[1:])}`", "",
             "| measurement | result |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def ort_batch(options) -> int:
    """The batch of the bare ONNX Runtime figure: the pipeline's (``--batch-size``, else the survey's default)."""
    return options.batch_size or default_batch(num_gpus=options.num_gpus)


ORT_LAYOUT = "band planes (the card's input)"
"""Label of the bare ONNX Runtime figure in the table."""


def time_pure_ort(model: Path, options) -> dict[str, list[tuple[float, str, float]]]:
    """``pure_ort_windows_per_s`` on the card's input, in a one-element list under its label."""
    return {ORT_LAYOUT: [pure_ort_windows_per_s(model, batch_size=ort_batch(options), batches=options.ort_batches,
                                                providers=options.providers)]}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="ONNX model with its card (default: shipped, else a stand-in CNN)")
    p.add_argument("--tiles", type=int, default=2, help="N: tiles of the smaller run (each 1,024 windows at orders 5/10)")
    p.add_argument("--scale", type=int, default=10, help="the larger run has SCALE x N tiles")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows per ONNX Runtime call, pipeline and bare (default: the survey's, 64 on CPUs)")
    p.add_argument("--concurrency", type=int, default=None, help="inference actors (default: the survey's)")
    p.add_argument("--stages", default="auto", choices=STAGE_LAYOUTS, help="the survey's --stages")
    p.add_argument("--tile-writes", default="auto", choices=TILE_WRITERS, help="the survey's --tile-writes")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per inference actor")
    p.add_argument("--providers", default="auto", choices=PROVIDERS)
    p.add_argument("--ort-batches", type=int, default=20, help="timed batches for the pure ONNX Runtime figure")
    p.add_argument("--source", default="mock", choices=("mock", "fits-mosaic"),
                   help="mock: render the mock sky per tile; fits-mosaic: one FITS mosaic per band of it, "
                   f"written once under {MOSAIC_CACHE}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(argv)
    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # after the import: ray.data sets up its logger
    # An untrained stand-in finds nothing: the empty-catalogue warning is expected here.
    warnings.simplefilter("ignore", NoDetectionsWarning)

    with tempfile.TemporaryDirectory(prefix="halo-bench-") as tmp:
        tmp_path = Path(tmp)
        model = options.model or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else standin_cnn(tmp_path / "standin_cnn.onnx"))
        ort = time_pure_ort(model, options)
        tiles = nearest_full_tiles(options.tiles * options.scale, tile_order=DEFAULT_TILE_ORDER,
                                   window_order=DEFAULT_WINDOW_ORDER)
        ray.init(num_cpus=options.num_cpus, include_dashboard=False, logging_level="ERROR",
                          log_to_driver=False)
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            source = (mosaic_source(tiles, tile_order=DEFAULT_TILE_ORDER) if options.source == "fits-mosaic"
                      else "mock")
            small = pipeline_run(model, tiles[: options.tiles], out=tmp_path / "small", options=options, source=source)
            large = pipeline_run(model, tiles, out=tmp_path / "large", options=options, source=source)
        finally:
            ray.shutdown()
        for layout, again in time_pure_ort(model, options).items():
            ort[layout] += again
        print(markdown(model, options, ort, small, large))
    return 0


if __name__ == "__main__":
    sys.exit(main())
