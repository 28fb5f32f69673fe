"""Show execution as it happens, and the table of what ran at the end.

On a terminal one status line is redrawn in place (done · running · failed · elapsed,
and the cell each running notebook is at); finished notebooks are printed above it. In a
log (CI) there is one line per start and per end, and a heartbeat every 30 seconds naming
what still runs. No dependency: plain ANSI on stderr.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Row:
    """One line of the closing table."""

    notebook: str
    seconds: float | None
    status: str  # executed, cached, FAILED, not run
    reason: str = ""


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class Progress:
    """Live display of a run of ``total`` notebooks."""

    HEARTBEAT = 30.0

    def __init__(self, total: int, stream: TextIO = sys.stderr, live: bool | None = None):
        self.total, self.stream = total, stream
        self.live = stream.isatty() if live is None else live
        self.done = self.failed = 0
        self.start = time.monotonic()
        self._drawn = 0.0
        self._beat = self.start
        self._line = False

    def _print(self, text: str) -> None:
        if self._line:
            self.stream.write("\r\x1b[K")
            self._line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, name: str, reason: str) -> None:
        if not self.live:
            self._print(f"[dlbook] execute: start {name} ({reason})")

    def finished(self, name: str, ok: bool, seconds: float) -> None:
        self.done += 1
        self.failed += not ok
        status = "done  " if ok else "FAILED"
        self._print(f"[dlbook] execute: {status} {name} in {seconds:.1f} s "
                    f"[{self.done}/{self.total}, {clock(time.monotonic() - self.start)}]")

    def update(self, running: list[tuple[str, tuple[int, int], float]]) -> None:
        """Redraw with ``running`` = [(name, (cell, cells), started)]."""
        now = time.monotonic()
        parts = [f"{name} (cell {cell}/{cells}, {clock(now - since)})" if cells else
                 f"{name} (starting)" for name, (cell, cells), since in running]
        if self.live:
            if now - self._drawn < 0.2:
                return
            self._drawn = now
            head = (f"[dlbook] execute {self.done}/{self.total} done · {len(running)} running"
                    f" · {self.failed} failed · {clock(now - self.start)}  ")
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\x1b[K" + (head + ", ".join(parts))[:width])
            self.stream.flush()
            self._line = True
        elif running and now - self._beat >= self.HEARTBEAT:
            self._beat = now
            self._print(f"[dlbook] execute: still running {', '.join(parts)} "
                        f"[{self.done}/{self.total}, {clock(now - self.start)}]")

    def close(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._line = False


def table(rows: list[Row]) -> str:
    """The closing table: notebook, time, status, why it ran."""
    header = Row("notebook", None, "status", "why")
    width = max(len(r.notebook) for r in [header, *rows])
    lines = []
    for row in [header, *rows]:
        when = "time" if row is header else (
            f"{row.seconds:.1f} s" if row.seconds is not None else "-")
        lines.append(f"  {row.notebook:<{width}}  {when:>8}  {row.status:<8}  {row.reason}"
                     .rstrip())
    return "\n".join(lines)
