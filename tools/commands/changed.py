"""``python -m tools changed --base REF``: print the notebooks a change touches, one per
line (:mod:`tools.execution.changed`), for CI to execute only those."""

from __future__ import annotations

import argparse

from tools.core.problems import say
from tools.core.toc import TocError
from tools.execution.changed import GitError, affected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True,
                        help="the git revision to compare with (e.g. origin/main)")


def run(args: argparse.Namespace) -> int:
    try:
        found = affected(args.book, args.base)
    except (GitError, TocError) as err:
        say(f"changed: {err}")
        return 2
    for rel in found:
        print((args.book / rel).as_posix())
    say(f"changed: {len(found)} page(s) affected since {args.base}")
    return 0
