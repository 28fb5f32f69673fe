"""Jupyter Book's ``build`` command, run in this process, its output echoed and scanned.

Running ``jupyter-book build`` as a child process cost a second Python, a second import
of Sphinx, MyST-NB and their friends, and the tear-down of everything a build allocates:
about a second and a half of a one-line edit's rebuild. So the command runs here, as the
same ``click`` command the executable runs, with the book's folder as the working
directory and the kernels' environment (:func:`tools.execution.kernel_env.kernel_environment`)
in ``os.environ`` while it runs.

Everything written to the standard output and error meanwhile (by Sphinx, by ``click``,
and by the programs it starts, such as ``latexmk`` for the PDF) passes through a pipe at
the file-descriptor level: each line is echoed to the real standard output and handed to
a scanner, which picks the problem lines the caller reports at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

DRAIN_SECONDS = 10  # how long a program that inherited the pipe may keep it open


@contextlib.contextmanager
def scanned_output(on_line: Callable[[str], None]) -> Iterator[None]:
    """Route file descriptors 1 and 2 through a pipe while the block runs: every line is
    echoed to the original standard output and passed to ``on_line`` (decoded).
    ``sys.stdout`` and ``sys.stderr`` write to those descriptors meanwhile, whatever
    they were (a test runner's capture, say)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_streams = sys.stdout, sys.stderr
    saved_out, saved_err = os.dup(1), os.dup(2)
    reading, writing = os.pipe()

    def pump() -> None:
        with os.fdopen(reading, "rb") as stream:
            for raw in stream:
                os.write(saved_out, raw)
                on_line(raw.decode("utf-8", "replace"))

    thread = threading.Thread(target=pump, name="jupyter-book output", daemon=True)
    thread.start()
    os.dup2(writing, 1)
    os.dup2(writing, 2)
    os.close(writing)
    sys.stdout, sys.stderr = (open(fd, "w", encoding="utf-8", errors="replace",  # noqa: SIM115
                                   buffering=1, closefd=False) for fd in (1, 2))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.close()  # flushes; the descriptor stays open
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_out, 1)  # closes the pipe's last writers in this process
        os.dup2(saved_err, 2)
        thread.join(DRAIN_SECONDS)
        os.close(saved_out)
        os.close(saved_err)


@contextlib.contextmanager
def book_process(book: Path, env: dict[str, str]) -> Iterator[None]:
    """Run the block as ``jupyter-book`` ran as a child: in ``book``, with ``env`` as the
    environment and the book's folder importable; everything is restored afterwards."""
    saved_env, saved_path, saved_cwd = dict(os.environ), list(sys.path), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [str(book)]
    os.chdir(book)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)


def jupyter_book(arguments: list[str]) -> int:
    """``jupyter-book`` with ``arguments``, in this process; its exit status. An interrupt
    (Ctrl-C, or SIGTERM under :func:`tools.core.interrupts.interruptible`) is raised as
    KeyboardInterrupt, however Sphinx or ``click`` wrapped it."""
    import click
    from jupyter_book.cli.main import main

    try:
        main.main(arguments, prog_name="jupyter-book", standalone_mode=False)
    except click.exceptions.Abort as err:
        raise KeyboardInterrupt from err
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    except Exception as err:  # noqa: BLE001 -- jupyter-book's way to say "build failed"
        if isinstance(err.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from err
        traceback.print_exc()
        return 1
    return 0
