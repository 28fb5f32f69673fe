"""What the first cell of a reader's notebook installs: the book's library ``dlbook`` as
the notebook's outputs were made with it.

- A build of a released commit (a tag ``v<version of pyproject.toml>`` points at it)
  installs that release from PyPI: ``dlbook==<version>``.
- Any other build installs the exact commit it was made from, out of the book's
  repository (``repository: url:`` in ``_config.yml``):
  ``dlbook @ git+<url>@<commit>``. pip builds the library-only wheel from it.

The commit is ``GITHUB_SHA`` in GitHub Actions (the commit a workflow runs for, already in
the environment of every step), else ``git rev-parse HEAD`` of the project that holds the
library (the book's folder when it has a ``pyproject.toml``, else this repository; the same
rule as the version). A commit holds only what was committed: local changes are not in it.
Without a commit or a repository URL (a copy of the sources outside git) the cell falls
back to the version pin, which works once that version is released.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tools.core.files import PROJECT_ROOT
from tools.core.mystnb import read_config
from tools.library.generate import project_version

PACKAGE = "dlbook"
COMMIT = re.compile(r"[0-9a-f]{40}")
# Only characters that need no quoting in a shell, cmd.exe or an IPython magic line
# (which expands $name and {expression}).
REPOSITORY = re.compile(r"https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)+")


def release_tag(version: str) -> str:
    return f"v{version}"


def requirement(version: str, repository: str | None, commit: str | None,
                tags: list[str]) -> str:
    """The pip requirement for ``dlbook`` (see the module docstring): the release when a
    tag ``v<version>`` is among ``tags`` (those pointing at ``commit``), else the commit of
    ``repository``, else the version pin."""
    if release_tag(version) in tags or commit is None or repository is None:
        return f"{PACKAGE}=={version}"
    return f"{PACKAGE} @ git+{repository}@{commit}"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def build_commit(root: Path, env: Mapping[str, str]) -> str | None:
    """The full commit the build is made from: ``GITHUB_SHA``, else git's ``HEAD``."""
    for found in (env.get("GITHUB_SHA", ""), _git(root, "rev-parse", "HEAD") or ""):
        if COMMIT.fullmatch(found.strip().lower()):
            return found.strip().lower()
    return None


def tags_at(root: Path, commit: str) -> list[str]:
    """The tags that point at ``commit`` (none where git cannot tell)."""
    return (_git(root, "tag", "--points-at", commit) or "").split()


def repository_url(book: Path) -> str | None:
    """The book's repository (``repository: url:`` of ``_config.yml``), if usable."""
    repository = read_config(book).get("repository")
    url = repository.get("url") if isinstance(repository, dict) else None
    url = url.strip().rstrip("/") if isinstance(url, str) else ""
    return url if REPOSITORY.fullmatch(url) else None


def library_requirement(book: Path, env: Mapping[str, str] | None = None) -> str:
    """The requirement the install cell of ``book``'s notebooks passes to ``%pip``."""
    root = book if (book / "pyproject.toml").is_file() else PROJECT_ROOT
    commit = build_commit(root, os.environ if env is None else env)
    tags = tags_at(root, commit) if commit else []
    return requirement(project_version(root), repository_url(book), commit, tags)
