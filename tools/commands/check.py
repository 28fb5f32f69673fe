"""``python -m tools check [PATH...]``: lint the book (:mod:`tools.checks.book`) and print
every problem as ``file:line: message``; under GitHub Actions each is also an annotation
on the pull request's diff. Exit status 0 when the book is clean, 1 otherwise."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tools.checks.book import check_book
from tools.core.problems import Problem, say


def selected(problems: list[Problem], paths: list[Path]) -> list[Problem]:
    """Only the problems in files at or under ``paths`` (all when none are given)."""
    if not paths:
        return problems
    wanted = [p.resolve() for p in paths]
    return [p for p in problems
            if any(p.path.resolve() == w or w in p.path.resolve().parents for w in wanted)]


def annotation(problem: Problem) -> str:
    """A GitHub Actions error annotation for ``problem`` (shown on the PR's diff)."""
    message = problem.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error file={problem.path},line={problem.line},title=make check::{message}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="report only problems in these files or folders "
                             "(the whole book is always read)")


def run(args: argparse.Namespace) -> int:
    problems = selected(check_book(args.book), args.paths)
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    for problem in problems:
        print(problem)
        if github:
            print(annotation(problem))
    if problems:
        files = len({p.path for p in problems})
        say(f"check: {len(problems)} problem(s) in {files} file(s); see CONTRIBUTING.md for "
            "the rules")
        return 1
    say("check: no problems")
    return 0
