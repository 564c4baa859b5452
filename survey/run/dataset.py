"""The Ray Data dataset of a run: its stages wired together, and the resources each actor and task asks for.

Blind scans and targets both start from one work item per tile (``survey.run.plan``). On
CPUs each actor of one pool reads, preprocesses and scores whole tiles (``TileScorer``,
the fused layout); with GPUs (or SkyView, whose reads wait on the network) preprocessing
runs in stateless tasks on any free CPU and the actors score one tile per task (the split
layout). Either way, where every node can write the output (``actors_write_tiles``), the
actors write the tiles they score and the driver only counts them.
"""

from __future__ import annotations

import logging
import os

from survey.images.base import ImageSource
from survey.model.normalisation import Normalisation
from survey.run.arguments import SurveyArguments
from survey.run.stages import Predictor, TileScorer, TileWriter, preprocess_batch
from survey.run.tiles import TileSink
from survey.sky.bands import BANDS, CUTOUT_SIZE
from survey.sky.fields import tile_field

logger = logging.getLogger(__name__)

PREPROCESS_COPIES = 8
"""Rough number of float32 copies of a field that preprocessing holds at once (pixels,
clipped pixels, masks, noise-fit temporaries), for the memory each task reserves."""

CPU_ACTOR_THREADS = 1
"""ONNX Runtime threads of a CPU inference actor when ``intra_op_threads`` is not given
(``inference_resources``): more actors (``concurrency``) scale CPU inference instead."""

WORKER_BASELINE_BYTES = 320 << 20
"""Memory of a Ray worker with numpy, astropy, scipy and healpy imported, before any data
(an estimate; Ray Data's memory report on a mock scan put a whole preprocessing worker at
about this plus the field)."""



def preprocess_memory_bytes(*, tile_order: int, window_order: int) -> int:
    """Memory one preprocessing task reserves: a tile's field in four bands, copies, and its cut-outs.

    Telling Ray the footprint keeps it from starting more reads than memory allows; it also
    keeps this stage a separate operator from the inference actors (Ray Data only fuses
    stages whose resource requests agree), so reading scales with free CPUs, not actors.
    """
    width = tile_field(0, tile_order=tile_order)[2]
    field_pixels = sum((width / band.pixel_deg) ** 2 for band in BANDS)
    windows = 4 ** (window_order - tile_order)
    cutouts = windows * CUTOUT_SIZE * CUTOUT_SIZE * len(BANDS) * 2
    return WORKER_BASELINE_BYTES + int(4 * (PREPROCESS_COPIES * field_pixels + cutouts))


