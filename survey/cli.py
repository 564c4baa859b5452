"""`halo-survey`: the survey's command line.

Each sub-command parses its arguments and calls one library function; no logic lives here.
Building the parser imports only ``survey.defaults``: the heavy modules load when a
sub-command runs, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from survey.defaults import (
    CATALOG_FORMATS,
    CATALOG_NAMES,
    DEFAULT_TILE_ORDER,
    DEFAULT_TOP,
    DEFAULT_WINDOW_ORDER,
    DEMO_REGION,
    QUERY_FORMATS,
)
from survey.exceptions import HaloSurveyError, NoDetectionsWarning, RunInterrupted

Command = Callable[[argparse.Namespace], int]


def _inspect(args: argparse.Namespace) -> int:
    from survey.model.inspect import format_reports, inspect_directory

    reports, problems = inspect_directory(args.directory)
    print(format_reports(reports, problems))
    return 0 if reports else 1


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="one row per source in a directory of four-band GLEAM FITS sets")
    p.add_argument("directory", help="directory searched recursively for *_<band>*.fits files")
    p.set_defaults(func=_inspect)


# --------------------------------------------------------------------------------------
# scan / targets: the survey runs
# --------------------------------------------------------------------------------------


def _raise_interrupted(signum: int, frame) -> None:
    raise RunInterrupted(signum)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises ``RunInterrupted`` in the main thread, as Ctrl-C raises KeyboardInterrupt.

    A run then stops the same way for both: it records itself as interrupted, keeps its
    finished tiles and ends with one line. Outside the main thread (where Python cannot
    set handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ray_session(*, address: str | None, num_cpus: int | None, verbose: int = 0) -> Iterator[object]:
    """The package's only ``ray.init``: a local Ray (default) or ``--address`` of a running cluster.

    Yields what ``ray.init`` returns (None when a Ray is already up, which it reuses and
    leaves running, as in tests). Ray Data's own progress bars are turned off: the run
    shows one tqdm bar. An ``--address`` where nothing answers fails within
    ``survey.config.conf.connect_timeout`` seconds instead of waiting for minutes. ``ray.init``
    sets its own SIGTERM handler; ours (``sigterm_interrupts``) is put back after it.

    Parameters
    ----------
    address : str, optional
        Address of a running Ray cluster to join (``--address``); None or empty starts a
        local Ray.
    num_cpus : int, optional
        CPUs of the local Ray (None: all of the machine's); ignored when joining a cluster.
    verbose : int
        0 keeps Ray's logs to warnings and silences Ray Data's plan notes; more shows Ray's
        INFO logs and the workers' output on the driver.

    Yields
    ------
    object or None
        What ``ray.init`` returned (a RayContext; a ClientContext for ``ray://`` addresses)
        for the Ray this call started and shuts down on exit, or None when Ray was already
        initialised.
    """
    import ray
    import ray.data

    if address:
        from survey.config import conf
        from survey.run.resources import check_address

        check_address(address, timeout_s=float(conf.connect_timeout))
    if not verbose:  # Ray Data's plan/progress notes; our progress bar and summary say it all
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if ray.is_initialized():
        yield None
        return
    level = logging.INFO if verbose else logging.WARNING
    options = {"include_dashboard": False, "logging_level": level, "log_to_driver": bool(verbose)}
    ours = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        if address:
            context = _join_cluster(address, options)
        else:
            context = ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--address {address}" if address else "the local Ray"
        raise HaloSurveyError(f"{where}: Ray could not start or connect ({exc})") from None
    if ours is _raise_interrupted:
        signal.signal(signal.SIGTERM, ours)
    try:
        yield context
    finally:
        ray.shutdown()


def _join_cluster(address: str, options: dict) -> object:
    """``ray.init(address=...)`` with a deadline (``conf.connect_timeout``): Ray itself waits for minutes.

    The call runs in a helper thread (so Ray sets no signal handler of its own); if it has
    not returned in time, the run stops with a ResourceError and the thread is abandoned.
    """
    import ray

    from survey.config import conf
    from survey.exceptions import ResourceError

    timeout = float(conf.connect_timeout)
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            outcome["context"] = ray.init(address=address, **options)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    ray_worker_log = logging.getLogger("ray._private.worker")  # "SIGTERM handler is not set ...": ours is
    quiet, ray_worker_log.disabled = ray_worker_log.disabled, True
    try:
        thread = threading.Thread(target=connect, name="halo-survey-ray-init", daemon=True)
        thread.start()
        thread.join(timeout)
    finally:
        ray_worker_log.disabled = quiet
    if thread.is_alive():
        raise ResourceError(f"--address {address}: no Ray cluster answered within {timeout:g} s "
                            "(survey.cfg connect_timeout); check the head node's address and port (`ray status` on "
                            "the head node prints it), or leave --address out to start a local Ray")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["context"]


def _check_execution(args: argparse.Namespace) -> None:
    """``--num-cpus`` and ``--address``, which only the command line has, checked before anything starts."""
    from survey.exceptions import BadInputError

    if args.num_cpus is not None and args.num_cpus < 1:
        raise BadInputError(f"--num-cpus {args.num_cpus}", "a local Ray needs at least 1 CPU to read and score "
                            "tiles; pass --num-cpus 1 or more, or leave it out to use every core")
    if args.address is not None and not args.address.strip():
        raise BadInputError("--address", "is empty; give HOST:PORT of a running Ray cluster, or leave it out")


def interrupted_message(output, *, run_id: str) -> str:
    """``interrupted after N of M tiles; rerun with --resume`` from the run's manifest (marked interrupted).

    Parameters
    ----------
    output : str or Path
        The run's output directory.
    run_id : str
        The interrupted run's id: a manifest of another run says nothing of this one.

    Returns
    -------
    str
        The line, without the ``halo-survey MODE:`` prefix.
    """
    from survey.run.manifest import read_manifest, write_manifest

    try:
        manifest = read_manifest(output)
    except Exception:  # an unreadable manifest must not hide the interruption
        manifest = None
    if manifest is None or manifest.run_id != run_id:
        return "interrupted before the run wrote anything; nothing is lost"
    if manifest.status == "running":  # stopped outside the stream (while finishing): say so in the manifest
        manifest.status = "interrupted"
        try:
            write_manifest(manifest, output)
        except Exception:
            pass
    done = manifest.tiles_done_before + manifest.tiles_done
    return (f"interrupted after {done} of {manifest.tiles_planned} tiles; rerun with --resume "
            f"(finished tiles are kept in {output})")


def _run_survey(args: argparse.Namespace, mode: str) -> int:
    from survey.run.arguments import SurveyArguments
    from survey.run.lock import output_lock
    from survey.run.pipeline import prepare, run
    from survey.run.summary import format_summary

    # Every option, the model and its card, the source, the plan and the output directory
    # are checked before Ray starts: these mistakes cost no cluster start-up.
    _check_execution(args)
    arguments = SurveyArguments.from_cli(args, mode=mode)
    try:
        with sigterm_interrupts():
            prepared = prepare(arguments)
            # The output's lock, before Ray starts: a second run on it is refused at once.
            with output_lock(arguments.output, run_id=arguments.run_id), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NoDetectionsWarning)
                with ray_session(address=args.address, num_cpus=args.num_cpus, verbose=args.verbose):
                    summary = run(prepared)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (RunInterrupted)
        signum = exc.signum if isinstance(exc, RunInterrupted) else signal.SIGINT
        print(f"halo-survey {mode}: {interrupted_message(arguments.output, run_id=arguments.run_id)}", file=sys.stderr)
        return 128 + int(signum)
    for warning in caught:  # ours as one line each (an empty catalogue, say); others as Python shows them
        if issubclass(warning.category, NoDetectionsWarning):
            print(f"halo-survey {mode}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    print(format_summary(summary))
    return 0 if summary.manifest.status == "complete" else 1


def _add_run_options(p: argparse.ArgumentParser, *, mode: str) -> None:
    """The run's own options (``survey.run.arguments``), plus where Ray runs."""
    from survey.run.arguments import add_run_options

    groups = add_run_options(p, mode=mode)
    execution = groups["execution"]
    execution.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    execution.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")


def _add_scan(sub) -> None:
    p = sub.add_parser(
        "scan",
        help="blind scan of a region (no arguments: a demo scan of the mock sky)",
        description="Score every window of a region. With no arguments: a demo on the MOCK sky "
        f"(region {DEMO_REGION}, shipped model), written to ./halo-survey-out/.",
    )
    _add_run_options(p, mode="scan")
    p.set_defaults(func=lambda a: _run_survey(a, "scan"))


def _add_targets(sub) -> None:
    p = sub.add_parser("targets", help="one window per catalogued cluster in the footprint (paper section 5.4)")
    _add_run_options(p, mode="targets")
    p.set_defaults(func=lambda a: _run_survey(a, "targets"))


# --------------------------------------------------------------------------------------
# tiles / query / plot / catalog
# --------------------------------------------------------------------------------------


def _tiles(args: argparse.Namespace) -> int:
    from survey.sky.tiling import format_plan, parse_region, plan

    print(format_plan(plan(parse_region(args.region), tile_order=args.tile_order, window_order=args.window_order),
                      windows_per_second=args.windows_per_second))
    return 0


def _add_tiles(sub) -> None:
    p = sub.add_parser("tiles", help="plan a survey: tiles, windows and area of a region")
    p.add_argument("--region", default="gleam", help="gleam | allsky | cone:RA,DEC,RADIUS_DEG | tiles:ORDER:IDS")
    p.add_argument("--tile-order", type=int, default=DEFAULT_TILE_ORDER)
    p.add_argument("--window-order", type=int, default=DEFAULT_WINDOW_ORDER)
    p.add_argument("--windows-per-second", type=float, default=None, help="a measured throughput, for a time estimate")
    p.set_defaults(func=_tiles)


def _query(args: argparse.Namespace) -> int:
    from survey.output.paths import candidates_root
    from survey.output.query import query_command

    text = query_command(candidates_root(args.path), min_score=args.min_score, cone=tuple(args.cone) if args.cone else None,
                         near=args.near, matched_to=args.matched_to, flags=args.flags, fmt=args.format, out=args.out)
    if text is not None:
        sys.stdout.write(text)
    return 0


def _add_query(sub) -> None:
    p = sub.add_parser("query", help="filter a candidate catalogue (a run directory or its candidates/)")
    p.add_argument("path", help="run output directory, or a candidate catalogue (path or URI)")
    p.add_argument("--min-score", type=float, default=None)
    p.add_argument("--cone", type=float, nargs=3, metavar=("RA", "DEC", "RADIUS"), help="degrees")
    p.add_argument("--near", default=None, help="a target or matched cluster name, e.g. 'PSZ2 G008.94-81.22'")
    p.add_argument("--matched-to", default=None, help="only candidates with a match in this catalogue (psz2, ...)")
    p.add_argument("--flags", default=None, help="ok, or a flag name (truncated, noise_high, edge, bad_pixels)")
    p.add_argument("--format", default="table", choices=QUERY_FORMATS)
    p.add_argument("--out", default=None, help="write to this file (needed for fits and parquet)")
    p.set_defaults(func=_query)


def _plot(args: argparse.Namespace) -> int:
    from survey.output.plot import plot_command

    for path in plot_command(args.path, out_dir=args.out, top=args.top):
        print(path)
    return 0


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="sky map and cut-out gallery (PNG) of a candidate catalogue")
    p.add_argument("path", help="run output directory, or a candidate catalogue")
    p.add_argument("--out", default=None, help="directory for the PNGs (default PATH/plots)")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="candidates in the gallery (default %(default)s)")
    p.set_defaults(func=_plot)


