"""What planning learned from each page, remembered until the page or its context changes.

Keying a notebook means reading it as myst-nb does, hashing it as jupyter-cache does and
closing over the library definitions its cells use: most of the time of a run that has
nothing (or one page) to execute. What that yields for a page (the jupyter-cache hash,
the library dependencies, and the ``data_files`` and ``smoke`` front matter, which the
key's other parts are computed from every time) depends only on

- the page file: its status (size, modification and change time, inode: an editor, git or
  rsync cannot write new content without changing at least one of them);
- the context: the bytes of every library module, myst-nb's and MyST's settings from
  ``_config.yml``, and the versions of jupyter-cache and of this format.

So it is kept, per page, in ``<cache>/dlbook-plan.json``, and reused while both are the
same; a page whose status changed, or any change of the context, is read again. The
memo holds no key and decides nothing: the key is still computed, and compared with the
manifest, on every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from tools.core.files import write_atomic
from tools.core.memo import file_status as status_of
from tools.core.memo import settings_digest

MEMO_NAME = "dlbook-plan.json"
FORMAT = 1


@dataclass(frozen=True)
class Reading:
    """What reading one page gave: whether it is a notebook, and its facts if so."""

    notebook: bool
    cache_hash: str = ""
    library: dict | None = None  # {"module:name": digest} of the definitions it uses
    data_files: object = None  # the front matter's value, as written
    smoke: object = None


def file_status(path: Path) -> list[int]:
    return list(status_of(path))  # a list, as JSON gives it back


def library_bytes_digest(root: Path) -> str:
    """SHA-256 of every ``*.py`` file of the library package, in order."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
        if "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def context_digest(library_root: Path, settings) -> str:
    """The context of the module docstring, as one digest."""
    text = json.dumps([FORMAT, version("jupyter-cache"), library_bytes_digest(library_root),
                       settings_digest(settings.md_config, settings.nb_config)])
    return hashlib.sha256(text.encode()).hexdigest()


class PlanMemo:
    """The readings of the pages of one book, valid for one context."""

    def __init__(self, cache_dir: Path, context: str) -> None:
        self.path = cache_dir / MEMO_NAME
        self.context = context
        self.pages: dict[str, dict] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("context") == context:
            self.pages = data.get("pages", {})

    def get(self, name: str, status: list[int]) -> Reading | None:
        """The remembered reading of a page, if ``status`` (its file status now) is the
        one it was read with."""
        page = self.pages.get(name)
        if page is None or page.get("status") != status:
            return None
        try:
            return Reading(**page["reading"])
        except (KeyError, TypeError):
            return None

    def put(self, name: str, status: list[int], reading: Reading) -> Reading:
        """Remember ``reading``, made from the page while its file had ``status`` (taken
        before reading it, so that an edit made meanwhile is seen next time)."""
        self.pages[name] = {"status": status, "reading": asdict(reading)}
        self.changed = True
        return reading

    def save(self) -> None:
        if self.changed:
            write_atomic(self.path, json.dumps({"context": self.context, "pages": self.pages},
                                               sort_keys=True))
