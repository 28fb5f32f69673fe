"""Problems found in the book's sources, each carrying the file and line to open.

Every stage reports what is wrong as :class:`Problem` values (never as formatted strings
that a later stage parses back); a stage that cannot go on raises a :class:`ProblemError`
holding them. Only the last printer turns them into text (``path:line: message``), and
:func:`say` is the one voice of the build's own progress messages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One finding about a source file, printed as ``path:line: message``."""

    path: Path
    line: int
    message: str
    column: int | None = None  # 1-based, where it helps (a byte that is not UTF-8)

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}" if self.column else f"{self.line}"
        return f"{self.path}:{where}: {self.message}"


class ProblemError(Exception):
    """Problems that stop a stage; its text is one ``path:line: message`` a line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, path: Path | str, line: int, message: str) -> ProblemError:
        """The error of one problem at ``path:line``."""
        return cls([Problem(Path(path), line, message)])


def yaml_error_location(err: Exception) -> tuple[int, int | None, str]:
    """(line, column, what is wrong) of a PyYAML error, 1-based; (1, None, ...) when it
    carries no position."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return (mark.line + 1, mark.column + 1, problem) if mark else (1, None, problem)


def say(message: str, stream=None) -> None:
    """Print a progress or summary line of the build, marked ``[dlbook]``, on stderr."""
    print(f"[dlbook] {message}", file=stream or sys.stderr, flush=True)
