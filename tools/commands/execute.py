"""``python -m tools execute [PATHS] [--jobs N] [--profile smoke|full|auto] [--force]``:
execute what is not cached (:func:`tools.execution.engine.execute_book`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.core.interrupts import interruptible
from tools.core.problems import say
from tools.execution.engine import execute_book
from tools.execution.shards import ShardError, parse_shard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="notebooks or folders to execute (default: the whole TOC)")
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="auto: full with a GPU, else smoke (default: auto)")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="notebooks at a time (default: one per GPU, else per core)")
    parser.add_argument("--force", action="store_true",
                        help="execute even the notebooks whose outputs are cached")
    parser.add_argument("--dry-run", action="store_true",
                        help="execute nothing: list what would run and why; exit 1 if "
                             "anything would")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="run only shard K of N (K counts from 0) of the notebooks "
                             "still to run, split by recorded durations; for a GitHub "
                             "matrix, a Slurm array or a Kubernetes Indexed Job "
                             "(docs/execution.md)")


def run(args: argparse.Namespace) -> int:
    try:
        shard = parse_shard(args.shard) if args.shard is not None else None
    except ShardError as err:
        say(f"execute: {err}")
        return 2
    try:
        with interruptible():
            return execute_book(args.book, args.paths or None, args.profile, args.jobs,
                                args.force, shard=shard, dry_run=args.dry_run)
    except KeyboardInterrupt:  # before any notebook started: nothing to clean up
        say("execute: interrupted")
        return 130
