"""`fer-edge data`: inspect FER2013 data (CSV in any common layout, or an image folder)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import add_json_option
from .. import jsonout

HELP = "inspect FER2013 data: rows per split and class, pixel statistics, parse time"


def register(subparsers: Any) -> None:
    from .exitcodes import Exit, help_line

    p = subparsers.add_parser("data", help=HELP, description=HELP + ".")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    stats = sub.add_parser(
        "stats",
        help="rows per split and per class, mean/std per split, read and parse time",
        description="Load a FER2013 CSV (Kaggle fer2013.csv, icml_face_data.csv, with or without Usage) "
        "or an image folder (ROOT/train/<class>/*.jpg, ROOT/test/<class>/*.jpg) and describe it. "
        + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.INTERRUPTED),
    )
    stats.add_argument("path", nargs="?", help="FER2013 CSV file or image folder (or --data)")
    stats.add_argument("--data", dest="data_path", metavar="PATH", help="the same, as the training verbs name it")
    stats.add_argument("--ferplus", metavar="FER2013NEW.CSV",
                       help="Microsoft's FER+ votes for the same rows (fer2013new.csv): adds the FER+ majority "
                       "labels per split")
    add_json_option(stats)
    stats.set_defaults(func=run_stats)
    p.set_defaults(func=_usage(p))


def _usage(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run


def run_stats(args: argparse.Namespace) -> int:
    from ..data.summary import summarize

    from ..errors import UsageError

    if (args.path is None) == (args.data_path is None):
        raise UsageError("data stats: give the data once, as PATH or --data PATH")
    path = args.path if args.path is not None else args.data_path
    summary = summarize(path, progress=not args.json and sys.stderr.isatty(), ferplus=args.ferplus)
    if args.json:
        jsonout.dump(summary.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary.format_table())
    return 0
