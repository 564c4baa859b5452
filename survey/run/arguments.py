"""Run parameters of a survey (``halo-survey scan`` / ``targets``), defined once and validated before any compute.

After hats-import's ``arguments.py``: one dataclass, a docstring on each attribute, and a
``__post_init__`` that rejects every bad value (a region that does not parse, orders out of
range, a model file that is not there, ``resume`` together with ``overwrite``) with a message
naming the value and the fix, before Ray starts or a single tile is read.

Each option is written once, as a field: its metadata (``Option``: flag, help, group)
builds the command line (``add_run_options``), ``from_cli`` maps the parsed flags back, and
``record`` is what the run manifest stores. The module imports nothing heavy at the top
(``halo-survey --help`` builds its parsers from it); validation imports the sky modules it
needs when it runs.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
    TARGET_TABLE_SUFFIXES,
    TILE_WRITERS,
)
from survey.exceptions import BadInputError, ModelCardError
from survey.images.spec import SourceSpec, parse_source

if TYPE_CHECKING:
    from survey.sky.tiling import Region

Mode = Literal["scan", "targets"]

MODES = ("scan", "targets")
"""``scan``: every window of a region; ``targets``: one window per catalogued position."""

CPU_BATCH = 64
"""Default cut-outs per ONNX Runtime call on CPUs: one thread ran the shipped CNN at 142 CPU us per
window in batches of 64 against 163 in batches of 256 (``bench/bench_onnx.py``, BENCHMARKS.md): a
batch's activations stay in the core's cache."""

GPU_BATCH = 256
"""Default cut-outs per call on a GPU, where larger batches keep the device busy (not measured here: no GPU)."""


def default_batch(*, num_gpus: float) -> int:
    """Cut-outs per ONNX Runtime call when ``--batch-size`` is not given: ``GPU_BATCH`` with GPUs, else ``CPU_BATCH``."""
    return GPU_BATCH if num_gpus else CPU_BATCH


GROUPS = ("what to scan", "output", "execution")
"""The command line's option groups, in the order ``--help`` shows them."""


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


def _target_catalogs(values: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--catalog`` entries: catalogue names (checked, lower-cased) and table files of positions (kept, must exist)."""
    items = values.split(",") if isinstance(values, str) else list(values)
    items = [str(item).strip() for item in items if str(item).strip()]
    files = [item for item in items if Path(item).suffix.lower() in TARGET_TABLE_SUFFIXES]
    missing = [item for item in files if not Path(item).expanduser().is_file()]
    if missing:
        raise BadInputError("--catalog", f"no such table file: {', '.join(missing)}")
    names = _names([item for item in items if item not in files], allowed=TARGET_CATALOGS, option="--catalog")
    return tuple(dict.fromkeys([*names, *(str(Path(f).expanduser()) for f in files)]))


@dataclass(frozen=True)
class Option:
    """How one run parameter appears on the command line.

    Attributes
    ----------
    flags : tuple of str
        ``("--tile-order",)``; the first long flag is also the argparse ``dest`` source.
    help : str
        One line for ``--help``.
    group : str
        One of ``GROUPS``.
    type : callable or None
        argparse ``type`` (None for a switch).
    negate : bool
        A switch that sets the field to False (``--no-cutouts`` for ``store_cutouts``).
    choices : tuple or None
        Allowed values, shown by ``--help``.
    modes : tuple of str
        The sub-commands that take it (``--catalog`` is for ``targets`` only).
    """

    flags: tuple[str, ...]
    help: str
    group: str
    type: Callable[[str], Any] | None = str
    negate: bool = False
    choices: tuple[Any, ...] | None = None
    modes: tuple[str, ...] = MODES

    @property
    def dest(self) -> str:
        """The argparse attribute name of the option."""
        return self.flags[-1].lstrip("-").replace("-", "_")


def option(default: Any = None, *, flag: str | tuple[str, ...], help: str, group: str, record: bool = True,
           default_factory: Callable[[], Any] | None = None, **cli: Any) -> Any:
    """A dataclass field that is also a command-line option (``Option``) and, if ``record``, a manifest entry.

    Parameters
    ----------
    default : object
        The field's default (when ``default_factory`` is None).
    flag : str or tuple of str
        The option's flags (``"--region"`` or ``("-o", "--output")``); the last gives the
        argparse ``dest``.
    help : str
        One line for ``--help``.
    group : str
        The ``--help`` section, one of ``GROUPS``.
    record : bool
        Store the value in the run manifest's ``arguments`` (False for ``--resume``,
        ``--overwrite`` and other switches that do not change the result).
    default_factory : callable, optional
        Makes the default instead of ``default`` (for mutable values).
    **cli
        The other ``Option`` attributes: ``type``, ``negate``, ``choices``, ``modes``.

    Returns
    -------
    dataclasses.Field
        The field, with ``Option`` under ``metadata["cli"]`` and ``metadata["record"]``.
    """
    flags = (flag,) if isinstance(flag, str) else tuple(flag)
    metadata = {"cli": Option(flags, help, group, **cli), "record": record}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def setting(default: Any = None, *, record: bool = True, default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with no command-line flag (``mode``, ``run_id``).

    Parameters
    ----------
    default : object
        The field's default (when ``default_factory`` is None).
    record : bool
        Store the value in the run manifest's ``arguments``.
    default_factory : callable, optional
        Makes the default instead of ``default``.

    Returns
    -------
    dataclasses.Field
        The field, with ``metadata["record"]``.
    """
    if default_factory is not None:
        return field(default_factory=default_factory, metadata={"record": record})
    return field(default=default, metadata={"record": record})


