"""Files of the project: where the build system lives, and writes that never leave a
half-written file behind."""

from __future__ import annotations

import os
from pathlib import Path

# The repository that holds the build system (tools/) and, by default, the book.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
