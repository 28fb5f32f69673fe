"""``python -m tools execute [PATHS] [--jobs N] [--profile smoke|full|auto] [--force]``:
execute what is not cached (:func:`tools.execution.engine.execute_book`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.core.interrupts import interruptible
from tools.core.problems import say
from tools.execution.engine import execute_book


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="notebooks or folders to execute (default: the whole TOC)")
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="auto: full with a GPU, else smoke (default: auto)")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="notebooks at a time (default: one per GPU, else per core)")
    parser.add_argument("--force", action="store_true",
                        help="execute even the notebooks whose outputs are cached")


def run(args: argparse.Namespace) -> int:
    try:
        with interruptible():
            return execute_book(args.book, args.paths or None, args.profile, args.jobs,
                                args.force)
    except KeyboardInterrupt:  # before any notebook started: nothing to clean up
        say("execute: interrupted")
        return 130
