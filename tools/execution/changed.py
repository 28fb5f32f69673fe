"""The notebooks a change touches (``tools changed --base REF``), in book order.

CI executes only these on a pull request (``tools execute --profile smoke $(tools changed
--base origin/main)``). The set is, in book order:

1. the pages of the TOC under ``chapters/`` or ``book/`` that differ from the merge base
   of REF and HEAD (committed, staged or not, or new and untracked);
2. every notebook that uses a library definition whose code changed, transitively: the
   library is generated in memory from the chapters at the merge base and from the
   working tree (:func:`tools.library.generate.generate`, hand-written ``dlbook`` modules
   included), each definition's digest compared (:mod:`tools.library.graph`: docstrings and
   layout do not count), and each notebook's dependencies taken from the execution
   engine's graph (:func:`tools.library.deps.notebook_dependencies`).

When the library cannot be generated on either side (a broken ``#@save`` block, which
``make check`` reports), every notebook that uses the library is listed: too many runs
beat a stale page. Paths are printed joined to ``--book``, so they work from the current
folder.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tools.core.notebook import NotebookError, read_notebook
from tools.core.problems import say
from tools.core.toc import TocError, toc_sources
from tools.library.deps import notebook_dependencies
from tools.library.generate import PACKAGE, ExtractError, generate
from tools.library.graph import Library, Module, parse_module
from tools.library.header import is_generated

PAGE_ROOTS = ("chapters/", "book/")
LIBRARY_INPUTS = ("chapters/", "book/", f"{PACKAGE}/", "_toc.yml")


class GitError(Exception):
    """A git command that failed; the message is git's."""


def git(cwd: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _names(output: bytes) -> list[str]:
    return [name for name in output.decode().split("\0") if name]


def changed_files(book: Path, base: str) -> tuple[list[str], str]:
    """Files that differ from the merge base of ``base`` and HEAD, relative to the book,
    and that merge base."""
    top = Path(git(book, "rev-parse", "--show-toplevel").decode().strip())
    try:
        since = git(book, "merge-base", base, "HEAD").decode().strip()
    except GitError:
        since = git(book, "rev-parse", "--verify", f"{base}^{{commit}}").decode().strip()
    names = _names(git(book, "diff", "--name-only", "--no-renames", "-z", since, "--"))
    names += _names(git(book, "ls-files", "--others", "--exclude-standard", "--full-name",
                        "-z"))
    root = book.resolve()
    found = []
    for name in dict.fromkeys(names):
        path = (top / name).resolve()
        if path == root or root in path.parents:
            found.append(path.relative_to(root).as_posix())
    return found, since


def _library(files: dict[str, str]) -> Library:
    """The library made of ``files`` (``dlbook/x.py`` → source)."""
    modules: dict[str, Module] = {}
    for rel, text in sorted(files.items()):
        parts = [PACKAGE, *Path(rel).with_suffix("").parts[1:]]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = parse_module(name, text, PACKAGE, is_package)
    modules.setdefault(PACKAGE, Module(PACKAGE))
    return Library(PACKAGE, modules)


def library_files(book: Path) -> dict[str, str]:
    """The library of the book as ``tools lib`` would write it: generated modules from
    the chapters, plus the hand-written modules of ``dlbook/``; raises ExtractError."""
    _, generated = generate(book)
    files = {rel: text for rel, text in generated.items() if rel.startswith(f"{PACKAGE}/")}
    package = book / PACKAGE
    for path in sorted(package.glob("*.py")) if package.is_dir() else []:
        rel = f"{PACKAGE}/{path.name}"
        if rel not in files and not is_generated(path):
            files[rel] = path.read_text(encoding="utf-8")
    return files


def base_tree(book: Path, since: str, dest: Path) -> Path:
    """The book's files at commit ``since``, unpacked under ``dest``."""
    # from the top folder: inside it, git reads tree paths relative to the current one
    top = Path(git(book, "rev-parse", "--show-toplevel").decode().strip())
    prefix = git(book, "rev-parse", "--show-prefix").decode().strip()
    archive = git(top, "archive", "--format=tar", f"{since}:{prefix}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def changed_symbols(book: Path, since: str) -> tuple[set[str] | None, Library | None]:
    """``module:name`` of every library definition that differs between ``since`` and
    the working tree, and the working tree's library; (None, None) when the library
    cannot be generated on one side."""
    try:
        head = _library(library_files(book))
        with tempfile.TemporaryDirectory(prefix="dlbook-base-") as tmp:
            base = _library(library_files(base_tree(book, since, Path(tmp))))
    except (ExtractError, TocError):
        return None, None
    symbols = set()
    for name in set(head.modules) | set(base.modules):
        old, new = base.modules.get(name), head.modules.get(name)
        old_digests = old.digests if old else {}
        new_digests = new.digests if new else {}
        symbols |= {f"{name}:{symbol}" for symbol in set(old_digests) | set(new_digests)
                    if old_digests.get(symbol) != new_digests.get(symbol)}
    return symbols, head


def affected(book: Path, base: str) -> list[str]:
    """The affected pages, relative to the book, in TOC order."""
    files, since = changed_files(book, base)
    pages = [p.resolve().relative_to(book.resolve()).as_posix() for p in toc_sources(book)]
    changed = set(files)
    chosen = {rel for rel in pages if rel in changed and rel.startswith(PAGE_ROOTS)}
    if any(f.startswith(LIBRARY_INPUTS) for f in files):
        symbols, library = changed_symbols(book, since)
        if symbols is None:
            say("changed: the library cannot be generated; listing every notebook that "
                "uses it")
        for rel in pages:
            if rel in chosen or not rel.endswith(".md") or symbols == set():
                continue
            uses = _uses(book / rel, library)
            if uses and (symbols is None or uses & symbols):
                chosen.add(rel)
    return [rel for rel in pages if rel in chosen]


def _uses(path: Path, library: Library | None) -> set[str]:
    """The ``module:name`` library symbols a notebook uses (``{"*"}`` when the library
    is unknown and the notebook imports it)."""
    try:
        nb = read_notebook(path)
    except NotebookError:
        return set()
    if not nb.is_notebook:
        return set()
    cells = [cell.source for cell in nb.code_cells]
    if library is None:
        return {"*"} if any(PACKAGE in source for source in cells) else set()
    return set(notebook_dependencies(cells, library))