@dataclass
class SurveyArguments:
    """Everything one survey run needs; validated in ``__post_init__``.

    Strings given for ``region``, ``source``, ``catalogs`` and ``match_catalogs`` are parsed
    here, so the CLI can pass its options through unchanged.
    """

    mode: Mode = setting("scan")
    """``"scan"``: every window of ``region``, candidates merged by non-maximum suppression.
    ``"targets"``: one window per catalogued cluster (``catalogs``) inside ``region``."""

    region: str | None = option(None, flag="--region", group="what to scan",
                                help="gleam | allsky | cone:RA,DEC,RADIUS_DEG | tiles:ORDER:IDS "
                                f"(default: {DEMO_REGION} for scan, gleam for targets)")
    """``gleam``, ``allsky``, ``cone:RA,DEC,RADIUS_DEG`` or ``tiles:ORDER:IDS`` (``survey.sky.tiling.parse_region``).
    None: ``DEMO_REGION`` for a scan, ``gleam`` (the whole footprint) for targets."""

    source: str = option("mock", flag="--source", group="what to scan",
                         help="image source: mock[:SEED] (synthetic sky), skyview, or fits:DIR")
    """Where the pixels come from: ``mock[:SEED]`` (synthetic sky), ``skyview`` or ``fits:DIR``."""

    model: str | Path = option(DEFAULT_MODEL, flag="--model", group="what to scan",
                               help="ONNX classifier with NAME.card.json beside it")
    """The ONNX classifier; its card ``NAME.card.json`` must lie beside it."""

    output: str | Path = option(DEFAULT_OUTPUT, flag=("-o", "--output"), group="output",
                                help="output directory or URI (default: %(default)s)")
    """Output directory (local path or fsspec URI): ``candidates/``, ``scores/``, ``manifest.json``."""

    tile_order: int = option(DEFAULT_TILE_ORDER, flag="--tile-order", group="what to scan", type=int,
                             help="HEALPix order of the tiles (work units)")
    """HEALPix order of the tiles: the units of work, of image reads and of output partitions."""

    window_order: int = option(DEFAULT_WINDOW_ORDER, flag="--window-order", group="what to scan", type=int,
                               help="HEALPix order of the window centres")
    """HEALPix order of the window centres (cut-out positions) of a blind scan."""

    threshold: float | None = option(None, flag="--threshold", group="what to scan", type=float,
                                     help="detection threshold (default: the model card's)")
    """Halo probability at or above which a window is a detection; None takes the model card's."""

    catalogs: str | tuple[str, ...] = option(CATALOG_NAMES, flag="--catalog", group="what to scan", modes=("targets",),
                                             help=f"target catalogues, comma-separated: {', '.join(TARGET_CATALOGS)} "
                                             "(images: the image sets of a fits:DIR source), or table files "
                                             f"({', '.join(TARGET_TABLE_SUFFIXES)}) with name, ra, dec columns")
    """``targets`` only: the catalogues whose clusters become targets (``images``: the image
    sets of a ``fits:DIR`` source, one target each)."""

    match_catalogs: str | tuple[str, ...] = option(CATALOG_NAMES, flag="--match-catalogs", group="output",
                                                   help="cluster catalogues to cross-match with")
    """Cluster catalogues every candidate is cross-matched with (nearest within ``match_radius_arcmin``)."""

    match_radius_arcmin: float = option(DEFAULT_MATCH_RADIUS_ARCMIN, flag="--match-radius", group="output", type=float,
                                        help="cross-match radius, arcmin")
    """Cross-match radius in arcmin."""

    online: bool = option(False, flag="--online", group="output", type=None,
                          help="fetch the cluster catalogues from VizieR")
    """Fetch the cluster catalogues from VizieR instead of the local files under ``HALO_DATA_DIR``."""

    all_scores: bool = option(False, flag="--all-scores", group="output", type=None,
                              help="also write every window's score (scores/)")
    """Also write every window's score (the ``scores/`` catalogue)."""

    store_cutouts: bool = option(True, flag="--no-cutouts", group="output", type=None, negate=True,
                                 help="do not store candidate cut-outs (no plot gallery)")
    """Keep each candidate's clipped four-band cut-out in the catalogue (for ``halo-survey plot``)."""

    resume: bool = option(False, flag="--resume", group="output", type=None, record=False,
                          help="complete an interrupted run in --output")
    """Continue an interrupted run in ``output``: finished tiles are kept, the rest are done."""

    overwrite: bool = option(False, flag="--overwrite", group="output", type=None, record=False,
                             help="replace an earlier run in --output")
    """Delete an earlier run's catalogues in ``output`` first."""

    batch_size: int | None = option(None, flag="--batch-size", group="execution", type=int,
                                    help=f"cut-outs per ONNX Runtime call (default: {CPU_BATCH} on CPUs, "
                                    f"{GPU_BATCH} on GPUs)")
    """Cut-outs per ONNX Runtime call; None: ``CPU_BATCH`` or ``GPU_BATCH`` (``inference_batch``)."""

    concurrency: int | None = option(None, flag="--concurrency", group="execution", type=int,
                                     help="inference actors (default: one per CPU with fused stages, else one)")
    """Inference actors (each loads its own ONNX Runtime session). None: one per CPU of the Ray
    cluster when the stages are fused on CPUs (each actor then reads and preprocesses its own
    tiles), else one."""

    stages: str = option("auto", flag="--stages", group="execution", choices=STAGE_LAYOUTS,
                         help="fused: each actor reads, preprocesses and scores its tiles; split: reading tasks "
                         "feed the actors (default auto: split on GPUs or with SkyView, else fused)")
    """``fused``: each inference actor reads, preprocesses and scores whole tiles
    (``survey.run.stages.TileScorer``). ``split``: tiles are read and preprocessed in tasks on
    any free CPU and their cut-outs scored by separate actors. ``auto``: split when the
    actors infer on GPUs (the CPUs must preprocess while the GPUs infer) or the source is
    SkyView (reads wait on the network), fused otherwise."""

    num_gpus: float = option(0.0, flag="--num-gpus", group="execution", type=float,
                             help="GPUs per inference actor (default: 0)")
    """GPUs reserved per inference actor (0: CPU only; ONNX Runtime picks CUDA when it runs)."""

    read_concurrency: int | None = option(None, flag="--read-concurrency", group="execution", type=int,
                                          help="split stages: tiles read at once (default: Ray decides)")
    """Split stages only: most tiles read and preprocessed at once; None lets Ray Data decide from free CPUs."""

    tile_writes: str = option("auto", flag="--tile-writes", group="execution", choices=TILE_WRITERS,
                              help="who writes finished tiles: the inference actors, or the driver (default auto: "
                              "the actors, unless a local --output is on a multi-node cluster)")
    """``actors``: each inference actor writes the tiles it scores and sends the driver one row
    per tile (fused actors read their own tiles; split-stage actors get one tile per task);
    needs an output every node can write (an object store, or a filesystem shared by the
    nodes). ``driver``: the scored rows go to the driver, which writes the tiles. ``auto``:
    ``actors`` when the output is a URL or Ray runs on one node, else ``driver``."""

    providers: str = option("auto", flag="--providers", group="execution", choices=PROVIDERS,
                            help="ONNX Runtime provider")
    """ONNX Runtime execution provider: ``auto`` (CUDA when it really runs), ``cpu`` or ``cuda``."""

    intra_op_threads: int | None = option(None, flag="--threads", group="execution", type=int,
                                          help="ONNX Runtime threads per actor")
    """Threads one ONNX Runtime session may use. None: one per CPU actor (``pipeline.CPU_ACTOR_THREADS``,
    so inference does not spin against preprocessing), ONNX Runtime's default on a GPU."""

    progress: bool = option(True, flag="--no-progress", group="execution", type=None, negate=True, record=False,
                            help="no progress bar")
    """Show a progress bar (tqdm) over tiles."""

    run_id: str = setting(record=False, default_factory=new_run_id)
    """Identifier stamped on every row and in the provenance; a resumed run gets a new one."""

    def __post_init__(self) -> None:
        from survey.sky.tiling import parse_region

        if self.mode not in MODES:
            raise BadInputError("mode", f"{self.mode!r} is not 'scan' or 'targets'")
        if not str(self.output).strip():
            raise BadInputError("-o/--output", "is empty; give the output directory or URI "
                                f"(default {DEFAULT_OUTPUT})")
        if self.region is None:
            self.region = DEMO_REGION if self.mode == "scan" else "gleam"
        self.region_spec: Region = parse_region(self.region)
        self.source_spec: SourceSpec = parse_source(self.source)
        self.model = Path(self.model).expanduser()
        self.catalogs = _target_catalogs(self.catalogs)
        self.match_catalogs = _names(self.match_catalogs, allowed=CATALOG_NAMES, option="--match-catalogs")
        self._check_orders()
        self._check_numbers()
        self._check_combinations()

    def _check_orders(self) -> None:
        from survey.sky.healpix import MAX_ORDER
        from survey.sky.tiling import MAX_ORDER_GAP

        where = f"--tile-order {self.tile_order} / --window-order {self.window_order}"
        if not 0 <= self.tile_order <= self.window_order <= MAX_ORDER:
            raise BadInputError(where, f"need 0 <= tile order <= window order <= {MAX_ORDER}")
        if self.window_order - self.tile_order > MAX_ORDER_GAP:
            raise BadInputError(where, f"more than 4**{MAX_ORDER_GAP} windows per tile; raise the tile order")

    def _check_numbers(self) -> None:
        checks = {
            "threshold": (self.threshold is None or 0.0 < self.threshold < 1.0, "must lie strictly between 0 and 1"),
            "match_radius_arcmin": (0.0 < self.match_radius_arcmin <= 600.0, "must be in (0, 600] arcmin"),
            "batch_size": (self.batch_size is None or self.batch_size >= 1, "must be at least 1"),
            "concurrency": (self.concurrency is None or self.concurrency >= 1, "must be at least 1 actor"),
            "stages": (self.stages in STAGE_LAYOUTS, f"must be one of {', '.join(STAGE_LAYOUTS)}"),
            "num_gpus": (self.num_gpus >= 0, "must be >= 0"),
            "read_concurrency": (self.read_concurrency is None or self.read_concurrency >= 1, "must be >= 1 or None"),
            "intra_op_threads": (self.intra_op_threads is None or self.intra_op_threads >= 1, "must be >= 1 or None"),
            "providers": (self.providers in PROVIDERS, f"must be one of {', '.join(PROVIDERS)}"),
            "tile_writes": (self.tile_writes in TILE_WRITERS, f"must be one of {', '.join(TILE_WRITERS)}"),
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
    def inference_batch(self) -> int:
        """Cut-outs per ONNX Runtime call: ``batch_size``, else ``default_batch``."""
        return self.batch_size if self.batch_size is not None else default_batch(num_gpus=self.num_gpus)

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

    # -- the command line and the manifest, derived from the fields ---------------------

    @classmethod
    def from_cli(cls, namespace: argparse.Namespace, *, mode: str) -> SurveyArguments:
        """The arguments of ``halo-survey MODE`` from its parsed flags (``add_run_options``)."""
        values: dict[str, Any] = {"mode": mode}
        for name, spec in cli_options(mode):
            value = getattr(namespace, spec.dest)
            values[name] = (not value) if spec.negate else value
        return cls(**values)

    def record(self) -> dict[str, str]:
        """The run's settings as the manifest stores them; ``stages`` as it ran (``auto`` resolved)."""
        recorded = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.metadata.get("record")}
        return {**recorded, "stages": "fused" if self.fused_stages else "split", "batch_size": str(self.inference_batch)}


def cli_options(mode: str) -> Iterator[tuple[str, Option]]:
    """``(field name, Option)`` of every option ``halo-survey MODE`` takes, in field order."""
    for f in fields(SurveyArguments):
        spec = f.metadata.get("cli")
        if spec is not None and mode in spec.modes:
            yield f.name, spec


def _cli_default(value: Any) -> Any:
    """A field default as the command line spells it (catalogue tuples comma-joined, paths as text)."""
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value) if isinstance(value, Path) else value


def add_run_options(parser: argparse.ArgumentParser, *, mode: str) -> dict[str, argparse._ArgumentGroup]:
    """Add every option of ``halo-survey MODE`` to ``parser``, in ``GROUPS``; returns the groups by name.

    Defaults come from the fields, so ``--help`` shows what a run without the flag uses.
    """
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    defaults = {f.name: f.default for f in fields(SurveyArguments)}
    for name, spec in cli_options(mode):
        kwargs: dict[str, Any] = {"dest": spec.dest, "help": spec.help}
        if spec.type is None:  # a switch
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=spec.type, default=_cli_default(defaults[name]))
            if spec.choices is not None:
                kwargs["choices"] = spec.choices
        groups[spec.group].add_argument(*spec.flags, **kwargs)
    return groups

