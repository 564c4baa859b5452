"""`halo-survey`: the survey's command line.

Each sub-command parses its arguments and calls one library function; no logic lives here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from survey.exceptions import HaloSurveyError

Command = Callable[[argparse.Namespace], int]


def _inspect(args: argparse.Namespace) -> int:
    from survey.inspect import format_reports, inspect_directory

    reports, problems = inspect_directory(args.directory)
    print(format_reports(reports, problems))
    return 0 if reports else 1


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="one row per source in a directory of four-band GLEAM FITS sets")
    p.add_argument("directory", help="directory searched recursively for *_<band>*.fits files")
    p.set_defaults(func=_inspect)


REGISTRARS: list[Callable] = [_add_inspect]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="halo-survey", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
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
