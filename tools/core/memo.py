"""Values computed from one file, remembered between runs until the file or the code changes.

Checking, library extraction and the website model each read every page of the book,
although an edit touches one. A :class:`FileMemo` keeps, per source file, what a function
computed from it, under the file's status (size, modification and change time, inode: an
editor, git or rsync cannot write new content without changing one of them) and an extra
key the caller names (a page's position in the TOC, say). A hit needs both to match; so
only the files whose status changed are read again.

The whole memo is also keyed by a context: the bytes of every module of ``tools``, the
versions of Python and of the parsers the results come from, and whatever the caller
adds (the MyST settings). A change of any of them starts the memo afresh, so a fix to the
code that computes a value is never masked by a value remembered from before it.

Values are kept pickled, each on its own, and unpickled on every hit: a caller may change
what it got without changing what is remembered. A memo that cannot be read (absent,
truncated, written by another version) is an empty one. It is written in one rename, so a
concurrent reader sees the old memo or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Hashable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePath
from sys import version as python_version
from typing import TypeVar

from tools.core.files import PROJECT_ROOT

T = TypeVar("T")
FORMAT = 1
MEMO_FOLDER = Path("_build") / ".memo"
PARSERS = ("markdown-it-py", "mdit-py-plugins", "myst-parser", "jupytext", "ipython",
           "pybtex", "pyyaml", "ruff")


def file_status(path: Path) -> tuple[int, ...]:
    """What changes whenever a file's content does (see the module docstring)."""
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@cache
def code_digest() -> str:
    """SHA-256 of the build tools' code and of the versions their results depend on."""
    digest = hashlib.sha256(f"{FORMAT}\0{python_version}\0".encode())
    for name in PARSERS:
        try:
            digest.update(f"{name}={version(name)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=\0".encode())
    tools = PROJECT_ROOT / "tools"
    for path in sorted(tools.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(path.relative_to(tools).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def canonical(value):
    """A JSON-ready copy of a settings value in which no order depends on the process
    (a set prints in hash order, which differs from one process to the next)."""
    if isinstance(value, (set, frozenset)):
        return sorted(canonical(item) for item in value)
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _stable(value):
    """``value`` with every set sorted and every dataclass spelled out, for hashing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__qualname__,
                [(f.name, _stable(getattr(value, f.name))) for f in dataclasses.fields(value)]]
    if isinstance(value, (set, frozenset)):
        return sorted((_stable(item) for item in value), key=repr)
    if isinstance(value, dict):
        return [(_stable(key), _stable(item)) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [_stable(item) for item in value]
    if isinstance(value, PurePath):
        return value.as_posix()
    return value


def digest_of(value) -> str:
    """SHA-256 of a value built of dataclasses, containers, paths and plain data, the
    same in every process (a set is hashed in sorted order)."""
    return hashlib.sha256(repr(_stable(value)).encode()).hexdigest()


def settings_digest(*settings) -> str:
    """One digest of settings objects (dataclasses such as MdParserConfig), in a
    process-independent order."""
    text = json.dumps([canonical(vars(item)) for item in settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Memo:
    """Values of one kind (``name``) for one book, each kept under a key and a check."""

    def __init__(self, book: Path, name: str, context: str = "") -> None:
        self.path = book / MEMO_FOLDER / f"{name}.pickle"
        self.context = hashlib.sha256(f"{code_digest()}\0{context}".encode()).hexdigest()
        self.entries: dict[Hashable, tuple[Hashable, bytes]] = {}
        self.changed = False
        try:
            with self.path.open("rb") as stream:
                context, entries = pickle.load(stream)
        except Exception:  # noqa: BLE001 -- any unreadable memo is an empty one
            return
        if context == self.context and isinstance(entries, dict):
            self.entries = entries

    def get(self, key: Hashable, check: Hashable = None) -> tuple[bool, object]:
        """``(True, value)`` if a value was remembered under ``key`` with ``check``,
        else ``(False, None)``."""
        found = self.entries.get(key)
        if found is not None and found[0] == check:
            try:
                return True, pickle.loads(found[1])
            except Exception:  # noqa: BLE001 -- as if it were not there
                pass
        return False, None

    def put(self, key: Hashable, check: Hashable, value: T) -> T:
        self.entries[key] = (check, pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
        self.changed = True
        return value

    def save(self) -> None:
        """Write the memo if anything was added (in one rename)."""
        if not self.changed:
            return
        staging = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with staging.open("wb") as stream:
                pickle.dump((self.context, self.entries), stream, pickle.HIGHEST_PROTOCOL)
            os.replace(staging, self.path)
        except OSError:
            pass  # a memo that cannot be written costs time next run, nothing else
        finally:
            with contextlib.suppress(OSError):
                staging.unlink(missing_ok=True)
        self.changed = False


class FileMemo(Memo):
    """Values computed from single files, each kept under the file's status."""

    def value(self, source: Path, compute: Callable[[Path], T], extra: Hashable = None) -> T:
        """``compute(source)``, or the value it gave while ``source`` had the status it has
        now and ``extra`` was the same. The status is taken before reading, so an edit
        made meanwhile is seen next time."""
        check = (file_status(source), extra)
        hit, value = self.get(str(source), check)
        return value if hit else self.put(str(source), check, compute(source))
