"""Read ``_toc.yml`` and list the book's source files in reading order, with clear errors."""

from __future__ import annotations

from pathlib import Path

import yaml

SUFFIXES = (".md", ".ipynb")


class TocError(Exception):
    """A table of contents that cannot be used; the message starts with ``path:line:``."""


def _files(node, found: list[str]) -> None:
    if isinstance(node, dict):
        if "file" in node:
            found.append(str(node["file"]))
        for key in ("root", ):
            if key in node:
                found.append(str(node[key]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                _files(child, found)
    elif isinstance(node, list):
        for child in node:
            _files(child, found)


def named_file(book: Path, name: str) -> Path | None:
    """The file a TOC entry names: ``name`` itself, or with .md or .ipynb appended."""
    stem = book / name
    if stem.suffix in SUFFIXES and stem.is_file():
        return stem
    return next((p for p in (stem.with_name(stem.name + s) for s in SUFFIXES)
                 if p.is_file()), None)


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if name in line:
            return number
    return 1


def toc_sources(book: Path, toc_name: str = "_toc.yml",
                optional: frozenset[str] = frozenset()) -> list[Path]:
    """Source files named by the book's TOC, in order; raises TocError naming the line.

    Entries listed in ``optional`` (e.g. a page a command is about to generate) are
    skipped when their file does not exist yet."""
    toc = book / toc_name
    if not toc.is_file():
        raise TocError(f"{toc}:1: table of contents not found")
    text = toc.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(err, "problem", None) or str(err)
        raise TocError(f"{toc}:{line}: malformed YAML: {problem}") from err
    if not isinstance(data, dict) or "root" not in data:
        raise TocError(f"{toc}:1: expected a mapping with a 'root' entry (format: jb-book)")
    names: list[str] = []
    _files(data, names)
    sources = []
    for name in names:
        path = named_file(book, name)
        if path is None and name in optional:
            continue
        if path is None:
            line = _line_of(text, name)
            raise TocError(f"{toc}:{line}: '{name}' names no file ({name}.md or .ipynb)")
        sources.append(path)
    return sources