def _catalog(args: argparse.Namespace) -> int:
    from survey.catalogs.load import catalog_command

    sys.stdout.write(catalog_command(args.name, footprint=args.footprint, fmt=args.format, online=args.online))
    return 0


def _add_catalog(sub) -> None:
    p = sub.add_parser("catalog", help="print a galaxy-cluster catalogue in the common form")
    p.add_argument("name", choices=CATALOG_NAMES)
    p.add_argument("--footprint", default=None, choices=("gleam",), help="keep clusters inside the GLEAM footprint")
    p.add_argument("--format", default="table", choices=CATALOG_FORMATS)
    p.add_argument("--online", action="store_true", help="fetch from VizieR instead of the local file")
    p.set_defaults(func=_catalog)


def _inject(args: argparse.Namespace) -> int:
    from survey.model.injection_sets import TRUTH_FILENAME, inject_command

    truth = inject_command(args.source, args.out, halos_file=args.halos, grid=args.grid, per_set=args.per_set,
                           region=args.region, seed=args.seed)
    print(f"injected {len(truth)} halo(s) into {len(set(truth['set']))} image set(s); wrote {args.out} and "
          f"{Path(args.out) / TRUTH_FILENAME}")
    return 0


def _add_inject(sub) -> None:
    p = sub.add_parser("inject", help="write FITS sets with halos injected (clipped files stay clipped) and the truth",
                       description="Inject model halos into every image set of fits:DIR (same names under --out) or "
                       "into mock fields, and write the ground truth table injected_halos.ecsv beside them.")
    p.add_argument("--source", required=True, help="fits:DIR or mock[:SEED]")
    p.add_argument("--out", required=True, help="output directory")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--halos", default=None, help="table of halos (ra, dec, flux_150mhz_jy, r_e_arcmin, ...)")
    which.add_argument("--grid", default=None, help="FLUXES:SIZES, e.g. 0.4,0.8,1.6:1,2,3 (Jy at 150 MHz : arcmin)")
    p.add_argument("--per-set", type=int, default=4, help="grid halos per image set (mock: in all)")
    p.add_argument("--region", default=None, help="mock grids: cone:RA,DEC,RADIUS_DEG to place the halos in")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_inject)


REGISTRARS: list[Callable] = [_add_scan, _add_targets, _add_tiles, _add_query, _add_plot, _add_catalog, _add_inspect,
                              _add_inject]


def _version() -> str:
    """The installed package's version, without importing the package's heavy modules."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("halo-survey")
    except PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="halo-survey", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``halo-survey``; errors we expect print one line, not a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)], format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except HaloSurveyError as exc:
        print(f"halo-survey {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"halo-survey {args.command}: interrupted", file=sys.stderr)
        return 128 + int(signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
