"""Run parameters of a survey (``halo-survey scan`` / ``targets``), validated before any compute.

After hats-import's ``arguments.py``: one dataclass, a docstring on each attribute, and a
``__post_init__`` that rejects every bad value (a region that does not parse, orders out of
range, a model file that is not there, ``resume`` together with ``overwrite``) with a message
naming the value and the fix, before Ray starts or a single tile is read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from survey.defaults import (
    CATALOG_NAMES,
    DEFAULT_MATCH_RADIUS_ARCMIN,
    DEFAULT_MODEL,
    DEFAULT_OUTPUT,
    DEFAULT_TILE_ORDER,
    DEFAULT_WINDOW_ORDER,
    DEMO_REGION,
    IMAGES_CATALOG,
    PROVIDERS,
    STAGE_LAYOUTS,
    TARGET_CATALOGS,
)
from survey.exceptions import BadInputError, ModelCardError
from survey.sky import healpix
from survey.sky.tiling import MAX_ORDER_GAP, Region, parse_region

Mode = Literal["scan", "targets"]

SOURCE_KINDS = ("mock", "skyview", "fits")
"""Image sources: ``mock[:SEED]``, ``skyview``, ``fits:DIR``."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value.

    Attributes
    ----------
    kind : {"mock", "skyview", "fits"}
        Which ImageSource to build.
    seed : int
        Seed of the mock sky (``mock:SEED``; 0 when not given).
    directory : Path or None
        The directory of a ``fits:DIR`` source.
    """

    kind: str
    seed: int = 0
    directory: Path | None = None

    @property
    def text(self) -> str:
        """The spec written back as a ``--source`` value (provenance, manifests)."""
        if self.kind == "fits":
            return f"fits:{self.directory}"
        return f"mock:{self.seed}" if self.kind == "mock" else self.kind


def parse_source(text: str) -> SourceSpec:
    """Parse ``--source``: ``mock``, ``mock:SEED``, ``skyview`` or ``fits:DIR``.

    Only the first ``:`` separates the kind, so directories may contain colons and spaces.

    >>> parse_source("mock:7").seed, parse_source("skyview").kind, parse_source("fits:/").directory.as_posix()
    (7, 'skyview', '/')
    """
    kind, _, value = text.strip().partition(":")
    kind = kind.lower()
    where = f"--source {text!r}"
    if kind == "mock":
        try:
            return SourceSpec("mock", seed=int(value) if value else 0)
        except ValueError:
            raise BadInputError(where, "the mock sky takes an integer seed: mock or mock:SEED") from None
    if kind == "skyview" and not value:
        return SourceSpec("skyview")
    if kind == "fits" and value:
        directory = Path(value).expanduser()
        if not directory.is_dir():
            raise BadInputError(where, f"directory {directory} does not exist; give fits:DIR with the FITS files")
        return SourceSpec("fits", directory=directory)
    raise BadInputError(where, "unknown image source; use mock, mock:SEED, skyview or fits:DIR")


def new_run_id() -> str:
    """A sortable, unique run identifier: UTC time plus random bits (``20250101T120000Z-3f2a9c``)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _names(values: str | tuple[str, ...] | list[str], *, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma-separated string or a sequence of names, lower-cased and checked against ``allowed``."""
    items = values.split(",") if isinstance(values, str) else list(values)
    names = tuple(dict.fromkeys(n.strip().lower() for n in items if n.strip()))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise BadInputError(option, f"unknown name(s) {unknown}; choose from {', '.join(allowed)}")
    return names


@dataclass
class SurveyArguments:
    """Everything one survey run needs; validated in ``__post_init__``.

    Strings given for ``region``, ``source``, ``catalogs`` and ``match_catalogs`` are parsed
    here, so the CLI can pass its options through unchanged.
    """

    mode: Mode = "scan"
    """``"scan"``: every window of ``region``, candidates merged by non-maximum suppression.
    ``"targets"``: one window per catalogued cluster (``catalogs``) inside ``region``."""

    region: str | None = None
    """``gleam``, ``allsky``, ``cone:RA,DEC,RADIUS_DEG`` or ``tiles:ORDER:IDS`` (``survey.sky.tiling.parse_region``).
    None: ``DEMO_REGION`` for a scan, ``gleam`` (the whole footprint) for targets."""

    source: str = "mock"
    """Where the pixels come from: ``mock[:SEED]`` (synthetic sky), ``skyview`` or ``fits:DIR``."""

    model: str | Path = DEFAULT_MODEL
    """The ONNX classifier; its card ``NAME.card.json`` must lie beside it."""

    output: str | Path = DEFAULT_OUTPUT
    """Output directory (local path or fsspec URI): ``candidates/``, ``scores/``, ``manifest.json``."""

    tile_order: int = DEFAULT_TILE_ORDER
    """HEALPix order of the tiles: the units of work, of image reads and of output partitions."""

    window_order: int = DEFAULT_WINDOW_ORDER
    """HEALPix order of the window centres (cut-out positions) of a blind scan."""

    threshold: float | None = None
    """Halo probability at or above which a window is a detection; None takes the model card's."""

    catalogs: str | tuple[str, ...] = CATALOG_NAMES
    """``targets`` only: the catalogues whose clusters become targets (``images``: the image
    sets of a ``fits:DIR`` source, one target each)."""

    match_catalogs: str | tuple[str, ...] = CATALOG_NAMES
    """Cluster catalogues every candidate is cross-matched with (nearest within ``match_radius_arcmin``)."""

    match_radius_arcmin: float = DEFAULT_MATCH_RADIUS_ARCMIN
    """Cross-match radius in arcmin."""

    online: bool = False
    """Fetch the cluster catalogues from VizieR instead of the local files under ``HALO_DATA_DIR``."""

    all_scores: bool = False
    """Also write every window's score (the ``scores/`` catalogue)."""

    store_cutouts: bool = True
    """Keep each candidate's clipped four-band cut-out in the catalogue (for ``halo-survey plot``)."""

    resume: bool = False
    """Continue an interrupted run in ``output``: finished tiles are kept, the rest are done."""

    overwrite: bool = False
    """Delete an earlier run's catalogues in ``output`` first."""

    batch_size: int = 256
    """Cut-outs per ONNX Runtime call."""

    concurrency: int | None = None
    """Inference actors (each loads its own ONNX Runtime session). None: one per CPU of the Ray
    cluster when the stages are fused on CPUs (each actor then reads and preprocesses its own
    tiles), else one."""

    stages: str = "auto"
    """``fused``: each inference actor reads, preprocesses and scores whole tiles
    (``survey.run.stages.TileScorer``). ``split``: tiles are read and preprocessed in tasks on
    any free CPU and their cut-outs scored by separate actors. ``auto``: split when the
    actors infer on GPUs (the CPUs must preprocess while the GPUs infer) or the source is
    SkyView (reads wait on the network), fused otherwise."""

    num_gpus: float = 0.0
    """GPUs reserved per inference actor (0: CPU only; ONNX Runtime picks CUDA when it runs)."""

    read_concurrency: int | None = None
    """Split stages only: most tiles read and preprocessed at once; None lets Ray Data decide from free CPUs."""

    providers: str = "auto"
    """ONNX Runtime execution provider: ``auto`` (CUDA when it really runs), ``cpu`` or ``cuda``."""

    intra_op_threads: int | None = None
    """Threads one ONNX Runtime session may use. None: one per CPU actor (``pipeline.CPU_ACTOR_THREADS``,
    so inference does not spin against preprocessing), ONNX Runtime's default on a GPU."""

    progress: bool = True
    """Show a progress bar (tqdm) over tiles."""

    run_id: str = field(default_factory=new_run_id)
    """Identifier stamped on every row and in the provenance; a resumed run gets a new one."""

    def __post_init__(self) -> None:
        if self.mode not in ("scan", "targets"):
            raise BadInputError("mode", f"{self.mode!r} is not 'scan' or 'targets'")
        if self.region is None:
            self.region = DEMO_REGION if self.mode == "scan" else "gleam"
        self.region_spec: Region = parse_region(self.region)
        self.source_spec: SourceSpec = parse_source(self.source)
        self.model = Path(self.model).expanduser()
        self.catalogs = _names(self.catalogs, allowed=TARGET_CATALOGS, option="--catalog")
        self.match_catalogs = _names(self.match_catalogs, allowed=CATALOG_NAMES, option="--match-catalogs")
        self._check_orders()
        self._check_numbers()
        self._check_combinations()

    def _check_orders(self) -> None:
        where = f"--tile-order {self.tile_order} / --window-order {self.window_order}"
        if not 0 <= self.tile_order <= self.window_order <= healpix.MAX_ORDER:
            raise BadInputError(where, f"need 0 <= tile order <= window order <= {healpix.MAX_ORDER}")
        if self.window_order - self.tile_order > MAX_ORDER_GAP:
            raise BadInputError(where, f"more than 4**{MAX_ORDER_GAP} windows per tile; raise the tile order")

    def _check_numbers(self) -> None:
        checks = {
            "threshold": (self.threshold is None or 0.0 < self.threshold < 1.0, "must lie strictly between 0 and 1"),
            "match_radius_arcmin": (0.0 < self.match_radius_arcmin <= 600.0, "must be in (0, 600] arcmin"),
            "batch_size": (self.batch_size >= 1, "must be at least 1"),
            "concurrency": (self.concurrency is None or self.concurrency >= 1, "must be at least 1 actor"),
            "stages": (self.stages in STAGE_LAYOUTS, f"must be one of {', '.join(STAGE_LAYOUTS)}"),
            "num_gpus": (self.num_gpus >= 0, "must be >= 0"),
            "read_concurrency": (self.read_concurrency is None or self.read_concurrency >= 1, "must be >= 1 or None"),
            "intra_op_threads": (self.intra_op_threads is None or self.intra_op_threads >= 1, "must be >= 1 or None"),
            "providers": (self.providers in PROVIDERS, f"must be one of {', '.join(PROVIDERS)}"),
        }
        for name, (ok, problem) in checks.items():
            if not ok:
                raise BadInputError(name, f"{getattr(self, name)!r} {problem}")

    def _check_combinations(self) -> None:
        if self.resume and self.overwrite:
            raise BadInputError(
                "--resume/--overwrite", "resume continues the run in the output directory, overwrite deletes it; pass one"
            )
        if self.read_concurrency is not None and self.fused_stages:
            raise BadInputError(
                "--read-concurrency", "sizes the reading tasks of split stages, but these stages are fused (each "
                "inference actor reads its own tiles): set --concurrency, or pass --stages split"
            )
        if not self.model.is_file():
            raise ModelCardError(
                f"model file {self.model} not found; pass --model PATH to an exported classifier "
                "(NAME.onnx with NAME.card.json beside it), or export one with `halo-train export`"
            )
        if self.mode == "targets" and not self.catalogs:
            raise BadInputError("--catalog", f"targets needs at least one catalogue ({', '.join(TARGET_CATALOGS)})")
        if IMAGES_CATALOG in self.catalogs and self.source_spec.kind != "fits":
            raise BadInputError(
                "--catalog images", "the 'images' targets are the image sets of a fits:DIR source; pass --source fits:DIR"
            )

    @property
    def fused_stages(self) -> bool:
        """Whether the inference actors also read and preprocess (``stages``, with ``auto`` resolved)."""
        if self.stages != "auto":
            return self.stages == "fused"
        return not self.num_gpus and self.source_spec.kind != "skyview"

    @property
    def target_catalogs(self) -> tuple[str, ...]:
        """The catalogues giving targets (empty for a blind scan)."""
        return self.catalogs if self.mode == "targets" else ()
