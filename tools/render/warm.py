"""Build processes that start warm: forked from a server that has imported what a build
imports (``make live``).

A rebuild after a one-line edit spends most of its time in Sphinx; starting Python and
importing the build system, Jupyter Book, Sphinx and the book's extensions would add a
second and a half. So ``make live`` forks each build from multiprocessing's fork server,
which imported them once. Each build still runs in a fresh process, exactly as
``make html`` (:func:`tools.render.build.build_until_interrupted`): nothing an earlier
build did can leak into the next.

What the server imports: the build system, the Sphinx extensions of the book's
configuration as Jupyter Book completes it, and every module the last build process
had imported when it finished (``_build/.memo/warm-modules.txt``, which each build
rewrites), which covers what Sphinx and the theme import lazily. A module that cannot be
imported is skipped; the build imports it, or fails, as it would have anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import sys
from pathlib import Path

from tools.core.files import write_atomic
from tools.core.memo import MEMO_FOLDER

LIST_VARIABLE = "DLBOOK_WARM_MODULES"  # the file the fork server reads its list from
LIST_NAME = "warm-modules.txt"  # what the last build imported
PRELOAD_NAME = "warm-preload.txt"  # what this server imports
BASE_MODULES = ("tools.render.build", "tools.render.jupyterbook", "tools.execution.engine",
                "tools.library.generate", "jupyter_book.cli.main", "sphinx.application")
NOT_PRELOADED = ("__main__", "__mp_main__")


def module_list(book: Path) -> Path:
    return book / MEMO_FOLDER / LIST_NAME


def configured_extensions(book: Path) -> list[str]:
    """The Sphinx extensions of the book, as Jupyter Book completes its configuration."""
    try:
        from jupyter_book.config import get_final_config

        config, _ = get_final_config(user_yaml=book / "_config.yml", sourcedir=book)
    except Exception:  # noqa: BLE001 -- a bad configuration is the build's to report
        return []
    return [name for name in config.get("extensions", []) if isinstance(name, str)]


def write_module_list(book: Path) -> None:
    """Record the modules this process has imported, for the next fork server."""
    names = sorted(name for name in sys.modules if name not in NOT_PRELOADED)
    with contextlib.suppress(OSError):
        write_atomic(module_list(book), "\n".join(names) + "\n")


def warm_up(listing: Path) -> int:
    """Import the modules named in the file ``listing``, skipping any that fail; how
    many were imported."""
    try:
        names = listing.read_text(encoding="utf-8").split()
    except OSError:
        return 0
    imported = 0
    for name in names:
        try:
            importlib.import_module(name)
            imported += 1
        except Exception:  # noqa: BLE001, S112 -- the build will meet it, or not
            continue
    return imported


def run_html(book: Path, profile: str) -> None:
    """The body of one forked build process: exactly what ``make html`` runs."""
    from tools.render.build import Build, build_until_interrupted

    os.environ.pop(LIST_VARIABLE, None)  # not for the kernels
    code = build_until_interrupted(Build(book, "html", profile))
    write_module_list(book)
    sys.exit(code)


class WarmBuilder:
    """Build processes forked from a fork server that has imported what a build needs.
    The server starts with the first build."""

    def __init__(self, book: Path) -> None:
        self.book = book
        self.context = multiprocessing.get_context("forkserver")
        names = [*BASE_MODULES, *configured_extensions(book)]
        listed = module_list(book)
        if listed.is_file():
            names += listed.read_text(encoding="utf-8").split()
        preload = book / MEMO_FOLDER / PRELOAD_NAME
        write_atomic(preload, "\n".join(dict.fromkeys(names)) + "\n")
        os.environ[LIST_VARIABLE] = str(preload)  # the server starts with this environment
        self.context.set_forkserver_preload(["tools.render.warmup"])
        self.process: multiprocessing.process.BaseProcess | None = None

    async def run(self, profile: str) -> int:
        """Run one build in a fresh forked process; its exit status."""
        self.process = self.context.Process(target=run_html, args=(self.book, profile),
                                            name="tools html")
        self.process.start()
        try:
            await asyncio.to_thread(self.process.join)
            return self.process.exitcode if self.process.exitcode is not None else 1
        finally:
            self.process = None

    async def stop(self) -> None:
        """Stop a running build: it leaves the site and the cache as they were."""
        process = self.process
        if process is None or process.exitcode is not None:
            return
        process.terminate()  # `tools html` turns SIGTERM into a clean interrupt
        await asyncio.to_thread(process.join, 60)
        if process.exitcode is None:
            process.kill()
            await asyncio.to_thread(process.join)

