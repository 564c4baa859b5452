"""A survey run, thin: prepare (checks, plan, restart state), stream the tiles through Ray Data, finish.

The shape follows hats-import (arguments -> map stages -> reduce, with a resume plan):

1. ``prepare`` - everything that needs files but no compute, once per run: the model and
   its card (a mismatch fails before any tile is read), the image source, the tiles or
   targets (``survey.run.plan``), and the output directory's restart state
   (``survey.run.resume_plan``). ``halo-survey`` calls it before starting Ray.
2. ``run`` streams the tiles not yet done through the stages of ``survey.run.dataset`` and
   writes each tile as it completes (``survey.run.tiles``): a killed run loses only tiles
   in flight, and ``--resume`` skips the others.
3. It then merges, cross-matches and writes the candidate catalogue (``survey.run.finish``),
   removes the work directory of a complete run and returns the summary
   (``survey.run.summary``).

Only ``survey.cli`` calls ``ray.init``; ``run`` uses the Ray that is running, or lets Ray
Data start a local one.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from survey.exceptions import CatalogError, HaloSurveyError
from survey.images.base import ImageSource
from survey.images.spec import open_source
from survey.model.infer import OnnxClassifier
from survey.model.modelcard import ModelCard
from survey.run.arguments import SurveyArguments
from survey.run.candidates import noise_max_jy
from survey.run.dataset import actors_write_tiles, build_dataset
from survey.run.finish import finish_outputs, load_match_catalogs
from survey.run.lock import output_lock
from survey.run.manifest import ManifestWriter, RunManifest
from survey.run.plan import WorkPlan, plan_work, run_provenance, work_items
from survey.run.resources import check_resources
from survey.run.resume_plan import ResumePlan
from survey.run.summary import RunSummary, mock_recovery
from survey.run.tiles import TileAssembler, TileSink, TileSummary, is_summary

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PreparedRun:
    """A run checked and planned, ready to stream: everything built once and passed down.

    Attributes
    ----------
    args : SurveyArguments
        The run's parameters.
    card : ModelCard
        The model's card, checked against the ONNX file and its graph.
    source : ImageSource
        Where the pixels come from.
    provenance : dict
        What every catalogue records and a resumed run must match (``run_provenance``).
    work : WorkPlan
        The tiles (and targets) of the whole run.
    resume : ResumePlan
        The output directory's restart state.
    seconds : float
        Time spent preparing.
    """

    args: SurveyArguments
    card: ModelCard
    source: ImageSource
    provenance: dict[str, object]
    work: WorkPlan | None
    resume: ResumePlan
    seconds: float

    @property
    def threshold(self) -> float:
        """The detection threshold: ``--threshold``, else the card's."""
        return float(self.args.threshold if self.args.threshold is not None else self.card.threshold)

    @property
    def keep_above(self) -> float | None:
        """Rows scoring at least this keep their cut-out: detections in a scan, every target; None without cut-outs."""
        if not self.args.store_cutouts:
            return None
        return self.threshold if self.args.mode == "scan" else 0.0

    @property
    def rows_above(self) -> float | None:
        """Inference actors return only rows scoring at least this (and a count per tile): a scan without ``--all-scores``.

        With split stages every row an actor returns travels to the driver; a scan writes
        only its detections, so the others travel as one row per tile and batch that counts
        them (``survey.run.stages.keep_detections``). None: every row (targets, all scores).
        """
        return self.threshold if self.args.mode == "scan" and not self.args.all_scores else None


def prepare(args: SurveyArguments, *, source: ImageSource | None = None) -> PreparedRun:
    """Check and plan a run without compute: model and card, source, tiles, output directory.

    ``source`` replaces the ImageSource ``args.source`` describes (tests, custom sources);
    it must describe itself the same way for ``--resume`` to accept the run.

    Raises
    ------
    ModelCardError
        The card is missing, describes another file, or disagrees with the ONNX graph.
    BadInputError
        The output location cannot be written or holds another run; the region, source or
        target catalogues are bad.
    """
    start = time.perf_counter()
    card = OnnxClassifier(args.model, providers="cpu").card
    source = open_source(args.source_spec) if source is None else source
    provenance = run_provenance(args, card, source)
    resume = ResumePlan.prepare(args, provenance=provenance)
    work = None if resume.finished is not None else plan_work(args, source)
    return PreparedRun(args, card, source, provenance, work, resume, time.perf_counter() - start)


