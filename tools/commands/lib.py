"""``python -m tools lib [--check]``: generate ``dlbook/`` and ``book/api.md`` from the
chapters (:mod:`tools.library.generate`), or with ``--check`` fail with a diff when they
are out of date."""

from __future__ import annotations

import argparse
import sys

from tools.core.lock import BuildLocked, build_lock
from tools.core.problems import say
from tools.core.toc import TocError
from tools.library.generate import (
    API_PAGE,
    PACKAGE,
    ExtractError,
    apply,
    changes,
    generate,
    unified_diff,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail with a diff when dlbook/ or the API page "
                             "differs from what the chapters generate")


def run(args: argparse.Namespace) -> int:
    try:
        library, files = generate(args.book)
        found = changes(args.book, files)
    except (ExtractError, TocError) as err:
        print(err, file=sys.stderr)
        return 1
    if args.check:
        if not found:
            say(f"{PACKAGE}/ and {API_PAGE} are up to date")
            return 0
        sys.stdout.write("".join(unified_diff(change) for change in found))
        say(f"{len(found)} generated file(s) out of date with the chapters: run `make lib` "
            "(python -m tools lib)")
        return 1
    try:
        with build_lock(args.book, "lib"):  # never under a running build's feet
            apply(args.book, found)
    except BuildLocked as err:
        print(err, file=sys.stderr)
        return 1
    names = sum(len(m.entries) for m in library.modules)
    say(f"{names} names in {len(library.modules)} modules; {len(found)} file(s) changed")
    return 0
