"""What a run will do: its image source, its tiles and targets, and the provenance its catalogues record.

``plan_scan`` gives every non-empty tile of the region with its window count, ``plan_targets``
one target per catalogued position inside the region and inside the source's images.
Work items (``work_items``) are the rows Ray Data starts from: one per tile, with the
tile's targets as a JSON payload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from survey.catalogs.load import load_catalog
from survey.catalogs.readers import is_positions_file, read_positions
from survey.defaults import IMAGES_CATALOG
from survey.images.base import ImageSource
from survey.model.modelcard import ModelCard
from survey.output.store import package_version
from survey.run.arguments import SurveyArguments
from survey.sky import healpix
from survey.sky.tiling import plan

# --------------------------------------------------------------------------------------
# Targets and work items
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One catalogued position to score (``halo-survey targets``).

    Attributes
    ----------
    name : str
        The catalogue's designation (any characters; never used in a path).
    catalog : str
        The catalogue key it came from.
    ra_deg, dec_deg : float
        Position (ICRS, degrees).
    """

    name: str
    catalog: str
    ra_deg: float
    dec_deg: float


def work_items(tiles: Sequence[int], targets: Mapping[int, Sequence[Target]] | None = None,
               rows_per_tile: Mapping[int, int] | None = None) -> list[dict]:
    """One Ray Data input row per tile: ``{"tile": id, "targets": JSON list ("" for a blind scan), "rows": n}``.

    ``rows`` is the number of windows (or targets) the plan expects of the tile, -1 when
    not given: whoever writes the tile checks it first.

    Parameters
    ----------
    tiles : sequence of int
        The tiles to do, in order.
    targets : mapping of int to sequence of Target, optional
        Each tile's targets (targets mode).
    rows_per_tile : mapping of int to int, optional
        Windows or targets the plan expects of each tile.

    Returns
    -------
    list of dict
        One item per tile, for ``ray.data.from_items``.
    """
    items = []
    for tile in tiles:
        chosen = (targets or {}).get(int(tile))
        payload = json.dumps([t.__dict__ for t in chosen]) if chosen else ""
        items.append({"tile": int(tile), "targets": payload, "rows": int((rows_per_tile or {}).get(int(tile), -1))})
    return items


def targets_of(payload: str) -> list[Target]:
    """The targets of a work item's ``targets`` payload (``work_items``); none for a blind scan."""
    return [Target(**entry) for entry in json.loads(payload)] if payload else []


# --------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------


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


def plan_work(args: SurveyArguments, source: ImageSource) -> WorkPlan:
    """The plan of a scan (``plan_scan``) or of targets (``plan_targets``), as ``args.mode`` says."""
    return plan_scan(args) if args.mode == "scan" else plan_targets(args, source)


def plan_scan(args: SurveyArguments) -> WorkPlan:
    """Every non-empty tile of the region with its window count."""
    survey_plan = plan(args.region_spec, tile_order=args.tile_order, window_order=args.window_order)
    counts = {int(t): int(n) for t, n in zip(survey_plan.tiles, survey_plan.windows_per_tile)}
    return WorkPlan(survey_plan.tiles, counts, area_deg2=survey_plan.area_deg2)


def catalog_positions(name: str, *, source: ImageSource, online: bool) -> Table:
    """``name``, ``ra``, ``dec`` of one target catalogue (``images``: the source's image sets).

    Parameters
    ----------
    name : str
        A cluster catalogue key (psz2, mgcls, mcxc, cosmos), ``"images"``, or a table file of positions.
    source : ImageSource
        The run's image source; asked for its ``targets()`` when ``name`` is ``"images"``.
    online : bool
        Fetch a cluster catalogue from VizieR instead of reading the local file.

    Returns
    -------
    astropy.table.Table
        At least ``name``, ``ra`` and ``dec`` (ICRS degrees).

    Raises
    ------
    BadInputError
        ``"images"`` for a source without image sets.
    CatalogError
        Unknown catalogue, or its file is missing or unparseable.
    RemoteServiceError
        ``online`` and VizieR cannot be reached or answers badly.
    """
    if name == IMAGES_CATALOG:
        return source.targets()
    if is_positions_file(name):
        return read_positions(name)
    return load_catalog(name, online=online)


def plan_targets(args: SurveyArguments, source: ImageSource) -> WorkPlan:
    """One target per catalogued cluster inside the region (and inside the source's images, if it says).

    Image sets that ``--catalog images`` cannot place on the sky (no readable band) are
    counted as ``unreadable_images``: targets asked for and not scored.
    """
    targets: list[Target] = []
    skipped = {"outside_region": 0, "outside_images": 0}
    for name in args.target_catalogs:
        unplaced = getattr(source, "unplaced_targets", list)() if name == IMAGES_CATALOG else []
        if unplaced:
            skipped["unreadable_images"] = len(unplaced)
        table = catalog_positions(name, source=source, online=args.online)
        ra, dec = np.asarray(table["ra"], float), np.asarray(table["dec"], float)
        keep = args.region_spec.contains(ra, dec)
        skipped["outside_region"] += int(np.count_nonzero(~keep))
        covered = source.covers(ra, dec)
        skipped["outside_images"] += int(np.count_nonzero(keep & ~covered))
        keep &= covered
        label = Path(name).name if is_positions_file(name) else name  # a file by its name, not its path
        targets += [Target(str(n), label, float(r), float(d)) for n, r, d in zip(table["name"][keep], ra[keep], dec[keep])]
    tiles = healpix.ang2pix(args.tile_order, [t.ra_deg for t in targets], [t.dec_deg for t in targets])
    by_tile: dict[int, list[Target]] = {}
    for tile, target in zip(tiles.tolist(), targets):
        by_tile.setdefault(int(tile), []).append(target)
    counts = {tile: len(items) for tile, items in by_tile.items()}
    return WorkPlan(np.array(sorted(by_tile), np.int64), counts, by_tile, targets_skipped=skipped)


def run_provenance(args: SurveyArguments, card: ModelCard, source: ImageSource) -> dict[str, object]:
    """What every catalogue of the run records, and what a resumed run must match (all but ``run_id``).

    Parameters
    ----------
    args : SurveyArguments
        The run: mode, source, region, window order, threshold, catalogues, run id.
    card : ModelCard
        The model's card: name, sha256, and the threshold when ``args.threshold`` is None.
    source : ImageSource
        The image source, whose ``describe()`` is recorded.

    Returns
    -------
    dict of str to object
        JSON-ready provenance, including this package's version.
    """
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
