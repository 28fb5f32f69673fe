"""Command line of the build system: ``python -m tools <command> [--book PATH] [options]``.

Each command is a thin module of :mod:`tools.commands` that provides
``add_arguments(parser)`` and ``run(args) -> int``; this module only dispatches, importing
a command when it is used, and gives every command the book folder (``--book``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = {
    "html": ("render", "execute the chapters and build the website"),
    "pdf": ("render", "execute the chapters and build the PDF book"),
    "live": ("live", "serve the website and rebuild it on every save"),
    "lib": ("lib", "generate the dlbook library from #@save blocks"),
    "execute": ("execute", "execute the chapters into the cache"),
    "check": ("check", "lint the chapters: structure, references, images, code"),
    "new-section": ("new_section", "create a section from the template, add it to the TOC"),
    "notebooks": ("notebooks", "export Colab-ready executed notebooks"),
    "changed": ("changed", "list the notebooks a git diff affects"),
    "cache": ("cache", "export or import executed notebooks as a cache bundle"),
    "test-deps": ("testdeps", "check (or install) the programs the PDF and browser tests need"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(module=f"tools.commands.{module_name}")
        command.add_argument("--book", type=Path, default=Path("."),
                             help="the book's folder, holding _config.yml and _toc.yml "
                                  "(default: .)")
        if name == wanted:
            importlib.import_module(f"tools.commands.{module_name}").add_arguments(command)
    args = parser.parse_args(argv)
    return importlib.import_module(args.module).run(args)
