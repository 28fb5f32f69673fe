"""Whether anything a build reads has changed since the last successful build.

``make html`` with nothing changed should cost a second, not a full pass over the book.
A build records, beside its output, two digests of file *status* (path, size, mtime; no
file is read):

- ``sources``: every file of the book folder (chapters, configuration, bibliography,
  images, hand-written library modules, ...) except what builds write (``_build/``, the
  generated ``dlbook`` modules and API page) and tool folders (``.git``, ``.venv``, caches);
  the build system itself (``tools/``) when the book lives elsewhere; the data mirror;
  the ``DLBOOK_*`` and ``CUDA_VISIBLE_DEVICES`` settings; the builder and the profile.
  Taken *before* the build, so an edit saved while a build runs is seen next time.
- ``manifest``: the execution manifest, taken *after* the build, so that a run of
  ``make execute`` in between makes the next build render again.

When both match and the published output is there, the build has nothing to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tools.core.files import DEFAULT_CACHE, PROJECT_ROOT, write_atomic
from tools.execution.kernel_env import MIRROR_VARIABLE, data_mirror
from tools.execution.manifest import manifest_path
from tools.library.header import is_generated

RECORD = ".inputs.json"
SKIPPED_DIRS = frozenset({"_build", ".git", ".venv", "__pycache__", ".pytest_cache",
                          ".ipynb_checkpoints", "node_modules", ".ruff_cache"})


def _status(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every file under ``root`` that a build reads."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS
                         and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.suffix not in (".py", ".md") or not is_generated(path):
                found.append((path.relative_to(root).as_posix(), stat.st_size,
                              stat.st_mtime_ns))
    return found


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:32]


def sources_digest(book: Path, builder: str, profile: str) -> str:
    """The ``sources`` digest of the module docstring."""
    book = book.resolve()
    roots = {"book": _status(book)}
    if PROJECT_ROOT.resolve() != book:
        roots["tools"] = _status(PROJECT_ROOT / "tools")
    mirror = os.environ.get(MIRROR_VARIABLE) or data_mirror(book)  # as the kernels see it
    roots["mirror"] = _status(Path(mirror)) if mirror and Path(mirror).is_dir() else []
    settings = {k: v for k, v in os.environ.items()
                if k.startswith("DLBOOK_") or k == "CUDA_VISIBLE_DEVICES"}
    return _digest({"roots": roots, "settings": settings, "builder": builder,
                    "profile": profile})


def manifest_digest(book: Path) -> str:
    path = manifest_path(book / DEFAULT_CACHE)
    try:
        stat = path.stat()
    except OSError:
        return "none"
    return _digest([stat.st_size, stat.st_mtime_ns])


def up_to_date(record_dir: Path, landmark: Path, sources: str, book: Path) -> bool:
    """Whether the last successful build saw these sources and this manifest, and its
    output (``landmark``: index.html, book.pdf) is still there."""
    try:
        recorded = json.loads((record_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (landmark.is_file() and recorded.get("sources") == sources
            and recorded.get("manifest") == manifest_digest(book))


def record(record_dir: Path, sources: str, book: Path) -> None:
    """Remember a successful build: the sources it started from, the manifest it left."""
    write_atomic(record_dir / RECORD, json.dumps({"sources": sources,
                                                  "manifest": manifest_digest(book)}))