def run(args: SurveyArguments | PreparedRun, *, source: ImageSource | None = None) -> RunSummary:
    """Run the survey on the Ray that is running (Ray Data starts a local one if none is).

    Parameters
    ----------
    args : SurveyArguments or PreparedRun
        The run, or a run already prepared (``prepare``), as the CLI does before starting Ray.
    source : ImageSource, optional
        With ``SurveyArguments`` only: replaces the source ``args.source`` describes.

    Raises
    ------
    ModelCardError, BadInputError
        Before any compute (see ``prepare``); also when another run holds the output
        directory's lock (``survey.run.lock``).
    ResourceError
        The Ray cluster cannot run what the arguments ask for (``survey.run.resources``).
    HaloSurveyError
        The stream stopped (a worker crashed, Ray failed); finished tiles are kept and the
        message says to rerun with ``--resume``.
    """
    prepared = args if isinstance(args, PreparedRun) else prepare(args, source=source)
    if prepared.resume.finished is not None:
        logger.warning("%s: the run is already complete; nothing to resume", prepared.args.output)
        manifest = prepared.resume.finished
        return RunSummary(str(prepared.args.output), manifest, manifest.candidates or 0, None, [])
    check_resources(prepared.args)  # a request no node can meet would wait forever (survey.run.resources)
    with output_lock(prepared.args.output, run_id=prepared.args.run_id):  # one run per output (survey.run.lock)
        return _execute(prepared)


def _execute(run: PreparedRun) -> RunSummary:
    """Stream the pending tiles, finish the catalogues, and write the manifest as the run goes."""
    start = time.perf_counter() - run.seconds
    args, work, resume = run.args, run.work, run.resume
    outputs = resume.open(provenance=run.provenance)
    done_before, pending = resume.pending(work, outputs)
    manifest = RunManifest(run_id=args.run_id, mode=args.mode, arguments=args.record(), provenance=run.provenance,
                           tiles_planned=len(work.tiles), tiles_done_before=len(done_before), run_ids=resume.run_ids,
                           targets_skipped=work.targets_skipped, source_problems=list(getattr(run.source, "problems", [])))
    manifest.timings["plan"] = round(time.perf_counter() - start, 3)
    writer = ManifestWriter(manifest, outputs.root)
    writer.save(force=True)
    sink = TileSink(outputs, args=args, threshold=run.threshold, noise_max=noise_max_jy(run.card))
    providers = _stream(run, pending, sink=sink, writer=writer)
    finish_start, finish_cpu = time.perf_counter(), time.process_time()
    catalogs = load_match_catalogs(args.match_catalogs, online=args.online)
    unscored = len(manifest.failed) + work.targets_skipped.get("unreadable_images", 0)
    complete = resume.is_complete(work, outputs, failed=unscored)
    result = finish_outputs(args, outputs, provenance=run.provenance, catalogs=catalogs, complete=complete)
    if complete:
        resume.clean_up()
    manifest.candidates = result.candidates
    manifest.status = "complete" if complete else "partial"
    manifest.timings["finish"] = round(time.perf_counter() - finish_start, 3)
    manifest.timings["finish_driver_cpu"] = round(time.process_time() - finish_cpu, 3)
    manifest.timings["total"] = round(time.perf_counter() - start, 3)
    writer.save(force=True)
    truth, radius = mock_recovery(run.source, args, result)
    return RunSummary(str(outputs.root), manifest, result.candidates, work.area_deg2, providers, truth, radius)


