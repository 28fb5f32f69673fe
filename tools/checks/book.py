"""Lint the book's sources (``tools check``): every problem, with its file and line.

``make check`` runs it; so does CI on every pull request, before anything executes. The
rules (docs in CONTRIBUTING.md) live in three modules, one family each:
:mod:`tools.checks.structure` (front matter, title and label, exercises, stored outputs,
TOC and ``chapters/`` in sync), :mod:`tools.checks.refs` (references, citations, images
and alt text) and :mod:`tools.checks.code` (cell syntax, ruff, ``#@save``). All problems
are collected, sorted by page in book order and line, and printed one per line; under
GitHub Actions each also becomes an annotation on the pull request's diff. Exit status:
0 when the book is clean, 1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.checks import code as check_code
from tools.checks import refs as check_refs
from tools.checks import structure as check_structure
from tools.checks.pages import Page, markdown_parser, tokenize
from tools.core.files import read_source
from tools.core.mystnb import ConfigError, book_settings, read_config
from tools.core.notebook import parse_text
from tools.core.problems import Problem, ProblemError
from tools.core.toc import TOC

DEFAULT_BIB = ["book/references.bib"]


@dataclass
class Book:
    """The book as the rules see it: its pages in TOC order and its configuration."""

    root: Path  # as given: every reported path starts with it
    pages: list[Page] = field(default_factory=list)
    lines: dict[Path, list[str]] = field(default_factory=dict)  # page path -> text lines
    exclude: list[str] = field(default_factory=list)
    bibfiles: list[Path] = field(default_factory=list)


def read_pages(root: Path, sources: list[Path]) -> tuple[Book, list[Problem]]:
    """Parse every source (``.md`` pages fully, ``.ipynb`` for their outputs only);
    raises ConfigError for a ``_config.yml`` that cannot be read."""
    config = read_config(root)
    book = Book(root, exclude=list(config.get("exclude_patterns") or []),
                bibfiles=[root / f for f in config.get("bibtex_bibfiles") or DEFAULT_BIB])
    parser = markdown_parser(book_settings(root).md_config)
    problems: list[Problem] = []
    for path in sources:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        if path.suffix == ".ipynb":
            book.pages.append(Page(path, rel, None))
            problems += check_structure.ipynb_output_problems(path, path)
            continue
        try:
            text = read_source(path)
            notebook = parse_text(text, path)
        except ProblemError as err:
            problems += err.problems
            continue
        book.pages.append(Page(path, rel, notebook, tuple(tokenize(parser, text))))
        book.lines[path] = text.splitlines()
    return book, problems


def page_problems(book: Book) -> list[Problem]:
    """The rules that look at one page at a time, and those that need every page."""
    found: list[Problem] = []
    targets = check_refs.collect_targets(book.pages, book.bibfiles)
    found += targets.problems
    for page in book.pages:
        lines = book.lines.get(page.path, [])
        found += check_structure.front_matter_problems(page)
        found += check_structure.title_problems(page)
        found += check_structure.exercises_problems(page, max(len(lines), 1))
        found += check_structure.myst_output_problems(page, lines)
        found += check_structure.option_continuation_problems(page)
        found += check_structure.math_problems(page)
        found += check_refs.reference_problems(page, targets)
        found += check_refs.image_problems(book.root, page, lines)
    found += check_code.syntax_problems(book.pages)
    found += check_code.machinery_problems(book.pages)
    found += check_code.ruff_problems(book.root, book.pages)
    return found


def check_book(root: Path) -> list[Problem]:
    """Every problem of the book at ``root``, in book order."""
    toc = root / TOC
    entries, problems = check_structure.toc_entries(root)
    sources = list(dict.fromkeys(e.path for e in entries if e.path is not None))
    try:
        book, trouble = read_pages(root, sources)
    except ConfigError as err:  # nothing else can be judged without the settings
        return [*err.problems, *problems]
    problems += trouble
    for path in check_structure.chapter_files(root, book.exclude):
        if path.suffix == ".ipynb" and path not in sources:
            problems += check_structure.ipynb_output_problems(path, path)
    if entries:  # an unreadable TOC is reported once, not as every page missing from it
        problems += check_structure.toc_sync_problems(root, root, entries, book.exclude)
    problems += page_problems(book)
    problems += check_code.saved_problems(root)
    problems += check_code.library_machinery_problems(root)
    order = {str(toc): -1, **{str(p.path): n for n, p in enumerate(book.pages)}}
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (order.get(str(p.path), len(order)), str(p.path),
                                         p.line, p.message))
