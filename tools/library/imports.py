"""Import statements as data: read them from saved blocks, write them back sorted.

The library generator gives each module exactly the imports its code uses. The order and
layout written here is the one ruff's isort rules (``I001``) expect with the project's
defaults: sections future, standard library, third party, first party (``dlbook``); plain
``import`` lines before ``from`` lines; members ordered constants, classes, then the rest;
an aliased member on a line of its own; long lines wrapped one member per line.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

LINE_LENGTH = 99
FIRST_PARTY = frozenset({"dlbook"})
STDLIB = frozenset(sys.stdlib_module_names)


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


def _natural(text: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)


def _member_key(name: str, asname: str | None = None) -> tuple:
    if len(name) > 1 and name.isupper():
        kind = 0  # CONSTANT
    elif name[:1].isupper():
        kind = 1  # Class
    else:
        kind = 2
    return (kind, _natural(name.lower()), name, asname is not None, asname or "")


def _module_key(module: str) -> tuple:
    return (_natural(module.lower()), module)


def _section(module: str) -> int:
    top = module.split(".")[0]
    if top == "__future__":
        return 0
    if top in STDLIB:
        return 1
    return 3 if top in FIRST_PARTY else 2


def _from_lines(module: str, members: list[ImportAtom], indent: str) -> list[str]:
    names = [m.name if m.asname is None else f"{m.name} as {m.asname}" for m in members]
    line = f"{indent}from {module} import {', '.join(names)}"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{indent}from {module} import ("] + [f"{indent}    {n}," for n in names] + [
        f"{indent})"]


def _statements(atoms: list[ImportAtom], indent: str) -> list[str]:
    plain = sorted((a for a in atoms if a.name is None),
                   key=lambda a: (*_module_key(a.module), a.asname is not None,
                                  a.asname or ""))
    lines = [f"{indent}import {a.module}" + (f" as {a.asname}" if a.asname else "")
             for a in plain]
    groups: list[tuple[tuple, str, list[ImportAtom]]] = []
    by_module: dict[str, list[ImportAtom]] = {}
    for atom in atoms:
        if atom.name is not None:
            by_module.setdefault(atom.module, []).append(atom)
    for module, members in by_module.items():
        members.sort(key=lambda a: _member_key(a.name, a.asname))
        together = [m for m in members if m.asname is None]
        if together:
            groups.append(((*_module_key(module), _member_key(together[0].name)), module,
                           together))
        for alias in (m for m in members if m.asname is not None):
            groups.append(((*_module_key(module), _member_key(alias.name, alias.asname)),
                           module, [alias]))
    for _, module, members in sorted(groups, key=lambda g: g[0]):
        lines += _from_lines(module, members, indent)
    return lines


def render_imports(atoms: Iterable[ImportAtom], indent: str = "") -> list[str]:
    """Sorted import lines for ``atoms``, one blank line between sections."""
    unique = sorted(set(atoms), key=lambda a: (a.module, a.name or "", a.asname or ""))
    lines: list[str] = []
    for section in range(4):
        chosen = [a for a in unique if _section(a.module) == section]
        if chosen:
            lines += ([""] if lines else []) + _statements(chosen, indent)
    return lines
