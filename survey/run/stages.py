"""The Ray Data stages of a survey: per-tile preprocessing (tasks) and inference (actors), or both in one.

Stage functions take picklable keyword arguments (hats-import ``map_reduce.py`` style) and
know nothing about Ray, so they are tested on plain dicts:

1. ``preprocess_batch`` (stateless ``map_batches`` tasks, one block per tile): read each tile's
   field once in all four bands and build the model input of every window of the tile with
   the one input builder (``survey.model.preprocess``: clip, normalise with the model
   card's ``Normalisation``, cut band planes), one row per window with per-band noise and
   peak (Jy/beam) and the fraction of the cut-out that is outside the image or zero-filled.
   A tile that cannot be read becomes a single row whose ``error`` names the tile and the file.
2. ``Predictor`` (callable class, one ONNX Runtime session per actor, loaded in
   ``__init__``): score the batch and return it without the big ``image`` column, except
   for the cut-outs worth keeping (``keep_above``), which come back in Jy/beam as a list
   column that is null elsewhere.
   ``TileWriter``, a ``Predictor`` given the run's ``TileSink``, also writes each tile it
   receives whole and returns one summary row for it (a tile's rows are one Ray Data block).
3. ``TileScorer`` (callable class): both in one actor, for inference on CPUs, where the
   two stages would share the same cores and the cut-outs need not cross processes. Given
   the run's ``TileSink`` it also writes each tile it finishes and returns one summary row
   per tile (``survey.run.tiles``), so the driver's work is per tile, not per window.

Every row carries ``tile`` and ``tile_rows`` (the rows its tile emits in total), so the
driver can tell when a tile is complete whatever batches Ray Data forms.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from survey.exceptions import HaloSurveyError, ModelCardError
from survey.images.base import ImageSource
from survey.model.badpixels import INF_PIXELS_COLUMN, infinite_masks, infinite_pixels
from survey.model.infer import OnnxClassifier, ProviderChoice
from survey.model.normalisation import Normalisation
from survey.model.preprocess import (
    IMAGE_COLUMN,
    NOISE_COLUMNS,
    ClippedField,
    batch_buffer,
    channels_last,
    clip_field,
    cut_windows,
    window_geometry,
)
from survey.run.candidates import detections
from survey.run.plan import Target, targets_of
from survey.run.tiles import STANDS_FOR_COLUMN, TileSink
from survey.sky import healpix
from survey.sky.bands import BAND_NAMES, CUTOUT_SIZE, band_column
from survey.sky.fields import target_request, tile_request
from survey.sky.tiling import Region, windows_in_tile

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Rows of a tile (pure numpy once the pixels are read)
# --------------------------------------------------------------------------------------


def window_rows(
    tile: int, ipix: np.ndarray, ra: np.ndarray, dec: np.ndarray, cut: dict[str, np.ndarray], *, names=None, catalogs=None,
    tile_rows: int | None = None,
) -> dict[str, np.ndarray]:
    """Rows of some windows of ``tile``; ``tile_rows``: the rows the whole tile emits (default these).

    Parameters
    ----------
    tile : int
        NESTED index of the tile at the run's tile order.
    ipix : numpy.ndarray
        NESTED indices of the windows at the window order (-1 in a failed tile's row).
    ra, dec : numpy.ndarray
        Window centres, ICRS degrees.
    cut : dict of str to numpy.ndarray
        Per-window columns from ``cut_windows`` (``image``, fractions, noise, peaks).
    names, catalogs : sequence of str, optional
        Target names and their catalogue keys (targets mode); default ``""`` each.
    tile_rows : int, optional
        Rows the whole tile emits, when these are one part of it.

    Returns
    -------
    dict of str to numpy.ndarray
        Columns of equal length: ``tile``, ``tile_rows``, ``error`` (``""``),
        ``window_ipix``, ``ra``, ``dec``, ``target_name``, ``target_catalog`` and ``cut``'s.
    """
    n = ipix.size
    return {
        "tile": np.full(n, tile, np.int64),
        "tile_rows": np.full(n, n if tile_rows is None else tile_rows, np.int64),
        "error": np.full(n, "", dtype=object),
        "window_ipix": ipix.astype(np.int64),
        "ra": ra.astype(np.float64),
        "dec": dec.astype(np.float64),
        "target_name": np.array(names if names is not None else [""] * n, dtype=object),
        "target_catalog": np.array(catalogs if catalogs is not None else [""] * n, dtype=object),
        **cut,
    }


def failed_rows(tile: int, message: str) -> dict[str, np.ndarray]:
    """The single row a tile emits when it cannot be processed: ``error`` says why."""
    cut = {
        IMAGE_COLUMN: np.zeros((1, len(BAND_NAMES), CUTOUT_SIZE, CUTOUT_SIZE), np.float32),
        "outside_fraction": np.ones(1, np.float32),
        "zero_fraction": np.ones(1, np.float32),
        # In cut_windows' column order (noise and peak band by band), then the infinite pixels'
        # count, so the rows of failed and good tiles concatenate.
        **{band_column(kind, band): np.full(1, np.nan, np.float32)
           for band in BAND_NAMES for kind in ("noise", "peak")},
        INF_PIXELS_COLUMN: np.zeros(1, np.int32),
    }
    rows = window_rows(tile, np.full(1, -1), np.full(1, np.nan), np.full(1, np.nan), cut)
    rows["error"] = np.array([message], dtype=object)
    return rows


def scan_tile(
    tile: int, *, source: ImageSource, tile_order: int, window_order: int, region: Region,
    normalisation: Normalisation | None = None, max_rows: int | None = None, buffer: np.ndarray | None = None,
) -> Iterator[dict]:
    """Rows of every window of ``tile`` inside ``region``, in parts of at most ``max_rows`` (default one part).

    The field is read and clipped now, so a bad tile raises here; each part's windows are
    cut from it as the parts are taken, so only one part's cut-outs exist at a time.

    Parameters
    ----------
    tile : int
        NESTED index of the tile at ``tile_order``.
    source : ImageSource
        Where the tile's field is read from.
    tile_order, window_order : int
        HEALPix NESTED orders of tiles and windows.
    region : Region
        Only the tile's windows inside it are scored.
    normalisation : Normalisation, optional
        The model card's; makes ``image`` the model's input, else clipped Jy/beam.
    max_rows : int, optional
        Most windows per part; default all of them in one part.
    buffer : numpy.ndarray, optional
        ``batch_buffer(max_rows)``: every part is cut into it, so a part's ``image`` is
        valid only until the next part is taken (``TileScorer`` scores each part first).

    Returns
    -------
    iterator of dict
        ``window_rows`` dicts, one per part; a tile without windows gives one empty part.

    Raises
    ------
    HaloSurveyError
        The field cannot be read or clipped (BadInputError, RemoteServiceError).
    """
    windows = windows_in_tile(tile, tile_order=tile_order, window_order=window_order, region=region)
    request = tile_request(tile, tile_order=tile_order)
    field = clip_field(source.read_field(request), key=request.key)
    return cut_parts(tile, windows, field, normalisation=normalisation, max_rows=max_rows or max(1, len(windows)),
                     buffer=buffer)


def cut_parts(tile: int, windows, field: ClippedField, *, normalisation, max_rows: int,
              buffer: np.ndarray | None) -> Iterator[dict]:
    """The rows of a clipped tile's windows, ``max_rows`` at a time, each part cut into ``buffer``.

    Everything a part does not need to redo (the WCS transforms, the cut-outs' corners and
    fractions, the corrupt-pixel masks) is done once for the tile: at the CPU batch of 64
    windows, per-part work had cost as much as the cut itself.

    Parameters
    ----------
    tile : int
        NESTED index of the tile.
    windows : WindowSet
        Its windows (``windows_in_tile``).
    field : ClippedField
        Its clipped field.
    normalisation : Normalisation or None
        The model card's.
    max_rows : int
        Windows per part.
    buffer : numpy.ndarray or None
        ``batch_buffer(max_rows)``, reused by every part.

    Yields
    ------
    dict of str to numpy.ndarray
        ``window_rows`` of each part; a part's ``image`` is valid until the next is taken.
    """
    inf_masks = infinite_masks(field.images)  # corrupt pixels, flagged per window (survey.model.badpixels)
    geometry = window_geometry(field, windows.ra_deg, windows.dec_deg)  # the tile's WCS transforms and corners, once
    for start in range(0, max(len(windows), 1), max_rows):  # a tile without windows: one empty part
        part = slice(start, start + max_rows)
        ra, dec = windows.ra_deg[part], windows.dec_deg[part]
        cut = cut_windows(field, ra, dec, normalisation=normalisation, out=buffer, geometry=geometry.part(part))
        cut[INF_PIXELS_COLUMN] = infinite_pixels(field.images, ra, dec, masks=inf_masks)
        yield window_rows(tile, windows.ipix[part], ra, dec, cut, tile_rows=len(windows))


def target_tile(
    tile: int, targets: Sequence[Target], *, source: ImageSource, tile_order: int, window_order: int,
    normalisation: Normalisation | None = None,
) -> dict:
    """Rows of the targets in ``tile``: one small field centred on each target.

    Parameters
    ----------
    tile : int
        NESTED index of the tile at ``tile_order``.
    targets : sequence of Target
        The tile's targets, at least one.
    source : ImageSource
        Where each target's field is read from.
    tile_order, window_order : int
        HEALPix NESTED orders of tiles and windows; a target's ``window_ipix`` is the
        window containing it.
    normalisation : Normalisation, optional
        The model card's; makes ``image`` the model's input, else clipped Jy/beam.

    Returns
    -------
    dict of str to numpy.ndarray
        ``window_rows`` columns, one row per target centred on it, with its name and
        catalogue.

    Raises
    ------
    HaloSurveyError
        A target's field cannot be read or clipped.
    """
    parts = []
    for target in targets:
        key = f"tile {tile_order}/{tile} target {target.name!r} ({target.catalog})"
        request = target_request(key, ra_deg=target.ra_deg, dec_deg=target.dec_deg)
        field = clip_field(source.read_field(request), key=key)
        cut = cut_windows(field, target.ra_deg, target.dec_deg, normalisation=normalisation)
        cut[INF_PIXELS_COLUMN] = infinite_pixels(field.images, target.ra_deg, target.dec_deg)
        parts.append(cut)
    cut = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    ra = np.array([t.ra_deg for t in targets])
    dec = np.array([t.dec_deg for t in targets])
    ipix = healpix.ang2pix(window_order, ra, dec)
    return window_rows(tile, ipix, ra, dec, cut, names=[t.name for t in targets], catalogs=[t.catalog for t in targets])


def preprocess_parts(
    item: Mapping, *, source: ImageSource, tile_order: int, window_order: int, region: Region,
    normalisation: Normalisation | None = None, max_rows: int | None = None, buffer: np.ndarray | None = None,
) -> Iterator[dict]:
    """Rows of one work item, in parts of at most ``max_rows`` windows (default: one part).

    A tile that fails becomes one ``error`` row naming the tile and file. ``normalisation``
    (the model card's) makes the ``image`` column the model's input. ``tile_seconds`` is the
    time from the start of the item to the end of each part.

    Only the errors we raise on purpose (bad or missing files, unreachable services) are
    caught: a bug should stop the run, not be written into the manifest as a bad tile.

    Parameters
    ----------
    item : mapping
        A work item (``work_items``): ``tile`` and ``targets`` (JSON, ``""`` for a scan).
    source : ImageSource
        Where the pixels are read from.
    tile_order, window_order : int
        HEALPix NESTED orders of tiles and windows.
    region : Region
        The scan's region (unused for targets, which were selected when planned).
    normalisation : Normalisation, optional
        The model card's; without it ``image`` holds clipped Jy/beam.
    max_rows : int, optional
        Most windows per part of a scanned tile; targets always come in one part.
    buffer : numpy.ndarray, optional
        A scanned tile's parts are cut into it (``scan_tile``).

    Yields
    ------
    dict of str to numpy.ndarray
        ``window_rows`` columns plus ``tile_seconds``; a failed tile yields one
        ``failed_rows`` row.
    """
    tile = int(item["tile"])
    start = time.perf_counter()
    try:
        targets = targets_of(str(item.get("targets") or ""))
        if targets:
            parts = iter([target_tile(tile, targets, source=source, tile_order=tile_order, window_order=window_order,
                                      normalisation=normalisation)])
        else:
            parts = scan_tile(tile, source=source, tile_order=tile_order, window_order=window_order, region=region,
                              normalisation=normalisation, max_rows=max_rows, buffer=buffer)
    except HaloSurveyError as exc:
        message = str(exc) if f"{tile_order}/{tile}" in str(exc) else f"tile {tile_order}/{tile}: {exc}"
        logger.warning("%s", message)
        parts = iter([failed_rows(tile, message)])
    for rows in parts:
        rows["tile_seconds"] = np.full(rows["tile"].size, time.perf_counter() - start, np.float64)
        yield rows


def preprocess_tile(item: Mapping, **kwargs) -> dict:
    """All rows of one work item at once (``preprocess_parts`` in one part)."""
    (rows,) = preprocess_parts(item, **kwargs)
    return rows


def preprocess_batch(batch: Mapping[str, np.ndarray], **kwargs) -> Iterator[dict[str, np.ndarray]]:
    """``map_batches`` function: the rows of each tile in ``batch``, one output block per tile.

    A block per tile lets a ``TileWriter`` take whole tiles; several tiles per task divide
    Ray Data's per-task cost on the driver. Each tile's rows go out as they are, never
    concatenated: that would copy 64 MiB of cut-outs a tile for nothing (7 % of a
    preprocessing worker's CPU in a py-spy profile).
    """
    for tile, targets in zip(batch["tile"], batch["targets"]):
        yield preprocess_tile({"tile": tile, "targets": targets}, **kwargs)


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------


def ragged_images(kept: np.ndarray, keep: np.ndarray) -> pa.ListArray:
    """The flattened ``kept`` cut-outs (one per True of ``keep``), null elsewhere: only kept pixels cross to the driver."""
    per_row = int(np.prod(kept.shape[1:]))
    offsets = np.concatenate([[0], np.cumsum(keep.astype(np.int64) * per_row)]).astype(np.int32)
    values = np.ascontiguousarray(kept, dtype=np.float32).reshape(-1)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=pa.array(~keep))


def node_address() -> str:
    """The IP address of the Ray node this process runs on (the host name outside Ray), for the manifest."""
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # no Ray, or no network interface Ray recognises: still name the machine
        return socket.gethostname()


class Predictor:
    """Halo probabilities for batches of window rows: one ONNX Runtime session per Ray actor.

    Parameters
    ----------
    model_path : str or Path
        ``NAME.onnx`` with its card beside it; loaded once, in ``__init__``.
    input_normalisation : Normalisation
        What the rows' ``image`` column (band planes, (N, 4, 64, 64)) was normalised with
        (``preprocess_batch``); it must be the card's, else ModelCardError: a model fed
        another scaling scores garbage.
    providers : {"auto", "cpu", "cuda"}
        ONNX Runtime provider choice (``survey.model.infer.requested_providers``).
    intra_op_threads : int, optional
        ONNX Runtime threads per session.
    keep_above : float or None
        Rows scoring at least this keep their cut-out (``image`` list column, mapped back to
        clipped Jy/beam); None keeps none.
    rows_above : float or None
        Return only the rows scoring at least this (and failed tiles' rows), plus one row
        per tile of the batch standing for the others (``keep_detections``); None returns
        every row.
    batch_size : int, optional
        Windows per ONNX Runtime call when a batch holds more (split stages hand an actor
        a tile's windows at once, so that Ray Data schedules fewer tasks); None: the whole batch.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        input_normalisation: Normalisation,
        providers: ProviderChoice = "auto",
        intra_op_threads: int | None = None,
        keep_above: float | None = None,
        rows_above: float | None = None,
        batch_size: int | None = None,
    ):
        self.classifier = OnnxClassifier(model_path, providers=providers, intra_op_threads=intra_op_threads)
        self.rows_above = rows_above
        self.batch_size = batch_size
        if input_normalisation.id != self.classifier.normalisation.id:
            raise ModelCardError(
                f"{model_path}: the windows were normalised with {input_normalisation} but the model's card "
                f"says {self.classifier.normalisation}; preprocess with the card of the model that scores them"
            )
        self.keep_above = keep_above
        self.node = node_address()
        logger.info("inference actor: %s on %s at %s", Path(model_path).name, self.classifier.provider, self.node)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> pa.Table:
        """Score ``batch`` (a dict of numpy columns, as ``ds.take_batch()`` gives); returns a pyarrow table."""
        return self.to_driver(self.score(batch))

    def to_driver(self, table: pa.Table) -> pa.Table:
        """What of scored rows travels to the driver: all of them, or with ``rows_above`` only ``keep_detections``."""
        return table if self.rows_above is None else keep_detections(table, threshold=self.rows_above)

    def score(self, batch: Mapping[str, np.ndarray]) -> pa.Table:
        """Every row of ``batch`` scored, with the kept cut-outs: what ``__call__`` returns before ``rows_above``."""
        images = np.asarray(batch[IMAGE_COLUMN], dtype=np.float32)
        valid = np.asarray(batch["error"]).astype(str) == ""
        scores = np.zeros(len(valid), np.float32)
        if valid.any():
            # No copies: a batch of 256 windows is 16 MiB, already the model's input.
            scores[valid] = self._predict(images if valid.all() else images[valid])
        keep = valid & (scores >= self.keep_above) if self.keep_above is not None else np.zeros(len(valid), bool)
        columns = {name: _arrow(values) for name, values in batch.items() if name != IMAGE_COLUMN}
        columns["score"] = pa.array(scores)
        columns["provider"] = pa.array([self.classifier.provider] * len(valid), type=pa.string())
        columns["node"] = pa.array([self.node] * len(valid), type=pa.string())
        noise = np.stack([np.asarray(batch[name], np.float32) for name in NOISE_COLUMNS], axis=1)[keep]
        kept = self.classifier.normalisation.invert(images[keep], noise=noise[:, :, None, None])
        columns[IMAGE_COLUMN] = ragged_images(channels_last(kept), keep)  # the catalogue stores (64, 64, 4)
        return pa.table(columns)

    def _predict(self, images: np.ndarray) -> np.ndarray:
        """Halo probabilities of ``images``, ``batch_size`` windows per ONNX Runtime call."""
        step = self.batch_size or len(images)
        if len(images) <= step:
            return self.classifier.predict(images)
        return np.concatenate([self.classifier.predict(images[i:i + step]) for i in range(0, len(images), step)])


class TileWriter(Predictor):
    """A split-stage inference actor that writes each tile it receives whole, as fused actors do.

    Split stages hand an actor one preprocessed tile per Ray Data task (a tile's rows are one
    block, and the actor takes whole blocks), so it can write the tile itself and send the
    driver one ``TileSummary`` row instead of its rows: the driver then handles tiles, not
    windows, with GPUs too. A tile whose rows come split over blocks (Ray Data splits blocks
    above its target size, e.g. at a larger window order) cannot be written here; its rows
    go to the driver as a ``Predictor``'s would, and the driver writes it.

    Parameters
    ----------
    sink : TileSink
        The run's catalogues.
    **predictor
        Keyword arguments of ``Predictor`` (``rows_above`` applies to the rows of split tiles).
    """

    def __init__(self, *, sink: TileSink, **predictor):
        super().__init__(**predictor)
        self.sink = sink

    def __call__(self, batch: Mapping[str, np.ndarray]) -> Iterator[pa.Table]:
        """The summaries of the tiles ``batch`` holds whole (written), then the rows of any other tile."""
        whole, partial = whole_tiles(self.score(batch))
        if whole:
            yield pa.concat_tables([self.sink.finish(rows, mark_done=False).to_table() for rows in whole])
        if partial.num_rows:
            yield self.to_driver(partial)


def whole_tiles(table: pa.Table) -> tuple[list[pa.Table], pa.Table]:
    """Split scored rows into the tiles they hold all of (``tile_rows`` rows each) and the rows of other tiles.

    Parameters
    ----------
    table : pyarrow.Table
        Scored rows with ``tile`` and ``tile_rows`` columns.

    Returns
    -------
    whole : list of pyarrow.Table
        One table per complete tile, in order of first appearance.
    partial : pyarrow.Table
        The remaining rows (possibly none), in their order.
    """
    tiles = table.column("tile").to_numpy()
    announced = table.column("tile_rows").to_numpy()
    _, first, inverse, counts = np.unique(tiles, return_index=True, return_inverse=True, return_counts=True)
    complete = counts == announced[first]
    whole = [table.filter(pa.array(tiles == tiles[i])) for i in np.sort(first[complete])]
    return whole, table.filter(pa.array(~complete[inverse]))


def keep_detections(table: pa.Table, *, threshold: float) -> pa.Table:
    """The detections and failed-tile rows of scored ``table``, and one row per tile standing for its other windows.

    A scan writes only its detections, so with split stages the rows below the threshold
    need not travel to the driver; it only has to count them to know when a tile is
    complete. Each tile's first row below the threshold stays, with ``STANDS_FOR_COLUMN``
    set to the number of the tile's rows it replaces (every kept row has 1). It scores
    below the threshold, so nothing writes it as a detection.
    """
    scores = table.column("score").to_numpy()
    # Compared in Arrow: a Python string per window (to_pylist) cost more than the rest of this function.
    failed = pc.fill_null(pc.not_equal(table.column("error"), ""), True).to_numpy()
    keep = failed | detections(scores, threshold=threshold)
    tiles = table.column("tile").to_numpy()
    stands_for = keep.astype(np.int64)
    dropped = np.flatnonzero(~keep)
    if dropped.size:
        first_of_tile, counts = np.unique(tiles[dropped], return_index=True, return_counts=True)[1:]
        stand_ins = dropped[first_of_tile]
        stands_for[stand_ins] = counts
        keep[stand_ins] = True
    table = table.append_column(STANDS_FOR_COLUMN, pa.array(stands_for))
    return table.filter(pa.array(keep))


class TileScorer:
    """Both stages in one actor: read, preprocess and score whole tiles (the fused layout).

    On CPUs, inference and preprocessing share the same cores, so a separate preprocessing
    stage only adds work: every window's 64 KiB of cut-outs is serialised into Ray's object
    store and read back by an actor, and the queue between the stages holds cut-outs of
    several tiles. Here cut-outs never leave the process that cut them: a tile's field is
    read once and its windows cut ``batch_size`` at a time, each part scored before the
    next is cut, so an actor holds one field and one batch of cut-outs whatever the tile's
    size, and only the scored rows go out.

    Parameters
    ----------
    preprocess : dict
        Keyword arguments of ``preprocess_parts`` (source, orders, region, normalisation).
    predictor : dict
        Keyword arguments of ``Predictor``.
    batch_size : int
        Windows per ONNX Runtime call.
    sink : TileSink, optional
        The run's catalogues: each finished tile's rows are written here, by this actor,
        and only its ``TileSummary`` row is returned; the driver marks the tile done when
        it counts it. Without it the scored rows are returned.
    """

    def __init__(self, *, preprocess: Mapping, predictor: Mapping, batch_size: int, sink: TileSink | None = None):
        self.preprocess = dict(preprocess)
        self.predictor = Predictor(**predictor)
        self.batch_size = int(batch_size)
        self.sink = sink
        self.buffer = batch_buffer(self.batch_size)  # every part is cut into it: no fresh pages per batch

    def __call__(self, batch: Mapping[str, np.ndarray]) -> pa.Table:
        """Scored rows (or, with a sink, summary rows) of every tile in ``batch`` (work items, normally one).

        ``tile_seconds`` is the tile's whole time here: read, preprocess and score. A work
        item's ``rows`` (the plan's window count, -1 if unknown) is checked before writing.
        """
        tables = []
        expected = batch.get("rows", np.full(len(batch["tile"]), -1))
        for tile, targets, rows in zip(batch["tile"], batch["targets"], expected):
            table = self.score_tile(tile, targets)
            if self.sink is not None:
                table = self.sink.finish(table, expected=int(rows), mark_done=False).to_table()
            tables.append(table)
        return pa.concat_tables(tables)

    def score_tile(self, tile: int, targets: str) -> pa.Table:
        """Every scored row of one work item."""
        start = time.perf_counter()
        parts = preprocess_parts({"tile": tile, "targets": targets}, max_rows=self.batch_size, buffer=self.buffer,
                                 **self.preprocess)
        table = pa.concat_tables([self.predictor(rows) for rows in parts])
        seconds = pa.array(np.full(table.num_rows, time.perf_counter() - start))
        return table.set_column(table.schema.get_field_index("tile_seconds"), "tile_seconds", seconds)


def _arrow(values: np.ndarray) -> pa.Array:
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        return pa.array(values.astype(str).tolist(), type=pa.string())
    return pa.array(values)
