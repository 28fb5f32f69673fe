"""``python -m tools html`` and ``python -m tools pdf``: execute what is not cached, then
render the website or the PDF book (:mod:`tools.render.build`)."""

from __future__ import annotations

import argparse

from tools.core.interrupts import interruptible
from tools.core.problems import say
from tools.render.build import Build, run_build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="execution profile of notebooks that are not cached yet")


def run(args: argparse.Namespace) -> int:
    builder = "pdflatex" if args.command == "pdf" else "html"
    try:
        with interruptible():
            return run_build(Build(args.book, builder, args.profile))
    except KeyboardInterrupt:
        say(f"{args.command}: interrupted; the site and the PDF are left as they were")
        return 130
