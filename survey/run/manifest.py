"""The run manifest: what a survey run set out to do, what it finished, what failed and why.

``<output>/manifest.json`` is rewritten (atomically: temporary file, then rename) when the
run starts, every few seconds while tiles finish, and at the end. It is a report for people
and tools, not the restart state: which tiles are finished is decided by the catalogue
writers' done markers (``survey.output.store``), so a run killed between two manifest updates
still resumes exactly. A failed tile is listed with the error message that names the tile
and the file or service at fault; it has no done marker, so ``--resume`` tries it again.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from upath import UPath

from survey.exceptions import BadInputError
from survey.output import paths

MANIFEST_VERSION = 1

STATUSES = ("running", "complete", "partial", "interrupted")
"""``partial``: finished, but some tiles failed (see ``failed``); ``interrupted``: stopped by an error."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class TileFailure:
    """A tile the run could not process.

    Attributes
    ----------
    tile : int
        NESTED index at the run's tile order.
    error : str
        The message, naming the tile and the file, band or service at fault.
    """

    tile: int
    error: str


@dataclass
class RunManifest:
    """Everything ``manifest.json`` records about one run (and the runs it resumed).

    Attributes
    ----------
    run_id : str
        This run's identifier.
    run_ids : list of str
        Every run that worked on this output, oldest first (a resume appends one).
    mode : str
        ``scan`` or ``targets``.
    status : str
        One of ``STATUSES``.
    arguments : dict
        The run's ``SurveyArguments``, as strings.
    provenance : dict
        Model name and sha256, image source, region, code version, threshold (as in the catalogues).
    tiles_planned : int
        Tiles of the whole run.
    tiles_done_before : int
        Tiles an earlier, interrupted run had finished (skipped by this one).
    tiles_done : int
        Tiles finished by this run.
    failed : list of TileFailure
        Tiles that failed in this run.
    windows : int
        Windows scored by this run.
    candidates : int or None
        Rows of the candidate catalogue, once written.
    targets_skipped : dict
        Targets of the chosen catalogues that were not scored (``targets`` mode), by reason:
        ``outside_region`` (e.g. in the Galactic plane for ``gleam``), ``outside_images``
        (a ``fits:DIR`` source has no image there) and ``unreadable_images`` (``--catalog
        images``: image sets with no readable band, which nothing places on the sky; they
        make the run ``partial``).
    source_problems : list of str
        What the image source found unusable before reading any field (files that fit no
        image set, image sets with a band missing, truncated, not FITS or without WCS),
        one line each naming the files, whether or not a tile of this run needed them.
    nodes : dict
        The tiles this run finished on each Ray node, by the node's IP address: where the
        inference actor that scored the tile ran.
    timings : dict
        Seconds per phase (``plan``, ``pipeline``, ``finish``, ``total``), plus
        ``windows_per_s`` and the time per tile (``tile_mean``, ``tile_max``): read and
        preprocess, and with fused stages score too.
    started, updated : str
        ISO 8601 UTC times.
    """

    run_id: str
    mode: str
    arguments: dict[str, str]
    provenance: dict[str, Any]
    tiles_planned: int
    run_ids: list[str] = field(default_factory=list)
    status: str = "running"
    tiles_done_before: int = 0
    tiles_done: int = 0
    failed: list[TileFailure] = field(default_factory=list)
    windows: int = 0
    candidates: int | None = None
    targets_skipped: dict[str, int] = field(default_factory=dict)
    source_problems: list[str] = field(default_factory=list)
    nodes: dict[str, list[int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    started: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    manifest_version: int = MANIFEST_VERSION

    def record_tile(self, tile: int, *, windows: int, node: str) -> None:
        """Count one finished tile and its windows, and the node that scored it.

        Parameters
        ----------
        tile : int
            NESTED index of the tile at the run's tile order.
        windows : int
            Rows the tile delivered (windows or targets scored).
        node : str
            IP address (or host name) of the node whose actor scored it.
        """
        self.tiles_done += 1
        self.windows += windows
        self.nodes.setdefault(node, []).append(int(tile))

    def record_failure(self, tile: int, error: str) -> None:
        """Add a failed tile with its message."""
        self.failed.append(TileFailure(int(tile), error))

    def to_json(self) -> str:
        """Indented JSON text."""
        self.updated = _now()
        data = asdict(self)
        data["nodes"] = {node: sorted(tiles) for node, tiles in sorted(self.nodes.items())}
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunManifest:
        """Parse ``to_json`` output."""
        data = json.loads(text)
        data["failed"] = [TileFailure(**f) for f in data.get("failed", [])]
        return cls(**data)


def write_manifest(manifest: RunManifest, output: paths.PathLike) -> UPath:
    """Write the manifest atomically (a reader never sees half a file)."""
    target = paths.manifest_file(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = paths.temp_sibling(target, token=secrets.randbits(62))
    temp.write_text(manifest.to_json())
    temp.fs.mv(temp.path, target.path)
    return target


def read_manifest(output: paths.PathLike) -> RunManifest | None:
    """The manifest in ``output``, or None if there is none.

    Raises
    ------
    BadInputError
        The file is not a manifest of this package (damaged, cut short, edited by hand).
    """
    target = paths.manifest_file(output)
    if not target.exists():
        return None
    try:
        return RunManifest.from_json(target.read_text())
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInputError(str(target), f"is not a halo-survey run manifest ({type(exc).__name__}: {exc}); "
                            "restore it, or pass --overwrite to redo the run") from exc


class ManifestWriter:
    """Rewrites the manifest at most every ``interval_s`` seconds while tiles finish, and on demand.

    Parameters
    ----------
    manifest : RunManifest
        The manifest to keep on disk; the caller updates it in place.
    output : str, Path or UPath
        The run's output directory (``manifest.json`` goes there).
    interval_s : float
        Least seconds between two unforced writes; the first save always writes.
    """

    def __init__(self, manifest: RunManifest, output: paths.PathLike, *, interval_s: float = 5.0):
        self.manifest = manifest
        self.output = output
        self.interval_s = interval_s
        self._last: float | None = None  # the first save always writes

    def save(self, *, force: bool = False) -> None:
        """Write now if forced or if ``interval_s`` has passed since the last write."""
        now = time.monotonic()
        if force or self._last is None or now - self._last >= self.interval_s:
            write_manifest(self.manifest, self.output)
            self._last = now
