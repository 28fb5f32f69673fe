"""The page model of ``tools check``: every page's MyST tokens with the line each starts on.

A page is parsed twice, each time by the parser that owns that part: the code cells by
:mod:`tools.core.notebook` (options, sources, lines), the Markdown by MyST-Parser's own
markdown-it configuration (the extensions of ``_config.yml``: dollarmath, colon fences,
...), so the checker sees exactly the labels, roles, equations and directives that
Sphinx will see. The content of a directive (a figure caption, an admonition) is parsed
again, recursively, and its tokens join the page's with their lines in the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from markdown_it.token import Token

from tools.core.markdown import NOT_MARKDOWN, directive_name, split_options
from tools.core.markdown import markdown_parser as markdown_parser  # used by checks.book
from tools.core.notebook import Notebook


@dataclass(frozen=True)
class Located:
    """A markdown-it token, the 1-based line it starts on, and how deep in directives."""

    token: Token
    line: int
    depth: int = 0


@dataclass(frozen=True)
class Directive:
    """A ``{name}`` fence or colon fence: its argument, options and where it starts."""

    name: str
    argument: str
    options: dict
    line: int  # the fence line
    body_line: int  # the first line after the options


@dataclass(frozen=True)
class Page:
    """A source page of the book: where it is, its notebook model and its tokens."""

    path: Path  # as reported: the book folder joined with ``rel``
    rel: str  # POSIX, relative to the book
    notebook: Notebook | None  # None for an .ipynb source
    tokens: tuple[Located, ...] = ()

    @property
    def is_section(self) -> bool:
        """A section of a chapter: ``chapters/<chapter>/<slug>.md``, not the index."""
        parts = self.rel.split("/")
        return len(parts) == 3 and parts[0] == "chapters" and parts[2] != "index.md"

    @property
    def is_chapter_index(self) -> bool:
        parts = self.rel.split("/")
        return len(parts) == 3 and parts[0] == "chapters" and parts[2] == "index.md"

    def directives(self) -> Iterator[tuple[Located, Directive]]:
        for item in self.tokens:
            directive = directive_of(item)
            if directive is not None:
                yield item, directive


def directive_of(item: Located) -> Directive | None:
    named = directive_name(item.token)
    if named is None:
        return None
    options, used = split_options(item.token.content)
    return Directive(named[0], named[1], options, item.line, item.line + 1 + used)


def tokenize(parser, text: str, first_line: int = 1, depth: int = 0) -> list[Located]:
    """The tokens of ``text`` (which starts on ``first_line`` of the file), with the
    tokens of every Markdown directive body spliced in after their directive."""
    found: list[Located] = []
    for token in parser.parse(text, {}):
        line = first_line + (token.map[0] if token.map else 0)
        item = Located(token, line, depth)
        found.append(item)
        directive = directive_of(item)
        if directive is None or directive.name in NOT_MARKDOWN:
            continue
        body = token.content.split("\n")[directive.body_line - line - 1:]
        found += tokenize(parser, "\n".join(body), directive.body_line, depth + 1)
    return found


def inline_children(item: Located) -> Iterator[tuple[Token, int]]:
    """The inline tokens of a block, each with the line it is on."""
    line = item.line
    for child in item.token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            line += 1
        yield child, line
        line += child.content.count("\n") if child.type == "text" else 0


def code_cell_fence_line(text_lines: list[str], first_body_line: int) -> int:
    """The ``{code-cell}`` fence line of a cell whose code starts on ``first_body_line``."""
    for number in range(first_body_line - 1, 0, -1):
        stripped = text_lines[number - 1].lstrip()
        if stripped.startswith(("```", "~~~")) and "{code-cell}" in stripped:
            return number
    return first_body_line
