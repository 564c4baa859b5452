"""`halo-survey`: the survey's command line.

Each sub-command parses its arguments and calls one library function; no logic lives here.
Building the parser imports only ``survey.defaults``: the heavy modules load when a
sub-command runs, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
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
from survey.exceptions import HaloSurveyError, NoDetectionsWarning

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


@contextmanager
def ray_session(*, address: str | None, num_cpus: int | None, verbose: int = 0) -> Iterator[object]:
    """The package's only ``ray.init``: a local Ray (default) or ``--address`` of a running cluster.

    Yields what ``ray.init`` returns (None when a Ray is already up, which it reuses and
    leaves running, as in tests). Ray Data's own progress bars are turned off: the run
    shows one tqdm bar.

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

    if not verbose:  # Ray Data's plan/progress notes; our progress bar and summary say it all
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if ray.is_initialized():
        yield None
        return
    level = logging.INFO if verbose else logging.WARNING
    options = {"address": address} if address else {"num_cpus": num_cpus}
    context = ray.init(include_dashboard=False, logging_level=level, log_to_driver=bool(verbose), **options)
    try:
        yield context
    finally:
        ray.shutdown()


def _run_survey(args: argparse.Namespace, mode: str) -> int:
    from survey.run.arguments import SurveyArguments
    from survey.run.pipeline import prepare, run
    from survey.run.summary import format_summary

    # Every option, the model and its card, the source, the plan and the output directory
    # are checked before Ray starts: these mistakes cost no cluster start-up.
    prepared = prepare(SurveyArguments.from_cli(args, mode=mode))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoDetectionsWarning)
        with ray_session(address=args.address, num_cpus=args.num_cpus, verbose=args.verbose):
            summary = run(prepared)
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
    p.add_argument("--flags", default=None, help="ok, or a flag name (truncated, noise_high, edge)")
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


if __name__ == "__main__":
    sys.exit(main())
