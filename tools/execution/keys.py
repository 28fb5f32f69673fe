"""The full cache key of a notebook: everything its outputs depend on.

jupyter-cache keys a notebook on its code cells (and kernelspec) only. Our key adds what
that misses, each part kept apart so that a report can say *why* a notebook re-runs:

- ``cells``: jupyter-cache's own hash of the notebook as myst-nb reads it;
- ``library``: ``{"module:name": digest}`` of every library symbol it uses, transitively
  (:mod:`tools.library.deps`);
- ``profile``: ``full`` or ``smoke``;
- ``data``: SHA-256 of each data file the front matter declares under ``data_files``
  (paths relative to the notebook's folder, globs and folders allowed, or under
  ``$DLBOOK_DATA_MIRROR/``);
- ``smoke``: under the smoke profile, the page's reductions
  (:mod:`tools.execution.kernel_env`) and a digest of the module that applies them,
  ``dlbook/_smoke.py``; empty under ``full``;
- ``kernel``: a digest of the kernel configuration of :mod:`tools.execution.kernel_env`
  (its IPython profile and the environment variables it sets, machine paths left out).
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.execution import kernel_env

MIRROR = "$DLBOOK_DATA_MIRROR"
# Left out of the kernel digest: machine paths, and what the key holds in its own parts.
PATH_VARIABLES = {"PYTHONPATH", "IPYTHONDIR", kernel_env.SMOKE_VARIABLE,
                  kernel_env.MIRROR_VARIABLE}


class DataFilesError(ValueError):
    """A ``data_files`` front-matter entry that cannot be used."""


@dataclass(frozen=True)
class KeyParts:
    """The parts of a notebook's cache key (see the module docstring)."""

    cells: str
    profile: str
    kernel: str
    library: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def kernel_digest(variables: dict) -> str:
    """Digest of the kernel configuration: the IPython profile and the fixed variables."""
    fixed = {k: v for k, v in sorted(variables.items()) if k not in PATH_VARIABLES}
    site = (kernel_env.KERNEL_SITE / "sitecustomize.py").read_text()
    text = kernel_env.KERNEL_CONFIG + site + json.dumps(fixed, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path, memo: dict) -> str:
    """SHA-256 of a file, remembered by (size, mtime) in ``memo`` between runs."""
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    known = memo.get(str(path))
    if known and known[:2] == stamp:
        return known[2]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    memo[str(path)] = [*stamp, digest.hexdigest()]
    return digest.hexdigest()


def data_digests(entries, folder: Path, env: dict, memo: dict) -> dict[str, str]:
    """``{"entry/file": sha256}`` for the declared data files (``missing`` when absent)."""
    if entries is None:
        return {}
    if isinstance(entries, str) or not isinstance(entries, list) \
            or not all(isinstance(e, str) for e in entries):
        raise DataFilesError("data_files must be a list of paths (strings)")
    found: dict[str, str] = {}
    for entry in entries:
        if entry.startswith((MIRROR + "/", "${DLBOOK_DATA_MIRROR}/")):
            mirror = env.get("DLBOOK_DATA_MIRROR")
            if not mirror:
                found[entry] = "mirror-unset"
                continue
            base, pattern = Path(mirror), entry.split("/", 1)[1]
        else:
            base, pattern = folder, entry
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise DataFilesError(f"data_files entry {entry!r} must stay inside its folder")
        matches = sorted(Path(p) for p in glob.glob(str(base / pattern), recursive=True))
        files = sorted({f for m in matches for f in ([m] if m.is_file() else
                                                       (p for p in m.rglob("*") if p.is_file()))})
        if not files:
            found[entry] = "missing"
        for path in files:
            found[f"{entry}:{path.relative_to(base).as_posix()}"] = file_digest(path, memo)
    return found


def explain(old: dict | None, new: KeyParts) -> str:
    """Why a notebook with recorded parts ``old`` must run again, in a few words."""
    if not old:
        return "new"
    reasons = []
    if old.get("cells") != new.cells:
        reasons.append("code")
    if old.get("profile") != new.profile:
        reasons.append(f"profile {old.get('profile')}→{new.profile}")
    library = old.get("library", {})
    changed = sorted(k for k in set(library) | set(new.library)
                     if library.get(k) != new.library.get(k))
    if changed:
        names = [k.split(":", 1)[1] for k in changed]
        more = f" +{len(names) - 3}" if len(names) > 3 else ""
        reasons.append("library " + ", ".join(names[:3]) + more)
    if old.get("data", {}) != new.data:
        reasons.append("data")
    if old.get("smoke", {}) != new.smoke:
        reasons.append("smoke settings")
    if old.get("kernel") != new.kernel:
        reasons.append("kernel config")
    return "; ".join(reasons) or "not cached"
