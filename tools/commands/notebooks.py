"""``python -m tools notebooks [--out DIR]``: write the executed, Colab-ready notebooks
(:mod:`tools.render.colab`); nothing is written unless every page's outputs are cached."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.core.problems import ProblemError, say
from tools.render.colab import OUT, export, write_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: BOOK/{OUT.as_posix()})")


def run(args: argparse.Namespace) -> int:
    out = args.out or args.book / OUT
    try:
        notebooks, problems = export(args.book)
    except ProblemError as err:  # the TOC, a page that is not UTF-8, ...
        print(err, file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        say(f"notebooks: {len(problems)} page(s) not executed; {out} left as it was")
        return 1
    changed = write_all(out, notebooks)
    say(f"notebooks: {len(notebooks)} in {out} ({changed} file(s) changed)")
    return 0
