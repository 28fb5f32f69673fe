"""Generate the ``dlbook`` library and its API page from the book (``tools lib``).

Reads the pages in TOC order, collects the ``#@save`` blocks (:mod:`tools.library.saved`),
resolves them (:mod:`tools.library.model`), renders the modules
(:mod:`tools.library.codegen`, imports laid out by one ruff pass:
:func:`tools.library.imports.sort_imports`) and ``book/api.md``
(:mod:`tools.library.apiref`), and says what writing them would change. Any problem
stops everything before a file is written; only files that carry the generated header are
ever rewritten or deleted.
:func:`refresh` is what every command that executes calls first.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

from jupytext.myst import get_parser

from tools.core.files import read_source, write_atomic
from tools.core.memo import FileMemo, Memo, digest_of
from tools.core.notebook import Notebook, NotebookError, parse_text
from tools.core.problems import Problem, ProblemError, say
from tools.core.toc import TocError, toc_sources
from tools.library.apiref import render_api
from tools.library.codegen import render_init, render_module
from tools.library.header import is_generated
from tools.library.imports import sort_imports
from tools.library.model import Library, resolve
from tools.library.saved import MARK, Section, saved_blocks

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

PACKAGE = "dlbook"
API_PAGE = "book/api.md"
FALLBACK_VERSION = "0.0.0"


class ExtractError(ProblemError):
    """Problems that stop the library from being generated."""


def library_sources(book: Path) -> list[Path]:
    """The book's Markdown pages in TOC order, except the API page this command writes.

    Before the first run the API page does not exist yet although the TOC names it."""
    api = book / API_PAGE
    sources = toc_sources(book, optional=frozenset({API_PAGE.rsplit(".", 1)[0], API_PAGE}))
    return [p for p in sources if p.suffix == ".md" and p != api]


def page_heading(nb: Notebook) -> tuple[str | None, str]:
    """(label, title) of the page's H1; the label is the ``(name)=`` line right above.

    Only the start of the markdown cell holding the H1 is parsed, up to that line."""
    parser = get_parser()
    for cell in nb.cells:
        if cell.kind != "markdown":
            continue
        lines = cell.source.split("\n")
        upto = next((n for n, line in enumerate(lines, 1) if line.startswith("# ")),
                    len(lines))
        tokens = parser.parse("\n".join(lines[:upto]))
        for number, token in enumerate(tokens):
            if token.type == "heading_open" and token.tag == "h1":
                before = tokens[number - 1] if number else None
                label = before.content.strip() if before and before.type == "myst_target" \
                    else None
                return label, tokens[number + 1].content.strip()
    return None, nb.path.stem


def _relative(book: Path, path: Path) -> str:
    try:
        return path.relative_to(book).as_posix()
    except ValueError:
        return path.resolve().relative_to(book.resolve()).as_posix()


def read_page(path: Path, rel: str, index: int) -> tuple[list, list[Problem], str | None]:
    """The saved blocks of one page, its problems, and its title if it is a chapter's
    index page (``rel``: its path in the book; ``index``: its place in the TOC)."""
    try:
        text = read_source(path)
    except ProblemError as err:
        return [], list(err.problems), None
    is_index = path.name == "index.md" and rel.startswith("chapters/")
    if MARK not in text and not is_index:
        return [], [], None
    try:
        nb = parse_text(text, path)
    except NotebookError as err:
        return [], list(err.problems), None
    label, title = page_heading(nb)
    if MARK not in text:
        return [], [], title
    found, trouble = saved_blocks(nb, Section(path, rel, index, label, title))
    return found, trouble, title if is_index else None


def collect(book: Path) -> tuple[list, dict[str, str]]:
    """The saved blocks of the book in order, and the chapter titles by folder. A page
    whose file and place in the TOC are as when it was last read is not read again."""
    blocks, problems, titles = [], [], {}
    memo = FileMemo(book, "library")
    for index, path in enumerate(library_sources(book)):
        rel = _relative(book, path)
        found, trouble, title = memo.value(path, lambda p, r=rel, i=index: read_page(p, r, i),
                                           extra=(rel, index))
        if title is not None:
            titles[rel.rsplit("/", 1)[0]] = title
        blocks += found
        problems += trouble
    memo.save()
    if problems:
        raise ExtractError(problems)
    return blocks, titles


def project_version(book: Path) -> str:
    pyproject = book / "pyproject.toml"
    if tomllib is None or not pyproject.is_file():
        return FALLBACK_VERSION
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return str(data.get("project", {}).get("version", FALLBACK_VERSION))


def in_book_order(problems: list[Problem], blocks: list) -> list[Problem]:
    """``problems`` sorted by page (in book order), then line."""
    pages = {saved.section.path: saved.section.index for saved in blocks}
    return sorted(set(problems), key=lambda p: (pages.get(p.path, -1), p.line, p.message))


def handwritten_modules(book: Path) -> frozenset[str]:
    """Modules of ``dlbook/`` written by hand (without the generated header)."""
    package = book / PACKAGE
    found = package.glob("*.py") if package.is_dir() else []
    return frozenset(p.stem for p in found if p.stem != "__init__" and not is_generated(p))


def generate(book: Path) -> tuple[Library, dict[str, str]]:
    """The library and the text of every generated file, by path relative to ``book``.

    What it generates depends only on the saved blocks, the chapter titles, the modules
    written by hand and the version, so it is remembered under a digest of them."""
    blocks, titles = collect(book)
    handwritten = handwritten_modules(book)
    inputs = (blocks, titles, tuple(sorted(handwritten)), project_version(book))
    memo = Memo(book, "library-files")
    check = digest_of(inputs)
    hit, remembered = memo.get("generated", check)
    if hit:
        return remembered
    library, files = _generate(book, *inputs)
    memo.put("generated", check, (library, files))
    memo.save()
    return library, files


def _generate(book: Path, blocks: list, titles: dict[str, str], handwritten: tuple[str, ...],
              version: str) -> tuple[Library, dict[str, str]]:
    library, problems = resolve(blocks, frozenset(handwritten))
    if problems:
        raise ExtractError(in_book_order(problems, blocks))
    files: dict[str, str] = {}
    for index, module in enumerate(library.modules):
        text, trouble = render_module(library, index, titles)
        files[f"{PACKAGE}/{module.name}.py"] = text
        problems += trouble
    if problems:
        raise ExtractError(in_book_order(problems, blocks))
    files[f"{PACKAGE}/__init__.py"] = render_init(library, version)
    files[API_PAGE] = render_api(library, titles)
    try:  # one ruff pass lays out the imports of every module
        files = sort_imports(files)
    except ProblemError as err:
        raise ExtractError(Problem(book / p.path, p.line, p.message)
                           for p in err.problems) from err
    return library, files


@dataclass(frozen=True)
class Change:
    path: str  # relative to the book
    old: str | None  # None: a new file
    new: str | None  # None: a stale generated file to delete


def changes(book: Path, files: dict[str, str]) -> list[Change]:
    """What writing ``files`` would change; refuses to touch hand-written files."""
    found, refused = [], []
    for rel, text in files.items():
        path = book / rel
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old is not None and not is_generated(path):
            refused.append(Problem(path, 1, "this file is not generated (no generated "
                                            "header): rename it or remove it"))
        elif old != text:
            found.append(Change(rel, old, text))
    package = book / PACKAGE
    for path in sorted(package.glob("*.py")) if package.is_dir() else []:
        rel = f"{PACKAGE}/{path.name}"
        if rel not in files and is_generated(path):
            found.append(Change(rel, path.read_text(encoding="utf-8"), None))
    if refused:
        raise ExtractError(refused)
    return found


def unified_diff(change: Change) -> str:
    old = (change.old or "").splitlines(keepends=True)
    new = (change.new or "").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"a/{change.path}", f"b/{change.path}"))


def apply(book: Path, found: list[Change]) -> None:
    for change in found:
        path = book / change.path
        if change.new is None:
            path.unlink()
            continue
        write_atomic(path, change.new)


def refresh(book: Path, stream=None) -> bool:
    """Regenerate the library from the chapters before anything executes against it.

    Returns False, with the problems printed as ``file:line: ...`` and nothing written,
    when a ``#@save`` block is invalid. A book whose ``dlbook/__init__.py`` is written by
    hand (a test fixture standing in for the generated library) is left alone.
    """
    stream = stream or sys.stderr
    init = book / PACKAGE / "__init__.py"
    if init.is_file() and not is_generated(init):
        return True
    try:
        library, files = generate(book)
        found = changes(book, files) if library.modules else []
    except TocError:
        return True  # not a library problem: the TOC check that follows reports it
    except ExtractError as err:
        print(err, file=stream)
        return False
    if found:
        apply(book, found)
        say("library regenerated from the chapters: "
            f"{', '.join(change.path for change in found)}", stream)
    return True
