"""Read a MyST Markdown notebook into cells that remember where they start in the file.

Every stage of the build (library extraction, execution, linting, error reports) works on
this model, so that any message can name the file and the line a reader should open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jupytext.myst import MystMetadataParsingError, get_parser, read_fenced_cell

from tools.core.files import read_source
from tools.core.problems import ProblemError

CODE_CELL = "{code-cell}"

# The front matter that makes a Markdown file a MyST notebook of this book.
MYST_FRONT_MATTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
"""


class NotebookError(ProblemError):
    """A notebook source that cannot be read, with the line where reading failed."""


@dataclass(frozen=True)
class Cell:
    """One cell: ``kind`` is ``"code"`` or ``"markdown"``; ``line`` is 1-based."""

    kind: str
    source: str
    line: int
    number: int = 0  # 1-based ordinal among the notebook's code cells (0 for markdown)
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Notebook:
    """A parsed notebook: its path, front matter and cells in order."""

    path: Path
    metadata: dict
    cells: tuple[Cell, ...]

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "code")

    @property
    def is_notebook(self) -> bool:
        """True when the front matter declares a kernel (a page that executes)."""
        return "kernelspec" in self.metadata


def _front_matter(path: Path, content: str, line: int) -> dict:
    try:
        data = yaml.safe_load(content) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = line + 1 + (mark.line if mark else 0)
        raise NotebookError.at(path, where, f"front matter is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise NotebookError.at(path, line, "front matter must be a YAML mapping")
    return data


def _code_cell(path: Path, token, number: int) -> Cell:
    try:
        options, body = read_fenced_cell(token, number, "Code")
    except MystMetadataParsingError as err:
        raise NotebookError.at(path, token.map[0] + 1, str(err)) from err
    content_lines = token.content.splitlines()
    # The body is the tail of the fence content; the fence line itself is map[0].
    first = token.map[0] + 2 + (len(content_lines) - len(body))
    return Cell("code", "\n".join(body), first, number, options or {})


def parse_text(text: str, path: Path) -> Notebook:
    """Parse notebook text; ``path`` is used in messages and kept on the result."""
    tokens = get_parser().parse(text)
    lines = text.splitlines()
    metadata: dict = {}
    cells: list[Cell] = []
    cursor = 0  # first line (0-based) not yet assigned to a cell
    number = 0

    def flush_markdown(upto: int) -> None:
        chunk = "\n".join(lines[cursor:upto]).strip("\n")
        if chunk.strip():
            offset = next(i for i, ln in enumerate(lines[cursor:upto]) if ln.strip())
            cells.append(Cell("markdown", chunk, cursor + offset + 1))

    for token in tokens:
        if token.type == "front_matter":
            metadata = _front_matter(path, token.content, token.map[0] + 1)
            cursor = token.map[1]
        elif token.type == "fence" and token.info.strip().startswith(CODE_CELL):
            flush_markdown(token.map[0])
            number += 1
            cells.append(_code_cell(path, token, number))
            cursor = token.map[1]
    flush_markdown(len(lines))
    return Notebook(path, metadata, tuple(cells))


def front_matter_line(path: Path, key: str) -> int:
    """The line of top-level ``key`` (such as ``smoke:``) in a Markdown source's front
    matter; 1 when it is not there or the file cannot be read."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    if path.suffix != ".md" or not lines or lines[0].strip() != "---":
        return 1
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            break
        if line.startswith(key):
            return number
    return 1


def read_notebook(path: Path) -> Notebook:
    """Read and parse the MyST notebook at ``path``."""
    try:
        text = read_source(path)
    except ProblemError as err:
        raise NotebookError(err.problems) from None
    return parse_text(text, Path(path))