def build_dataset(
    args: SurveyArguments,
    *,
    source: ImageSource,
    normalisation: Normalisation,
    items: list[dict],
    keep_above: float | None = None,
    rows_above: float | None = None,
    sink: TileSink | None = None,
):
    """The survey as a lazy ``ray.data.Dataset`` of scored window rows (nothing runs until iterated).

    Parameters
    ----------
    args : SurveyArguments
        Orders, region, stage layout, actor and batch settings.
    source : ImageSource
        Where the tiles' pixels come from (pickled to every worker).
    normalisation : Normalisation
        The model card's: the stages build the model's input with it.
    items : list of dict
        Work items (``survey.run.plan.work_items``): the tiles still to do.
    keep_above : float, optional
        Rows scoring at least this keep their cut-out for the catalogue.
    rows_above : float, optional
        Split stages: the inference actors return only rows scoring at least this, and one
        row per tile and batch counting the others (``Predictor``); the driver writes only
        detections. Actors that write their tiles return summaries anyway.
    sink : TileSink, optional
        The actors write each tile they finish here and stream back one ``TileSummary``
        row per tile instead of its rows (fused ``TileScorer``; split ``TileWriter``, which
        takes one tile per task and leaves a tile whose rows Ray Data split to the driver).

    Returns
    -------
    ray.data.Dataset
        Batches of scored window rows (``Predictor`` output: the preprocessed columns,
        ``score``, ``provider``, ``node`` and the kept ``image`` cut-outs), or with ``sink``
        tile summaries, streamed as the caller iterates.
    """
    import ray.data

    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    preprocess = {"source": source, "tile_order": args.tile_order, "window_order": args.window_order,
                  "region": args.region_spec, "normalisation": normalisation}
    threads, resources = inference_resources(args)
    predictor = {"model_path": str(args.model), "input_normalisation": normalisation, "providers": args.providers,
                 "intra_op_threads": threads, "keep_above": keep_above}
    if args.fused_stages:  # more actors than tiles would never get work
        n_actors = min(inference_actors(args), max(1, len(items)))
        per_call = tiles_per_call(args, tiles=len(items), actors=n_actors) if sink is not None else 1
        return ds.map_batches(TileScorer, batch_size=per_call, compute=ray.data.ActorPoolStrategy(size=n_actors),
                              **resources, fn_constructor_kwargs={"preprocess": preprocess, "predictor": predictor,
                                                                  "batch_size": args.inference_batch, "sink": sink})
    ds = ds.map_batches(
        preprocess_batch,
        batch_size=tiles_per_read(tiles=len(items), read_concurrency=args.read_concurrency),
        fn_kwargs=preprocess,
        compute=ray.data.TaskPoolStrategy(size=args.read_concurrency),
        num_cpus=1,
        memory=preprocess_memory_bytes(tile_order=args.tile_order, window_order=args.window_order),
    )
    split_predictor = {**predictor, "rows_above": rows_above, "batch_size": args.inference_batch}
    pool = ray.data.ActorPoolStrategy(size=inference_actors(args))
    if sink is not None:  # whole blocks, i.e. whole tiles: the actor writes each one (TileWriter)
        return ds.map_batches(TileWriter, fn_constructor_kwargs={**split_predictor, "sink": sink}, batch_size=None,
                              compute=pool, **resources)
    return ds.map_batches(Predictor, fn_constructor_kwargs=split_predictor,
                          batch_size=max(args.inference_batch, SPLIT_WINDOWS_PER_CALL), compute=pool, **resources)


LOCAL_SCHEMES = ("file", "local")
"""Output locations on this machine's filesystem: shared with actors only on a single-node Ray."""

PROCESS_LOCAL_SCHEMES = ("memory",)
"""Output locations no other process sees (fsspec's in-memory filesystem)."""


def actors_write_tiles(args: SurveyArguments) -> bool:
    """Whether the inference actors write their tiles (``--tile-writes``, with ``auto`` resolved).

    ``auto`` lets them when every actor can reach the output: an object store always, a
    local path only while Ray runs on this one node (on a cluster whose nodes do not share
    that filesystem, rows written elsewhere would be lost to the finish step; pass
    ``--tile-writes actors`` when they do share it), and never fsspec's ``memory://``, which
    lives in one process. Fused and split stages alike.
    """
    if args.tile_writes != "auto":
        return args.tile_writes == "actors"
    scheme = str(args.output).split("://", 1)[0] if "://" in str(args.output) else "file"
    if scheme in PROCESS_LOCAL_SCHEMES:
        return False
    if scheme not in LOCAL_SCHEMES:
        return True
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")] if ray.is_initialized() else []
    if len(nodes) > 1:
        logger.info("%d Ray nodes and a local --output: the driver writes the tiles (--tile-writes actors if the "
                    "nodes share %s)", len(nodes), args.output)
        return False
    return True


SPLIT_WINDOWS_PER_CALL = 1024
"""Windows per Ray Data task of a split-stage inference actor (a tile at the default orders), scored
``inference_batch`` at a time: Ray Data's driver pays ~5 ms per task (``bench/bench_driver.py``), so
tasks of 64 windows cost it ~80 us a window."""

WINDOWS_PER_CALL = 4096
"""Windows a fused actor scores per Ray Data task when it writes its own tiles (``tiles_per_call``;
``bench/bench_driver.py`` varies it)."""

CALLS_PER_ACTOR = 4
"""At least this many tasks per actor, so the last tasks of a run do not leave actors idle."""