def _stream(run: PreparedRun, pending: list[int], *, sink: TileSink, writer: ManifestWriter) -> list[str]:
    """Run the Ray Data stages over ``pending`` tiles and write each as it completes; returns the providers seen."""
    args, work = run.args, run.work
    manifest = writer.manifest
    stream_start, stream_cpu = time.perf_counter(), time.process_time()
    providers: set[str] = set()
    tile_seconds: list[float] = []
    if pending:
        actors_write = actors_write_tiles(args)
        manifest.arguments["tile_writes"] = "actors" if actors_write else "driver"  # as it ran, like "stages"
        ds = build_dataset(args, source=run.source, normalisation=run.card.normalisation,
                           items=work_items(pending, work.targets, work.rows_per_tile), keep_above=run.keep_above,
                           rows_above=run.rows_above, sink=sink if actors_write else None)
        failure: BaseException | None = None
        with _progress(args, total=len(pending)) as bar:
            try:
                for rows in _iterate(ds):
                    _handle_tile(rows, work=work, sink=sink, manifest=manifest, providers=providers,
                                 tile_seconds=tile_seconds)
                    bar.update(1)
                    bar.set_postfix_str(f"{manifest.windows / max(time.perf_counter() - stream_start, 1e-9):,.0f} windows/s")
                    writer.save()
            except BaseException as exc:  # record the interruption, whatever stopped us (Ctrl-C included)
                manifest.status = "interrupted"
                manifest.timings["pipeline"] = round(time.perf_counter() - stream_start, 3)
                writer.save(force=True)
                failure = _stream_failure(exc, done=manifest.tiles_done, pending=len(pending))
        if failure is not None:
            del ds
            _release_stream(failure)
            raise failure
    manifest.timings["pipeline"] = round(time.perf_counter() - stream_start, 3)
    # The driver's own CPU while streaming (all its threads: Ray Data's executor, this loop):
    # what caps a cluster's rate however many nodes it has (BENCHMARKS.md, "The driver").
    manifest.timings["pipeline_driver_cpu"] = round(time.process_time() - stream_cpu, 3)
    manifest.timings["windows_per_s"] = round(manifest.windows / manifest.timings["pipeline"], 2) if pending else 0.0
    if tile_seconds:
        manifest.timings["tile_mean"] = round(float(np.mean(tile_seconds)), 4)
        manifest.timings["tile_max"] = round(float(np.max(tile_seconds)), 4)
    return sorted(providers)


def _stream_failure(exc: BaseException, *, done: int, pending: int) -> BaseException:
    """What a stopped stream raises: our own errors and Ctrl-C as they are, anything else as a HaloSurveyError.

    Ray has already logged a worker's traceback; the message keeps its last line.
    """
    if isinstance(exc, HaloSurveyError) or not isinstance(exc, Exception):
        return exc
    return HaloSurveyError(
        f"the run stopped after {done} of {pending} tiles ({_last_line(exc)}); "
        "finished tiles are kept: rerun with --resume to complete it"
    )


def _release_stream(failure: BaseException) -> None:
    """Let the stopped stream's Ray Data executor go, and with it its inference actors' CPUs or GPUs.

    Ray Data releases a failed stream's actors by dropping their handles, but the executor
    stays reachable from the frames of the error's traceback and from reference cycles. An
    exception kept by the caller (a test, a notebook, a resume in the same process) would
    then hold the actors' resources, and the next run on a small Ray could wait forever for
    a CPU. The Ray error is not chained (the stopped stream is raised outside its handler),
    the frames below ours are cleared, and the cycles collected now.
    """
    traceback.clear_frames(failure.__traceback__)
    gc.collect()


RAY_CAUSE_MARKER = "The above exception was the direct cause"


def _last_line(exc: BaseException, *, limit: int = 300) -> str:
    """The gist of an error, e.g. ``RuntimeError: ...`` from a worker.

    Ray re-raises a worker's exception as one error whose text is the worker's formatted
    traceback (the original error's line comes just before Python's "direct cause" line).
    """
    text = str(exc).split(RAY_CAUSE_MARKER)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:limit]


def _iterate(ds) -> Iterable[pa.Table]:
    """Complete tiles, reassembled from the scored batches Ray Data streams back."""
    assembler = TileAssembler()
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield from (rows for _, rows in assembler.add(batch))
    if assembler.incomplete:
        raise CatalogError(f"tiles {assembler.incomplete[:10]} ended with rows missing; rerun with --resume")


def _handle_tile(rows: pa.Table, *, work: WorkPlan, sink: TileSink, manifest: RunManifest, providers: set[str],
                 tile_seconds: list[float]) -> None:
    """Record one finished tile: written already by its actor (a summary row), or written here from its rows."""
    tile = int(rows.column("tile")[0].as_py())
    expected = work.rows_per_tile[tile]
    written_by_actor = is_summary(rows)
    summary = TileSummary.from_table(rows) if written_by_actor else sink.finish(rows, expected=expected)
    if summary.error:
        manifest.record_failure(tile, summary.error)
        return
    if summary.windows != expected:
        raise CatalogError(f"tile {tile}: planned {expected} windows but {summary.windows} were scored")
    if written_by_actor:  # its actor wrote the rows; the tile is done once counted here
        sink.mark_done(summary)
    providers.update(summary.providers)
    tile_seconds.append(summary.seconds)
    manifest.record_tile(tile, windows=summary.windows, node=summary.node)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        return None

    def set_postfix_str(self, text: str) -> None:
        return None


def _progress(args: SurveyArguments, *, total: int):
    if not args.progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="tile", desc=f"halo-survey {args.mode}", dynamic_ncols=True)
