"""Files of the project: where the build system lives, sources read as UTF-8 with an
error that names the byte, and writes that never leave a half-written file behind."""

from __future__ import annotations

import os
from pathlib import Path

from tools.core.problems import Problem, ProblemError

# The repository that holds the build system (tools/) and, by default, the book.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The execution cache, relative to the book, unless _config.yml sets execute.cache_path.
DEFAULT_CACHE = Path("_build") / ".jupyter_cache"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and one rename, so a
    reader (or an interrupted run) sees the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def read_source(path: Path) -> str:
    """The text of a source file of the book (UTF-8). A byte that is not UTF-8 raises a
    ProblemError at its ``path:line:column``, naming the byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[:err.start]
        line = before.count(b"\n") + 1
        column = len(before) - before.rfind(b"\n")
        byte = data[err.start:err.start + 1].hex()
        raise ProblemError([Problem(Path(path), line, f"not UTF-8 (byte 0x{byte}): save "
                                    "the file as UTF-8", column)]) from None