def tiles_per_call(args: SurveyArguments, *, tiles: int, actors: int) -> int:
    """Tiles per Ray Data task of a fused actor that writes its tiles: enough for ``WINDOWS_PER_CALL`` windows.

    Ray Data's driver spends several ms of CPU on every task it schedules and collects
    (``bench/bench_driver.py``, BENCHMARKS.md "The driver"): with one 1,024-window tile per
    task that was most of its CPU per window, whatever the actors do. Several tiles per task divide it; each tile is still
    written, and summarised, on its own. Fewer when the run is small, so every actor gets
    ``CALLS_PER_ACTOR`` tasks. With the driver writing (no sink), tasks stay one tile each:
    the tile's rows are the task's output.

    Parameters
    ----------
    args : SurveyArguments
        The run (its tile and window orders).
    tiles : int
        Work items of the run.
    actors : int
        Fused actors that share them.

    Returns
    -------
    int
        Tiles per ``map_batches`` call, at least 1.
    """
    windows = 4 ** (args.window_order - args.tile_order)
    return tiles_per_task(-(-WINDOWS_PER_CALL // windows), tiles=tiles, workers=actors)


def tiles_per_task(wanted: int, *, tiles: int, workers: int) -> int:
    """``wanted`` tiles per task, fewer when that would leave a worker under ``CALLS_PER_ACTOR`` tasks.

    The one rule behind ``tiles_per_call`` (fused actors) and ``tiles_per_read`` (split-stage readers).

    Parameters
    ----------
    wanted : int
        Tiles per task the caller aims for.
    tiles : int
        Work items of the run.
    workers : int
        Actors or reading tasks that share them.

    Returns
    -------
    int
        At least 1.
    """
    return max(1, min(wanted, tiles // (CALLS_PER_ACTOR * workers)))


TILES_PER_READ = 4
"""Tiles a split-stage preprocessing task reads, one after the other, each its own output block
(``preprocess_batch``): Ray Data's driver pays several ms per task (``bench/bench_driver.py``)."""


def tiles_per_read(*, tiles: int, read_concurrency: int | None) -> int:
    """Tiles per split-stage preprocessing task: ``TILES_PER_READ``, fewer when a run is too small to keep its readers busy.

    Parameters
    ----------
    tiles : int
        Work items of the run.
    read_concurrency : int or None
        ``--read-concurrency``; None (Ray decides) counts as every CPU of the cluster.

    Returns
    -------
    int
        At least 1.
    """
    return tiles_per_task(TILES_PER_READ, tiles=tiles, workers=read_concurrency or cluster_cpus())


def cluster_cpus() -> int:
    """CPUs of the Ray that is running, else of this machine (Ray Data starts a local Ray with one per core)."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else os.cpu_count()
    return max(1, int(cpus or 1))


def inference_actors(args: SurveyArguments) -> int:
    """How many inference actors: ``concurrency``, else one per CPU of Ray for fused stages on CPUs, else one.

    Fused actors do all the work, so they need every CPU; Ray Data starts a local Ray with
    one CPU per core when none is running.
    """
    if args.concurrency is not None:
        return args.concurrency
    if not args.fused_stages or args.num_gpus:
        return 1
    return cluster_cpus()


def inference_resources(args: SurveyArguments) -> tuple[int | None, dict[str, float]]:
    """ONNX Runtime threads and Ray resources of one inference actor.

    With ``num_gpus`` the actor reserves its GPU (and Ray Data's default CPU) and ONNX
    Runtime keeps its default threads. On CPUs the actor reserves one CPU and, unless
    ``intra_op_threads`` says otherwise, runs ONNX Runtime on that one thread: its default
    pool of one thread per core spin-waits between operators, taking CPU from the
    preprocessing on the other cores; more actors (``concurrency``) scale CPU inference
    instead. With split stages, an actor reserving no CPU would let preprocessing use its
    core too, then preprocessing outruns inference while the actor starts, and the cut-outs
    queued between them (16 MiB a tile) raise the peak memory, the more the larger the region.
    """
    if args.num_gpus:
        return args.intra_op_threads, {"num_gpus": args.num_gpus}
    threads = args.intra_op_threads if args.intra_op_threads is not None else CPU_ACTOR_THREADS
    return threads, {"num_cpus": 1}
