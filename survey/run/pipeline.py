"""A survey run: arguments -> Ray Data stages -> catalogues, resumable tile by tile.

The shape follows hats-import: ``SurveyArguments`` are validated first, ``build_dataset``
wires the stages of ``survey.run.stages``, and ``run_with_client`` orchestrates:

1. **Check** the model and its card on the driver (a mismatch fails before any tile is
   read), the output location (writable, not holding another run unless ``--resume`` or
   ``--overwrite``), and plan the tiles (``survey.sky.tiling.plan``) or the targets.
2. **Stream** the tiles not yet done through Ray Data: ``from_items`` (one row per tile) ->
   ``map_batches(preprocess_batch)`` in stateless tasks (read the field once, clip, normalise
   with the model card's normalisation, cut every window) -> ``map_batches(Predictor)`` in
   an actor pool (ONNX Runtime, batched). On CPUs the two stages are fused
   (``--stages``): each actor of the pool runs both on its own tiles (``TileScorer``), so
   cut-outs never cross processes. The driver iterates the scored rows (scores and
   small columns only; cut-outs only for detections), reassembles each tile (every row
   says how many rows its tile has), and writes it: window scores (``--all-scores``) and
   the tile's detections to a work catalogue, each with a done marker
   (``survey.output.store.CatalogWriter``). A killed run loses only tiles in flight;
   ``--resume`` skips the marked ones.
3. **Finish**: merge the detections of all tiles by non-maximum suppression
   (``survey.run.candidates.merge_detections``: across tile boundaries, as it runs over every
   tile at once), cross-match each candidate with the cluster catalogues, and write the
   candidate catalogue one partition per tile; ``hats.properties`` comes last.

Only ``survey.cli`` calls ``ray.init``: ``run_with_client(args, client)`` takes a running
Ray (local or ``--address``); ``run(args)`` lets Ray Data start a local one on first use.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table
from hats.io.file_io import remove_directory
from upath import UPath

from survey.catalogs.load import load_catalog
from survey.defaults import IMAGES_CATALOG
from survey.exceptions import BadInputError, CatalogError, HaloSurveyError
from survey.images.base import ImageSource
from survey.images.fitsdir import FitsDirectorySource
from survey.model.infer import OnnxClassifier
from survey.model.modelcard import ModelCard, load_model_card
from survey.output import paths
from survey.output.store import SCRATCH_COMPRESSION_LEVEL, CatalogWriter, check_writable, package_version
from survey.run.arguments import SourceSpec, SurveyArguments
from survey.run.candidates import (
    candidate_rows,
    detections,
    match_columns,
    merge_detections,
    noise_max_jy,
    score_rows,
    with_merge_and_matches,
)
from survey.run.manifest import ManifestWriter, RunManifest, read_manifest
from survey.run.stages import Predictor, Target, TileScorer, preprocess_batch, work_items
from survey.sky import healpix
from survey.sky.fields import tile_field
from survey.sky.geometry import angular_distance_deg
from survey.sky.tiling import plan

logger = logging.getLogger(__name__)

WORK_DIR = "work"
DETECTIONS_DIR = "detections"
"""``<output>/work/detections``: the per-tile detections (a resumable HATS catalogue in
progress), merged into ``<output>/candidates`` at the end and removed once the run is complete."""

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


# --------------------------------------------------------------------------------------
# Inputs: source, plan, targets, catalogues
# --------------------------------------------------------------------------------------


def make_source(spec: SourceSpec) -> ImageSource:
    """The ImageSource of a parsed ``--source``."""
    if spec.kind == "mock":
        from survey.images.mock import MockSky, MockSource

        return MockSource(MockSky(seed=spec.seed))
    if spec.kind == "skyview":
        from survey.images.skyview import SkyViewSource

        return SkyViewSource()
    return FitsDirectorySource(spec.directory)


@dataclass(frozen=True, eq=False)
class WorkPlan:
    """The tiles of a run and what each must produce.

    Attributes
    ----------
    tiles : numpy.ndarray
        int64 tile ids at the run's tile order, ascending.
    rows_per_tile : dict[int, int]
        Windows (scan) or targets per tile: the row count each tile must deliver.
    targets : dict[int, list[Target]]
        Targets per tile (empty for a blind scan).
    area_deg2 : float or None
        Sky area of a blind scan's windows (None for targets).
    targets_skipped : dict[str, int]
        Targets of the catalogues not planned, by reason (``RunManifest.targets_skipped``).
    """

    tiles: np.ndarray
    rows_per_tile: dict[int, int]
    targets: dict[int, list[Target]] = field(default_factory=dict)
    area_deg2: float | None = None
    targets_skipped: dict[str, int] = field(default_factory=dict)


def plan_scan(args: SurveyArguments) -> WorkPlan:
    """Every non-empty tile of the region with its window count."""
    survey_plan = plan(args.region_spec, tile_order=args.tile_order, window_order=args.window_order)
    counts = {int(t): int(n) for t, n in zip(survey_plan.tiles, survey_plan.windows_per_tile)}
    return WorkPlan(survey_plan.tiles, counts, area_deg2=survey_plan.area_deg2)


def catalog_positions(name: str, *, source: ImageSource, online: bool) -> Table:
    """``name``, ``ra``, ``dec`` of one target catalogue (``images``: the source's image sets)."""
    if name == IMAGES_CATALOG:
        return source.targets()
    return load_catalog(name, online=online)


def plan_targets(args: SurveyArguments, source: ImageSource) -> WorkPlan:
    """One target per catalogued cluster inside the region (and inside the source's images, if it says)."""
    targets: list[Target] = []
    skipped = {"outside_region": 0, "outside_images": 0}
    for name in args.target_catalogs:
        table = catalog_positions(name, source=source, online=args.online)
        ra, dec = np.asarray(table["ra"], float), np.asarray(table["dec"], float)
        keep = args.region_spec.contains(ra, dec)
        skipped["outside_region"] += int(np.count_nonzero(~keep))
        if hasattr(source, "covers"):
            covered = source.covers(ra, dec)
            skipped["outside_images"] += int(np.count_nonzero(keep & ~covered))
            keep &= covered
        targets += [Target(str(n), name, float(r), float(d)) for n, r, d in zip(table["name"][keep], ra[keep], dec[keep])]
    tiles = healpix.ang2pix(args.tile_order, [t.ra_deg for t in targets], [t.dec_deg for t in targets])
    by_tile: dict[int, list[Target]] = {}
    for tile, target in zip(tiles.tolist(), targets):
        by_tile.setdefault(int(tile), []).append(target)
    counts = {tile: len(items) for tile, items in by_tile.items()}
    return WorkPlan(np.array(sorted(by_tile), np.int64), counts, by_tile, targets_skipped=skipped)


def load_match_catalogs(names: Sequence[str], *, online: bool) -> dict[str, Table]:
    """The cluster catalogues to cross-match with; a missing one is skipped with a warning, not fatal."""
    loaded = {}
    for name in names:
        try:
            loaded[name] = load_catalog(name, online=online)
        except HaloSurveyError as exc:
            logger.warning("no %s cross-match: %s (use --online, or set HALO_DATA_DIR)", name, exc)
    return loaded


def run_provenance(args: SurveyArguments, card: ModelCard, source: ImageSource) -> dict[str, object]:
    """What every catalogue of the run records, and what a resumed run must match (all but ``run_id``)."""
    return {
        "mode": args.mode,
        "model_name": card.name,
        "model_sha256": card.onnx_sha256,
        "source": args.source_spec.text,
        "source_description": source.describe(),
        "region": args.region_spec.text,
        "window_order": args.window_order,
        "threshold": float(args.threshold if args.threshold is not None else card.threshold),
        "target_catalogs": ",".join(args.target_catalogs),
        "all_scores": args.all_scores,
        "code_version": package_version(),
        "run_id": args.run_id,
    }


# --------------------------------------------------------------------------------------
# The Ray Data dataset
# --------------------------------------------------------------------------------------


def preprocess_memory_bytes(*, tile_order: int, window_order: int) -> int:
    """Memory one preprocessing task reserves: a tile's field in four bands, copies, and its cut-outs.

    Telling Ray the footprint keeps it from starting more reads than memory allows; it also
    keeps this stage a separate operator from the inference actors (Ray Data only fuses
    stages whose resource requests agree), so reading scales with free CPUs, not actors.
    """
    from survey.sky.bands import BANDS, CUTOUT_SIZE

    width = tile_field(0, tile_order=tile_order)[2]
    field_pixels = sum((width / band.pixel_deg) ** 2 for band in BANDS)
    windows = 4 ** (window_order - tile_order)
    cutouts = windows * CUTOUT_SIZE * CUTOUT_SIZE * len(BANDS) * 2
    return WORKER_BASELINE_BYTES + int(4 * (PREPROCESS_COPIES * field_pixels + cutouts))


def build_dataset(
    args: SurveyArguments,
    *,
    source: ImageSource | None = None,
    items: list[dict] | None = None,
    keep_above: float | None = None,
):
    """The survey as a lazy ``ray.data.Dataset`` of scored window rows (nothing runs until iterated).

    Parameters
    ----------
    args : SurveyArguments
    source : ImageSource, optional
        Default ``make_source(args.source_spec)``.
    items : list of dict, optional
        Work items (``survey.run.stages.work_items``); default every tile of the plan.
    keep_above : float, optional
        Rows scoring at least this keep their cut-out for the catalogue.
    """
    import ray.data

    source = make_source(args.source_spec) if source is None else source
    normalisation = load_model_card(args.model).normalisation
    if items is None:
        work = plan_scan(args) if args.mode == "scan" else plan_targets(args, source)
        items = work_items(work.tiles, work.targets)
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    preprocess = {"source": source, "tile_order": args.tile_order, "window_order": args.window_order,
                  "region": args.region_spec, "normalisation": normalisation}
    threads, resources = inference_resources(args)
    predictor = {"model_path": str(args.model), "input_normalisation": normalisation, "providers": args.providers,
                 "intra_op_threads": threads, "keep_above": keep_above}
    if args.fused_stages:  # one tile per call: more actors than tiles would never get work
        actors = ray.data.ActorPoolStrategy(size=min(inference_actors(args), max(1, len(items))))
        return ds.map_batches(TileScorer, batch_size=1, compute=actors, **resources,
                              fn_constructor_kwargs={"preprocess": preprocess, "predictor": predictor,
                                                     "batch_size": args.batch_size})
    ds = ds.map_batches(
        preprocess_batch,
        batch_size=1,
        fn_kwargs=preprocess,
        compute=ray.data.TaskPoolStrategy(size=args.read_concurrency),
        num_cpus=1,
        memory=preprocess_memory_bytes(tile_order=args.tile_order, window_order=args.window_order),
    )
    return ds.map_batches(Predictor, fn_constructor_kwargs=predictor, batch_size=args.batch_size,
                          compute=ray.data.ActorPoolStrategy(size=inference_actors(args)), **resources)


def inference_actors(args: SurveyArguments) -> int:
    """How many inference actors: ``concurrency``, else one per CPU of Ray for fused stages on CPUs, else one.

    Fused actors do all the work, so they need every CPU; Ray Data starts a local Ray with
    one CPU per core when none is running.
    """
    if args.concurrency is not None:
        return args.concurrency
    if not args.fused_stages or args.num_gpus:
        return 1
    import ray

    cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else os.cpu_count()
    return max(1, int(cpus or 1))


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


# --------------------------------------------------------------------------------------
# Driver side: reassemble tiles, write them
# --------------------------------------------------------------------------------------


class TileAssembler:
    """Collects scored rows, whatever batches they arrive in, and hands back each tile once complete.

    Every row carries ``tile`` and ``tile_rows`` (the rows its tile emits), so completeness is
    a count. A tile that delivers more rows than it announced raises CatalogError.
    """

    def __init__(self) -> None:
        self._parts: dict[int, list[pa.Table]] = {}
        self._counts: dict[int, int] = {}

    def add(self, table: pa.Table) -> list[tuple[int, pa.Table]]:
        """Take one batch; return ``(tile, rows)`` for every tile it completed."""
        tiles = table.column("tile").to_numpy()
        announced = table.column("tile_rows").to_numpy()
        complete = []
        for tile in np.unique(tiles):
            mask = tiles == tile
            expected = int(announced[mask][0])
            self._parts.setdefault(int(tile), []).append(table.filter(pa.array(mask)))
            self._counts[int(tile)] = self._counts.get(int(tile), 0) + int(mask.sum())
            if self._counts[int(tile)] > expected:
                raise CatalogError(f"tile {tile}: received {self._counts[int(tile)]} rows, but it announced {expected}")
            if self._counts[int(tile)] == expected:
                del self._counts[int(tile)]
                complete.append((int(tile), pa.concat_tables(self._parts.pop(int(tile)))))
        return complete

    @property
    def incomplete(self) -> list[int]:
        """Tiles with some but not all rows received."""
        return sorted(self._parts)


def tile_error(rows: pa.Table) -> str:
    """The error message of a failed tile's rows, or "" when the tile is fine."""
    errors = [e for e in rows.column("error").to_pylist() if e]
    return errors[0] if errors else ""


@dataclass
class Outputs:
    """The catalogues a run writes into.

    Attributes
    ----------
    root : UPath
        ``--output``.
    work : CatalogWriter
        Per-tile detections (scan) or target rows, merged into ``candidates`` at the end.
    scores : CatalogWriter or None
        Every window's score (``--all-scores``).
    """

    root: UPath
    work: CatalogWriter
    scores: CatalogWriter | None

    def done_tiles(self) -> set[int]:
        """Tiles finished in every catalogue of the run."""
        done = self.work.done_tiles()
        return done & self.scores.done_tiles() if self.scores is not None else done


def work_dir(output: paths.PathLike) -> UPath:
    """``<output>/work/detections``."""
    return paths.as_upath(output) / WORK_DIR / DETECTIONS_DIR


def _is_our_catalog(root: UPath) -> bool:
    return paths.properties_file(root).exists() or paths.run_state_file(root).exists()


def _prepare_output(args: SurveyArguments, root: UPath) -> None:
    """Refuse an output holding another run (unless resuming); with ``overwrite``, delete our old catalogues."""
    for catalog in (paths.catalog_dir(root, kind="candidates"), paths.catalog_dir(root, kind="scores"), work_dir(root)):
        if not catalog.exists() or not any(True for _ in catalog.iterdir()):
            continue
        if args.overwrite and _is_our_catalog(catalog):
            remove_directory(catalog)
        elif args.overwrite:
            raise BadInputError(str(catalog), "overwrite refused: this directory holds files but no halo-survey catalogue")
        elif not args.resume:
            raise BadInputError(
                str(catalog), "holds the catalogue of an earlier run; choose another --output, or pass --overwrite or --resume"
            )


def open_outputs(args: SurveyArguments, provenance: Mapping[str, object]) -> Outputs:
    """Check the output location and open the work (and scores) writers; raises before any compute."""
    root = check_writable(args.output)
    _prepare_output(args, root)
    options = {"order": args.tile_order, "provenance": provenance, "resume": args.resume}
    work = CatalogWriter(work_dir(root), kind="candidates", with_cutout=args.store_cutouts,
                         catalog_name="gleam_halo_detections", compression_level=SCRATCH_COMPRESSION_LEVEL, **options)
    scores = CatalogWriter(paths.catalog_dir(root, kind="scores"), kind="scores", **options) if args.all_scores else None
    return Outputs(root, work, scores)


class TileSink:
    """Writes one finished tile: its window scores (optional) and its detections, each with a done marker."""

    def __init__(self, outputs: Outputs, *, args: SurveyArguments, threshold: float, noise_max: Mapping[str, float]):
        self.outputs = outputs
        self.args = args
        self.threshold = threshold
        self.noise_max = dict(noise_max)

    def write(self, tile: int, rows: pa.Table) -> int:
        """Write ``tile``; returns how many rows went to the work catalogue (detections or targets)."""
        if self.outputs.scores is not None:
            self.outputs.scores.write_tile(tile, score_rows(rows, run_id=self.args.run_id))
        if self.args.mode == "scan":
            rows = rows.filter(pa.array(detections(rows.column("score").to_numpy(), threshold=self.threshold)))
        table = candidate_rows(rows, run_id=self.args.run_id, tile_order=self.args.tile_order,
                               window_order=self.args.window_order, noise_max=self.noise_max,
                               with_cutout=self.args.store_cutouts)
        # The work catalogue's marker is written last: it is what makes the tile "done".
        return self.outputs.work.write_tile(tile, table)


# --------------------------------------------------------------------------------------
# Finish: merge detections across tiles, cross-match, write candidates
# --------------------------------------------------------------------------------------


def read_detections(root: paths.PathLike, tiles: Iterable[int], *, order: int, columns: Sequence[str]) -> pa.Table:
    """Some columns of the work catalogue's rows in ``tiles`` (tiles without a file have no rows)."""
    parts = []
    for tile in sorted(tiles):
        path = paths.tile_file(root, order=order, tile=tile)
        if path.exists():
            parts.append(pq.read_table(path.path, filesystem=path.fs, columns=list(columns)))
    if not parts:
        return pa.table({name: pa.array([], type=pa.int64() if name != "score" else pa.float32()) for name in columns})
    return pa.concat_tables(parts)


def merged_peaks(args: SurveyArguments, root: UPath, tiles: set[int]) -> dict[int, int]:
    """``{window_ipix: n_windows}`` of the candidates: NMS over every detection of the run at once."""
    found = read_detections(root, tiles, order=args.tile_order, columns=["window_ipix", "score"])
    ipix = found.column("window_ipix").to_numpy()
    peaks, sizes = merge_detections(ipix, found.column("score").to_numpy(), order=args.window_order)
    return dict(zip(ipix[peaks].tolist(), sizes.tolist()))


def _read_tile(root: UPath, tile: int, order: int) -> pa.Table | None:
    path = paths.tile_file(root, order=order, tile=tile)
    return pq.read_table(path.path, filesystem=path.fs) if path.exists() else None


def final_rows(rows: pa.Table, *, args: SurveyArguments, peaks: Mapping[int, int] | None, catalogs) -> pa.Table:
    """A tile's candidate rows: its NMS peaks (scan) or all its targets, with cross-matches."""
    ipix = rows.column("window_ipix").to_numpy()
    if peaks is not None:
        keep = np.array([p in peaks for p in ipix.tolist()], bool)
        rows, ipix = rows.filter(pa.array(keep)), ipix[keep]
    n_windows = [peaks[p] for p in ipix.tolist()] if peaks is not None else np.ones(rows.num_rows)
    ra, dec = rows.column("ra").to_numpy(), rows.column("dec").to_numpy()
    matches = match_columns(ra, dec, catalogs, radius_arcmin=args.match_radius_arcmin)
    return with_merge_and_matches(rows, n_windows=n_windows, matches=matches)


@dataclass(frozen=True, eq=False)
class FinishResult:
    """What the finish stage wrote: candidate rows, their positions, and whether the run is complete."""

    candidates: int
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    complete: bool


def finish_outputs(
    args: SurveyArguments, outputs: Outputs, *, provenance: Mapping[str, object], catalogs, complete: bool
) -> FinishResult:
    """Merge, cross-match and write the candidate catalogue from every finished tile.

    The candidate catalogue is rebuilt from the work catalogue every time (it is small), so
    a resumed run ends with exactly the rows of an uninterrupted one. When every planned
    tile is done the scores catalogue is finished too and the work catalogue removed;
    otherwise both stay, so ``--resume`` can complete them.
    """
    done = outputs.work.done_tiles()
    peaks = merged_peaks(args, outputs.work.root, done) if args.mode == "scan" else None
    writer = CatalogWriter(paths.catalog_dir(outputs.root, kind="candidates"), order=args.tile_order,
                           provenance=provenance, overwrite=True, with_cutout=args.store_cutouts)
    ra, dec, total = [], [], 0
    for tile in sorted(done):
        rows = _read_tile(outputs.work.root, tile, args.tile_order)
        table = final_rows(rows, args=args, peaks=peaks, catalogs=catalogs) if rows is not None else None
        total += writer.write_tile(tile, table if table is not None else writer.schema.empty_table())
        if table is not None:
            ra.append(table.column("ra").to_numpy())
            dec.append(table.column("dec").to_numpy())
    writer.finish(expected_rows=total)
    if complete:
        if outputs.scores is not None:
            outputs.scores.finish()
        outputs.work.root.fs.rm(str(outputs.work.root.parent.path), recursive=True)
    return FinishResult(total, np.concatenate(ra) if ra else np.zeros(0), np.concatenate(dec) if dec else np.zeros(0), complete)


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What a run did, for the CLI's closing lines and for tests.

    Attributes
    ----------
    output : str
        The output directory.
    manifest : RunManifest
        The run's manifest (tiles, failures, timings, provenance).
    candidates : int
        Rows of the candidate catalogue.
    area_deg2 : float or None
        Sky area of a blind scan.
    providers : list of str
        ONNX Runtime providers the inference actors reported.
    mock_truth : tuple of int or None
        ``(injected, recovered)`` halos of a mock-sky run: halos inside the region, and those
        with a candidate within ``recovery_radius_arcmin``.
    recovery_radius_arcmin : float
        Two window spacings: a halo is recovered when the peak window lies that close.
    """

    output: str
    manifest: RunManifest
    candidates: int
    area_deg2: float | None
    providers: list[str]
    mock_truth: tuple[int, int] | None = None
    recovery_radius_arcmin: float = 0.0

    @property
    def windows_per_s(self) -> float:
        """Windows scored per second of streaming (reads, preprocessing and inference together)."""
        seconds = self.manifest.timings.get("pipeline", 0.0)
        return self.manifest.windows / seconds if seconds > 0 else 0.0

    @property
    def candidates_per_deg2(self) -> float | None:
        """Candidate density of a blind scan."""
        return self.candidates / self.area_deg2 if self.area_deg2 else None


def mock_recovery(source: ImageSource, args: SurveyArguments, result: FinishResult) -> tuple[tuple[int, int] | None, float]:
    """``(injected, recovered)`` halos of a mock-sky scan, and the radius used; None for real data."""
    radius = 2.0 * healpix.resolution_arcmin(args.window_order)
    sky = getattr(source, "sky", None)
    if sky is None or args.mode != "scan":
        return None, radius
    truth = sky.truth(args.region_spec)
    recovered = 0
    for ra, dec in zip(np.asarray(truth["ra"], float), np.asarray(truth["dec"], float)):
        if result.ra_deg.size and angular_distance_deg(result.ra_deg, result.dec_deg, ra, dec).min() * 60 <= radius:
            recovered += 1
    return (len(truth), recovered), radius


def format_summary(summary: RunSummary) -> str:
    """The closing lines of ``halo-survey scan`` / ``targets``."""
    m = summary.manifest
    lines = []
    if m.provenance.get("source", "").startswith("mock"):
        lines.append(f"MOCK DATA: synthetic GLEAM-like sky ({m.provenance.get('source_description')}), not real observations")
    lines += [
        f"run           {m.run_id} ({m.mode}, status {m.status})",
        f"region        {m.provenance.get('region')}",
        f"model         {m.provenance.get('model_name')} on {', '.join(summary.providers) or 'no actor (nothing to do)'}",
        f"tiles         {m.tiles_done} done now, {m.tiles_done_before} done before, {len(m.failed)} failed, "
        f"{m.tiles_planned} planned",
        f"windows       {m.windows:,} in {m.timings.get('pipeline', 0.0):.1f} s ({summary.windows_per_s:,.1f} windows/s)",
        f"candidates    {summary.candidates}" + (
            f" ({summary.candidates_per_deg2:.3f} per deg2 over {summary.area_deg2:.1f} deg2)"
            if summary.candidates_per_deg2 is not None else ""),
    ]
    if m.mode == "targets":
        skipped = m.targets_skipped
        lines.append(f"targets       not planned: {skipped.get('outside_region', 0):,} outside the region, "
                     f"{skipped.get('outside_images', 0):,} outside the images")
    if summary.mock_truth is not None:
        injected, recovered = summary.mock_truth
        lines.append(f"mock halos    {recovered} of {injected} injected halos recovered "
                     f"(a candidate within {summary.recovery_radius_arcmin:.1f}')")
    for failure in m.failed[:10]:
        lines.append(f"failed        {failure.error}")
    if len(m.failed) > 10:
        lines.append(f"failed        ... and {len(m.failed) - 10} more (see manifest.json)")
    lines.append(f"output        {summary.output}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------


def preflight(args: SurveyArguments) -> ModelCard:
    """The checks that need files but no compute: model against card and graph, output writable.

    ``survey.cli`` calls it before starting Ray, so these mistakes cost no cluster start-up.

    Raises
    ------
    ModelCardError
        The card is missing, describes another file, or disagrees with the ONNX graph.
    BadInputError
        The output location cannot be written.
    """
    card = OnnxClassifier(args.model, providers="cpu").card
    check_writable(args.output)
    return card


def run(args: SurveyArguments, *, source: ImageSource | None = None) -> RunSummary:
    """Run the survey; Ray Data starts a local Ray instance if none is running."""
    return run_with_client(args, None, source=source)


def _already_complete(args: SurveyArguments) -> bool:
    """A resumed run whose catalogue was finished and whose work was cleaned up: nothing to do."""
    finished = paths.properties_file(paths.catalog_dir(args.output, kind="candidates")).exists()
    return args.resume and finished and not paths.run_state_file(work_dir(args.output)).exists()


def _arguments_record(args: SurveyArguments) -> dict[str, str]:
    """The run's settings for the manifest; ``stages`` as it ran (``auto`` resolved)."""
    names = ("mode", "region", "source", "model", "output", "tile_order", "window_order", "threshold", "catalogs",
             "match_catalogs", "match_radius_arcmin", "all_scores", "store_cutouts", "batch_size", "concurrency",
             "num_gpus", "read_concurrency", "providers", "intra_op_threads")
    return {**{name: str(getattr(args, name)) for name in names}, "stages": "fused" if args.fused_stages else "split"}


def run_with_client(args: SurveyArguments, client: Any, *, source: ImageSource | None = None) -> RunSummary:
    """Run the survey on a Ray that is already running (``client``: what ``ray.init`` returned, or None).

    ``source`` replaces the ImageSource ``args.source`` describes (tests, custom sources);
    it must describe itself the same way for ``--resume`` to accept the run.

    Raises
    ------
    ModelCardError, BadInputError
        Before any compute: model and card disagree, the output is not writable or holds
        another run, the region or source is bad.
    HaloSurveyError
        The stream stopped (a worker crashed, Ray failed); finished tiles are kept and the
        message says to rerun with ``--resume``.
    """
    start = time.perf_counter()
    card = preflight(args)
    threshold = float(args.threshold if args.threshold is not None else card.threshold)
    source = make_source(args.source_spec) if source is None else source
    provenance = run_provenance(args, card, source)
    if _already_complete(args):
        return _nothing_to_do(args, provenance)
    work = plan_scan(args) if args.mode == "scan" else plan_targets(args, source)
    outputs = open_outputs(args, provenance)
    done_before = outputs.done_tiles() & set(work.rows_per_tile)
    pending = [int(t) for t in work.tiles if int(t) not in done_before]
    manifest = RunManifest(run_id=args.run_id, mode=args.mode, arguments=_arguments_record(args),
                           provenance=provenance, tiles_planned=len(work.tiles), tiles_done_before=len(done_before),
                           run_ids=_previous_run_ids(args) + [args.run_id], targets_skipped=work.targets_skipped)
    manifest.timings["plan"] = round(time.perf_counter() - start, 3)
    writer = ManifestWriter(manifest, outputs.root)
    writer.save(force=True)
    sink = TileSink(outputs, args=args, threshold=threshold, noise_max=noise_max_jy(card))
    keep_above = (threshold if args.mode == "scan" else 0.0) if args.store_cutouts else None
    providers = _stream(args, work, pending, source=source, sink=sink, writer=writer, keep_above=keep_above)
    finish_start = time.perf_counter()
    catalogs = load_match_catalogs(args.match_catalogs, online=args.online)
    complete = not manifest.failed and set(work.rows_per_tile) <= outputs.done_tiles()
    result = finish_outputs(args, outputs, provenance=provenance, catalogs=catalogs, complete=complete)
    manifest.candidates = result.candidates
    manifest.status = "complete" if complete else "partial"
    manifest.timings["finish"] = round(time.perf_counter() - finish_start, 3)
    manifest.timings["total"] = round(time.perf_counter() - start, 3)
    writer.save(force=True)
    truth, radius = mock_recovery(source, args, result)
    return RunSummary(str(outputs.root), manifest, result.candidates, work.area_deg2, providers, truth, radius)


def _previous_run_ids(args: SurveyArguments) -> list[str]:
    if not args.resume:
        return []
    previous = read_manifest(args.output)
    return previous.run_ids if previous is not None else []


def _nothing_to_do(args: SurveyArguments, provenance: Mapping[str, object]) -> RunSummary:
    """The summary of a finished run that ``--resume`` found, if it was made with these settings."""
    manifest = read_manifest(args.output)
    if manifest is None:
        raise BadInputError(str(args.output), "holds a finished catalogue but no manifest.json; nothing to resume")
    for key, value in provenance.items():
        if key != "run_id" and manifest.provenance.get(key) != value:
            raise BadInputError(
                str(args.output),
                f"the finished run there had {key}={manifest.provenance.get(key)!r} but this run has {key}={value!r}; "
                "pass --overwrite to redo it with the new settings, or choose another --output",
            )
    logger.warning("%s: the run is already complete; nothing to resume", args.output)
    return RunSummary(str(args.output), manifest, manifest.candidates or 0, None, [])


def _stream(args, work: WorkPlan, pending: list[int], *, source, sink: TileSink, writer: ManifestWriter,
            keep_above: float | None) -> list[str]:
    """Run the Ray Data stages over ``pending`` tiles and write each as it completes."""
    manifest = writer.manifest
    stream_start = time.perf_counter()
    providers: set[str] = set()
    tile_seconds: list[float] = []
    if pending:
        ds = build_dataset(args, source=source, items=work_items(pending, work.targets), keep_above=keep_above)
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
    tile = int(rows.column("tile")[0].as_py())
    error = tile_error(rows)
    if error:
        manifest.record_failure(tile, error)
        return
    expected = work.rows_per_tile[tile]
    if rows.num_rows != expected:
        raise CatalogError(f"tile {tile}: planned {expected} windows but {rows.num_rows} were scored")
    providers.update(p for p in rows.column("provider").unique().to_pylist() if p)
    tile_seconds.append(float(rows.column("tile_seconds")[0].as_py()))
    sink.write(tile, rows)
    manifest.record_tile(windows=rows.num_rows)


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
