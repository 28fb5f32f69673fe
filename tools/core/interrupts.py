"""Ctrl-C and SIGTERM: the command's own process decides what an interrupt means.

A command that executes or renders installs :func:`interruptible` over its whole run, so
that Ctrl-C (and a SIGTERM from a CI runner) raises ``KeyboardInterrupt`` even when the
process was started with SIGINT ignored (a background job of a script). Its workers run
in their own session and ignore SIGINT (:mod:`tools.execution.runner`); the command stops
them and keeps the cache consistent, holding an interrupt while it writes
(:func:`interrupts_deferred`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def _raise(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt inside the block."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (and SIGTERM) until the block ends, so a write is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt
