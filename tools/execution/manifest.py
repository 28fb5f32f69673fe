"""The execution manifest: per notebook, the key its cached outputs were made with.

One JSON file beside the jupyter-cache store (``<cache>/dlbook-keys.json``), written only
by the parent process of ``tools execute``, atomically, and only *after* the notebook's
record is in jupyter-cache, so an interrupted run never records a key whose outputs are
not cached. The Sphinx extension (:mod:`tools.sphinx.execution`) reads it to mark pages
outdated and to say on each page which profile and device produced its outputs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.core.files import write_atomic

MANIFEST_NAME = "dlbook-keys.json"
FORMAT = 1


@dataclass
class Entry:
    """How one notebook's cached outputs were produced."""

    key: str
    parts: dict
    profile: str
    device: str
    seconds: float
    executed: str  # ISO 8601 time the execution finished (UTC)
    cache_hash: str  # jupyter-cache hash of the record
    shard: str = ""  # "K/N" when a shard of a sharded run executed it (tools.execution.shards)

    @property
    def stamp(self) -> str:
        """Changes whenever the outputs were replaced (same key re-run included)."""
        return f"{self.key}@{self.executed}"


@dataclass
class Manifest:
    """All entries, keyed by the notebook's path relative to the book (POSIX)."""

    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    files: dict[str, list] = field(default_factory=dict)  # data-file digest memo

    def save(self) -> None:
        data = {"format": FORMAT, "notebooks": {k: asdict(v) for k, v in
                                                sorted(self.entries.items())},
                "files": self.files}
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))


def manifest_path(cache_dir: Path) -> Path:
    return cache_dir / MANIFEST_NAME


def load_manifest(cache_dir: Path) -> Manifest:
    """Read the manifest; a missing or unreadable one is empty (everything re-runs)."""
    path = manifest_path(cache_dir)
    manifest = Manifest(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return manifest
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return manifest
    for name, entry in data.get("notebooks", {}).items():
        try:
            manifest.entries[name] = Entry(**entry)
        except TypeError:
            continue
    manifest.files = data.get("files", {})
    return manifest
