"""Helpers of the ``tools check`` tests: a copy of the clean fixture book to break."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tools.checks.book import check_book
from tools.core.notebook import MYST_FRONT_MATTER

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "check" / "good"
SECTION = "chapters/01-basics/second-steps.md"

FRONT = MYST_FRONT_MATTER


def book_copy(tmp_path: Path) -> Path:
    """The clean fixture book with the project's real ``_config.yml``."""
    book = tmp_path / "book"
    shutil.copytree(FIXTURE, book)
    shutil.copy2(REPO / "_config.yml", book / "_config.yml")
    return book


def section(body: str, front: str = FRONT, label: str = "(sec-second-steps)=",
            title: str = "# Second Steps", exercises: str = "## Exercises\n\n1. Do it.\n"):
    """A section page: front matter, label, title, ``body``, exercises."""
    parts = [front, label, title, "", textwrap.dedent(body).strip("\n"), "", exercises]
    return "\n".join(p for p in parts if p is not None)


def write(book: Path, rel: str, text: str) -> Path:
    path = book / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of ``text`` that contains ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def problems(book: Path) -> list[str]:
    """``tools check``'s problems, with paths relative to the book."""
    return [str(p).removeprefix(f"{book}/") for p in check_book(book)]


def broken(tmp_path: Path, text: str, rel: str = SECTION) -> tuple[list[str], str]:
    """The problems of the fixture book once ``rel`` holds ``text``."""
    book = book_copy(tmp_path)
    write(book, rel, text)
    return problems(book), text
