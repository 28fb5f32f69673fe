"""Find the ``#@save`` marks of one parsed notebook and the code each one saves.

A mark is a comment that is, or ends with, ``#@save`` (found with ``tokenize``; the code
is parsed with ``ast``), either alone on a line, saving the next top-level statement, or
at the end of a line of a top-level statement's header. What can be saved: a ``def`` or
``class`` with its decorators, a run of consecutive import statements, or an assignment
to one name. A function decorated ``@dlbook.add_to_class(C)`` is saved as a method of
``C``. Problems are reported as ``path:line: message`` with the line in the Markdown
source.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

from tools.core.notebook import Cell, Notebook
from tools.core.problems import Problem
from tools.core.python import to_python
from tools.library.edit import MARK, header_end, is_replace, marked_comments
from tools.library.names import (
    FUNCTIONS,
    LIBRARY,
    add_to_class_target,
    defined_name,
    first_line,
)

IMPORTS = (ast.Import, ast.ImportFrom)


@dataclass(frozen=True)
class Section:
    """A source page of the book, as the library and the API page refer to it."""

    path: Path  # as found from the TOC; used in messages
    rel: str  # POSIX path relative to the book root; used in generated text
    index: int  # position in book order
    label: str | None  # the ``(sec-...)=`` label above the page's H1
    title: str


@dataclass(frozen=True)
class Saved:
    """One saved block: ``kind`` is import, def, class, assign or method."""

    kind: str
    text: str  # the statement(s), from the first decorator line, at column 0
    line: int  # line of ``text``'s first line in the Markdown file
    section: Section
    name: str | None = None  # the name a def, class or assignment binds; a method's name
    target: str | None = None  # a method's class
    dropped: tuple[int, int] | None = None  # a method's add_to_class lines, blank in text
    replaces: bool = False  # marked ``#@save replace``: meant to replace another chapter's

    @property
    def order(self) -> tuple[int, int]:
        return (self.section.index, self.line)

    def where(self, line: int = 1) -> str:
        """``path:line`` of the block's ``line``-th line."""
        return f"{self.section.path}:{self.line + line - 1}"


class _CellReader:
    """The saved blocks of one code cell."""

    def __init__(self, nb: Notebook, cell: Cell, section: Section, python: str,
                 tree: ast.Module) -> None:
        self.nb, self.cell, self.section = nb, cell, section
        self.python, self.tree = python, tree
        self.lines = python.splitlines()
        self.top = list(tree.body)
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.nb.path, self.cell.line + line - 1, message))

    def _holding(self, row: int) -> ast.stmt | None:
        return next((n for n in self.top
                     if first_line(n) <= row <= (n.end_lineno or n.lineno)), None)

    def target(self, row: int, alone: bool) -> ast.stmt | None:
        """The top-level statement that the mark on ``row`` saves (None: a problem)."""
        holder = self._holding(row)
        if holder is None:  # a lone mark between statements saves the next one
            node = next((n for n in self.top if first_line(n) > row), None)
            if node is None:
                self.problem(row, f"{MARK} marks no top-level statement: nothing to save "
                                  "follows it")
            return node
        among_decorators = alone and first_line(holder) <= row < holder.lineno
        in_header = not alone and (row <= header_end(holder) or not isinstance(
            holder, (*FUNCTIONS, ast.ClassDef)))
        if among_decorators or in_header:
            return holder
        self.problem(row, f"{MARK} marks a statement that is not at the top level of the "
                          "cell; only top-level definitions can be saved")
        return None

    def saved(self, start: ast.stmt, end: ast.stmt, blank: ast.expr | None = None,
              **fields) -> Saved | None:
        """The block of lines ``start`` to ``end``; the lines of ``blank`` left empty."""
        first, last = first_line(start), end.end_lineno or end.lineno
        original = self.cell.source.splitlines()[first - 1:last]
        if original != self.lines[first - 1:last]:
            self.problem(first, "saved code cannot use IPython syntax (magics, ! commands)")
            return None
        if blank is not None:
            dropped = (blank.lineno - first + 1, blank.end_lineno - first + 1)
            original = ["" if dropped[0] <= n <= dropped[1] else line
                        for n, line in enumerate(original, 1)]
            fields["dropped"] = dropped
        return Saved(text="\n".join(original), line=self.cell.line + first - 1,
                     section=self.section, **fields)

    def block(self, node: ast.stmt, row: int) -> tuple[Saved | None, list[ast.stmt]]:
        """The saved block starting at ``node`` (marked on ``row``) and the statements it
        covers."""
        if isinstance(node, IMPORTS):
            run = self.top[self.top.index(node):]
            stop = next((i for i, n in enumerate(run) if not isinstance(n, IMPORTS)), len(run))
            run = run[:stop]
            return self.saved(run[0], run[-1], kind="import"), run
        if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
            decorator, target = add_to_class_target(node)
            if decorator is not None and isinstance(node, ast.ClassDef):
                self.problem(decorator.lineno, "add_to_class decorates functions, not classes")
                return None, [node]
            if decorator is not None and target is None:
                self.problem(decorator.lineno, "add_to_class needs one class name, as in "
                                               f"@{LIBRARY}.add_to_class(Trainer)")
                return None, [node]
            if decorator is not None:  # saved without it: the method joins its class
                return self.saved(node, node, decorator, kind="method", name=node.name,
                                  target=target), [node]
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            return self.saved(node, node, kind=kind, name=node.name), [node]
        name = defined_name(node)
        if name is not None:
            return self.saved(node, node, kind="assign", name=name), [node]
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            self.problem(row, "a saved assignment must bind exactly one name, as in "
                              "DATA_HUB = dict()")
        else:
            self.problem(row, f"{MARK} marks a statement of type {type(node).__name__}; "
                              "only a top-level def, class, import or assignment can be "
                              "saved")
        return None, [node]

    def read(self) -> list[Saved]:
        found, covered = [], set()
        for row, _, alone in marked_comments(self.lines, self.top):
            node = self.target(row, alone)
            if node is None or id(node) in covered:
                continue
            block, nodes = self.block(node, row)
            covered.update(id(n) for n in nodes)
            if block is not None:
                found.append(replace(block, replaces=is_replace(self.lines[row - 1])))
        return found


def _parse(source: str) -> tuple[str, ast.Module]:
    try:
        return source, ast.parse(source)
    except SyntaxError:
        python = to_python(source)
        return python, ast.parse(python)


def saved_blocks(nb: Notebook, section: Section) -> tuple[list[Saved], list[Problem]]:
    """The blocks saved by the notebook ``nb``, in order, and the problems found."""
    blocks: list[Saved] = []
    problems: list[Problem] = []
    for cell in nb.code_cells:
        if MARK not in cell.source:
            continue
        try:
            python, tree = _parse(cell.source)
        except SyntaxError as err:
            line = cell.line + (err.lineno or 1) - 1
            problems.append(Problem(nb.path, line, f"SyntaxError in a cell with {MARK}: "
                                                   f"{err.msg}"))
            continue
        reader = _CellReader(nb, cell, section, python, tree)
        blocks += reader.read()
        problems += reader.problems
    return blocks, problems
