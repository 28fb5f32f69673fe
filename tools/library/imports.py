"""Import statements as data, and the one ruff pass that lays them out in generated files.

The library generator gives each module exactly the imports its code uses. It reads them
from saved blocks as :class:`ImportAtom` values (one imported name each) and writes them
back with :func:`import_lines`, one plain statement per atom in a fixed order.
:func:`sort_imports` then runs ruff's isort rules (``I``) once over all generated files, so
that sections, order, merging and wrapping are exactly what ``ruff check`` expects, in
function-local import blocks too, without this project keeping its own copy of isort.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.core.problems import Problem, ProblemError

LINE_LENGTH = 99
FIRST_PARTY = ("dlbook",)
TARGET_VERSION = "py310"
RUFF_TIMEOUT = 120  # seconds; sorting the whole library takes well under one


@dataclass(frozen=True)
class ImportAtom:
    """One imported name: ``import module [as asname]`` or ``from module import name``."""

    module: str
    name: str | None = None  # None for ``import module``
    asname: str | None = None

    @property
    def bound(self) -> str:
        """The name this import binds in the importing module."""
        return self.asname or self.name or self.module.split(".")[0]

    @property
    def plain_dotted(self) -> bool:
        """``import a.b``: binds ``a`` together with other such imports of ``a``."""
        return self.name is None and self.asname is None

    @property
    def statement(self) -> str:
        """The import statement of this atom alone."""
        alias = f" as {self.asname}" if self.asname else ""
        if self.name is None:
            return f"import {self.module}{alias}"
        return f"from {self.module} import {self.name}{alias}"


class ImportProblem(ValueError):
    """An import the library cannot use; ``line`` counts from the statement's block."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def atoms_of(node: ast.Import | ast.ImportFrom) -> list[ImportAtom]:
    """The atoms of one import statement; relative and star imports are refused."""
    if isinstance(node, ast.Import):
        return [ImportAtom(a.name, None, a.asname) for a in node.names]
    if node.level:
        raise ImportProblem(node.lineno, "a saved import cannot be relative")
    if any(a.name == "*" for a in node.names):
        raise ImportProblem(node.lineno, "a saved import cannot use '*': name what you use")
    return [ImportAtom(node.module or "", a.name, a.asname) for a in node.names]


def import_lines(atoms: Iterable[ImportAtom], indent: str = "") -> list[str]:
    """One statement per distinct atom, indented by ``indent``, in a fixed order.

    Not the order ruff wants: :func:`sort_imports` sorts, merges and wraps them."""
    unique = sorted(set(atoms), key=lambda a: (a.module, a.name or "", a.asname or ""))
    return [indent + atom.statement for atom in unique]


def ruff_config() -> str:
    """The ruff settings the generated library is sorted with, and checked against."""
    first_party = ", ".join(json.dumps(name) for name in FIRST_PARTY)
    return (f"line-length = {LINE_LENGTH}\n"
            f'target-version = "{TARGET_VERSION}"\n'
            "\n[lint.isort]\n"
            f"known-first-party = [{first_party}]\n")


def _failed(paths: list[str], message: str) -> ProblemError:
    where = os.path.commonpath(paths) if len(paths) > 1 else paths[0]
    return ProblemError.at(where, 1, f"ruff could not sort the imports of the generated "
                                     f"files: {message}")


def sort_imports(files: dict[str, str]) -> dict[str, str]:
    """``files`` (text by relative path) with the imports of every ``.py`` file sorted.

    Import order is ruff's to define: one ``ruff check --select I --fix`` over a temporary
    copy of the files replaces a hand-written imitation of isort that had to follow every
    ruff rule by hand. The settings are passed explicitly (:func:`ruff_config`) and ruff
    runs in the temporary folder, so the result does not depend on where it is called.
    Other files pass through unchanged. Raises :class:`ProblemError`, naming the file and
    line, when ruff cannot run or leaves a finding (a generated file that does not parse).
    """
    paths = [rel for rel in files if rel.endswith(".py")]
    if not paths:
        return dict(files)
    with tempfile.TemporaryDirectory(prefix="dlbook-imports-") as tmp:
        folder = Path(tmp)
        config = folder / "ruff.toml"
        config.write_text(ruff_config(), encoding="utf-8")
        for rel in paths:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[rel], encoding="utf-8", newline="")
        command = [sys.executable, "-m", "ruff", "check", "--select", "I", "--fix",
                   "--no-cache", "--quiet", "--config", str(config),
                   "--output-format", "json", "--", *paths]
        try:
            done = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                                  timeout=RUFF_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise _failed(paths, f"ruff did not run: {err}") from err
        if done.returncode != 0:
            try:
                found = json.loads(done.stdout)
            except ValueError:
                found = None
            if not found:
                message = (done.stderr or done.stdout).strip()[:500]
                raise _failed(paths, message or f"ruff exited with {done.returncode}")
            named = {(folder / rel).resolve(): rel for rel in paths}
            raise ProblemError([
                Problem(Path(named.get(Path(item["filename"]).resolve(), item["filename"])),
                        (item.get("location") or {}).get("row", 1),
                        f"ruff could not sort the imports of this generated file: "
                        f"{item['message']}")
                for item in found])
        return {rel: (folder / rel).read_text(encoding="utf-8") if rel.endswith(".py")
                else text for rel, text in files.items()}
