"""``python -m tools html`` and ``python -m tools pdf``: execute what is not cached, then
render the website or the PDF book (:mod:`tools.render.build`)."""

from __future__ import annotations

import argparse

from tools.render.build import Build, build_until_interrupted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="execution profile of notebooks that are not cached yet")


def run(args: argparse.Namespace) -> int:
    builder = "pdflatex" if args.command == "pdf" else "html"
    return build_until_interrupted(Build(args.book, builder, args.profile))
