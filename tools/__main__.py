"""Entry point: ``python -m tools``.

A build leaves a few hundred thousand objects behind (Sphinx's environment, doctrees,
notebooks); the interpreter's tear-down would free them one by one, for up to a second,
after the work is done. So the process ends as a forked child does: the ``atexit``
handlers run (logging, multiprocessing, temporary files), the standard streams are
flushed, and ``os._exit`` returns the memory to the system in one go.
"""

import atexit
import os
import sys

from tools.cli import main


def finish(code: int) -> None:
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
        os._exit(code)


def run() -> None:
    try:
        status = main()
    except SystemExit as done:  # argparse's --help and usage errors
        status = done.code if isinstance(done.code, int) else int(done.code is not None)
        if not isinstance(done.code, int | None):
            print(done.code, file=sys.stderr)
    except KeyboardInterrupt:
        status = 130
    finish(status)


if __name__ == "__main__":  # not when multiprocessing imports it as ``__mp_main__``
    run()
