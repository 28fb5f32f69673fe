"""The ``html`` and ``pdf`` commands: render the book (see :mod:`tools.build`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.build import Build, run_build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--book", type=Path, default=Path("."),
                        help="book folder holding _config.yml and _toc.yml (default: .)")
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="execution profile of notebooks that are not cached yet")


def run(args: argparse.Namespace) -> int:
    builder = "pdflatex" if args.command == "pdf" else "html"
    return run_build(Build(args.book, builder, args.profile))
