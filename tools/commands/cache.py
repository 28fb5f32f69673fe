"""``python -m tools cache export BUNDLE`` and ``python -m tools cache import BUNDLE...``:
move executed notebooks between machines as cache bundles (:mod:`tools.execution.bundles`),
for example from the shards of a sharded run to the machine that renders the book."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.core.lock import build_lock
from tools.core.problems import ProblemError, say
from tools.execution.bundles import export_bundle, import_bundles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("export", "import"),
                        help="export: write the current cached notebooks into BUNDLE; "
                             "import: check BUNDLE(s) against the sources, then store them")
    parser.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE",
                        help="the bundle file (export: exactly one)")
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="the profile of the notebooks (auto: full with a GPU, else "
                             "smoke); an import refuses entries of another profile")


def run(args: argparse.Namespace) -> int:
    if args.action == "export" and len(args.bundles) != 1:
        say("cache export: give exactly one BUNDLE file to write")
        return 2
    try:
        with build_lock(args.book, f"cache {args.action}"):
            if args.action == "export":
                count = export_bundle(args.book, args.bundles[0], args.profile)
                say(f"cache export: {count} notebook(s) in {args.bundles[0]}")
            else:
                count = import_bundles(args.book, args.bundles, args.profile)
                say(f"cache import: {count} notebook(s) stored from "
                    f"{len(args.bundles)} bundle(s)")
    except ProblemError as err:
        print(err, file=sys.stderr)
        say(f"cache {args.action}: nothing was {args.action}ed; the cache is as it was")
        return 1
    return 0
