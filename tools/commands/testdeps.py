"""``python -m tools test-deps [--install]``: check that the programs the PDF and browser
tests call are on PATH (:mod:`tools.render.systemdeps`); with ``--install``, install what
is missing where that is possible (Debian or Ubuntu, as root, apt-get). Exit status 1,
with what is missing and how to install it, otherwise. ``make test`` runs it first."""

from __future__ import annotations

import argparse

from tools.core.problems import say
from tools.render.systemdeps import advice, ensure, listed_packages, this_machine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--install", action="store_true",
                        help="install the missing Debian packages with apt-get when running "
                             "as root on Debian or Ubuntu (as in CI); elsewhere only report")


def run(args: argparse.Namespace) -> int:
    machine = this_machine()
    packages = listed_packages()
    outcome = ensure(machine, packages, install=args.install)
    if outcome.report.ok:
        installed = "" if outcome.apt_status is None else " (installed with apt-get)"
        say(f"test-deps: TeX, poppler and Chromium are present{installed}")
        return 0
    for line in advice(machine, outcome, packages):
        say(f"test-deps: {line}")
    return 1
