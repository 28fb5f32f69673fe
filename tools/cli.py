"""Command line of the build system: ``python -m tools <command> [options]``.

Each command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; this module only dispatches, importing a command when it is used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "html": ("tools.render", "execute the chapters and build the website"),
    "pdf": ("tools.render", "execute the chapters and build the PDF book"),
    "lib": ("tools.extract", "generate the dlbook library from #@save blocks"),
    "execute": ("tools.execute", "execute the chapters into the cache"),
    "check": ("tools.check", "lint the chapters: structure, references, images, code"),
    "new-section": ("tools.newsection", "create a section from the template, add it to the TOC"),
    "notebooks": ("tools.notebooks", "export Colab-ready executed notebooks"),
    "changed": ("tools.changed", "list the notebooks a git diff affects"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(module=module_name)
        if name == wanted:
            importlib.import_module(module_name).add_arguments(command)
    args = parser.parse_args(argv)
    return importlib.import_module(args.module).run(args)
