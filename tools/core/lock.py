"""One build at a time per book: an exclusive lock held while a command executes,
renders and publishes.

The lock is ``_build/.dlbook.lock``, taken with ``fcntl.flock``: the kernel releases it
when its process ends, however it ends (``kill -9`` included), so a crashed build never
leaves a stale lock. A second build of the same book refuses at once, naming the process
that holds the lock. Inside one process the lock is re-entrant, so ``tools html`` (which
holds it) can call the executor (which takes it too).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tools.core.problems import ProblemError

LOCK_NAME = ".dlbook.lock"
_held: dict[Path, int] = {}  # lock file -> depth, in this process


class BuildLocked(ProblemError):
    """Another process is building this book."""


def lock_path(book: Path) -> Path:
    return book.resolve() / "_build" / LOCK_NAME


def _holder(handle: int, tries: int = 20, pause: float = 0.05) -> str:
    """What the lock file says of its holder. The holder writes it just after taking
    the lock, so a file still empty is read again for up to a second."""
    for _ in range(tries):
        text = os.pread(handle, 200, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(pause)
    return "unknown"


@contextlib.contextmanager
def build_lock(book: Path, what: str) -> Iterator[None]:
    """Hold the book's build lock for the block; raises BuildLocked when another process
    holds it. ``what`` (``html``, ``execute``, ...) is written into the lock file, for
    the message the other process prints."""
    path = lock_path(book)
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            raise BuildLocked.at(path, 1, f"another build is running ({holder}); wait for it "
                                          "to finish, then run this again") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"tools {what}, process {os.getpid()}".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(handle, 0)
    finally:
        os.close(handle)  # closing the descriptor releases the lock
