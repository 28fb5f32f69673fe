"""The book's table of contents, ``_toc.yml``: its pages in reading order, with lines.

``sphinx-external-toc`` (the parser Jupyter Book itself uses) reads the TOC and decides
what it means: its format, its documents, their reading order. YAML is composed only to
find *where* things are, so that every problem names a line of ``_toc.yml``:
:func:`file_nodes` is the one walk over the YAML nodes, used for the line of each entry,
for the line of an error sphinx-external-toc reports at a path such as
``/parts/0/chapters/1``, and by :mod:`tools.core.sections` to insert a new section.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sphinx_external_toc.api import FileItem, SiteMap
from sphinx_external_toc.parsing import MalformedError, parse_toc_data

from tools.core.problems import Problem, ProblemError, yaml_error_location
from tools.core.yamlio import read_yaml

TOC = "_toc.yml"
SUFFIXES = (".md", ".ipynb")
_ERROR_PATH = re.compile(r"@ '(/[^']*)'\s*$")
_USED_TWICE = re.compile(r"used multiple times: '([^']+)'")


class TocError(ProblemError):
    """A table of contents that cannot be used, with the line of each problem."""


@dataclass(frozen=True)
class TocEntry:
    """A page the TOC names: as written, the line it is on, and its file (None: none)."""

    name: str
    line: int
    path: Path | None


@dataclass(frozen=True)
class Toc:
    """The parsed table of contents: every entry in reading order, and sphinx-external-toc's
    site map (parts, captions, numbering) for the stages that need the structure."""

    path: Path
    entries: tuple[TocEntry, ...]
    site_map: SiteMap = field(compare=False, repr=False)

    def missing(self, optional: frozenset[str] = frozenset()) -> list[Problem]:
        """A problem for each entry that names no file, except those in ``optional``."""
        return [Problem(self.path, e.line, f"'{e.name}' names no file ({e.name}.md or "
                                           ".ipynb)")
                for e in self.entries if e.path is None and e.name not in optional]


def named_file(book: Path, name: str) -> Path | None:
    """The file a TOC entry names: ``name`` itself, or with .md or .ipynb appended."""
    stem = book / name
    if stem.suffix in SUFFIXES and stem.is_file():
        return stem
    return next((p for p in (stem.with_name(stem.name + s) for s in SUFFIXES)
                 if p.is_file()), None)


def file_nodes(node: yaml.Node) -> Iterator[tuple[yaml.MappingNode, yaml.ScalarNode]]:
    """Every ``file:`` or ``root:`` entry of a composed TOC, in document order: the
    mapping that holds it and its scalar value (which knows its line)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value in ("file", "root") and isinstance(value, yaml.ScalarNode):
                yield node, value
            else:
                yield from file_nodes(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from file_nodes(item)


def _node_at(node: yaml.Node, path: str) -> yaml.Node:
    """The node at a sphinx-external-toc error path (``/parts/0/chapters/1``), or the
    deepest node on the way there."""
    for step in (s for s in path.split("/") if s):
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and step.isdigit() \
                and int(step) < len(node.value):
            found = node.value[int(step)]
        else:
            found = None
        if found is None:
            break
        node = found
    return node


def _error_line(node: yaml.Node, message: str) -> int:
    path = _ERROR_PATH.search(message)
    if path:
        return _node_at(node, path.group(1)).start_mark.line + 1
    twice = _USED_TWICE.search(message)
    if twice:
        lines = [v.start_mark.line + 1 for _, v in file_nodes(node)
                 if v.value == twice.group(1)]
        return lines[-1] if lines else 1
    return 1


def _compose(toc: Path) -> tuple[yaml.Node, object]:
    """The YAML nodes (for lines) and the data (for sphinx-external-toc) of the TOC."""
    try:
        return read_yaml(toc)
    except OSError as err:
        raise TocError.at(toc, 1, "table of contents not found") from err
    except ProblemError as err:
        raise TocError(err.problems) from None
    except yaml.YAMLError as err:
        line, _, problem = yaml_error_location(err)
        raise TocError.at(toc, line, f"malformed YAML: {problem}") from err


def reading_order(site_map: SiteMap) -> list[str]:
    """Document names in reading order: each document, then its subtrees' items."""
    order: list[str] = []

    def visit(docname: str) -> None:
        order.append(docname)
        for tree in site_map[docname].subtrees:
            for item in tree.items:
                if isinstance(item, FileItem):
                    visit(str(item))

    visit(site_map.root.docname)
    return order


def read_toc(book: Path, name: str = TOC) -> Toc:
    """Parse the book's TOC; raises TocError naming the line when it cannot be used.

    Entries that name no file are kept (``path`` None): :meth:`Toc.missing` lists them."""
    toc = book / name
    node, data = _compose(toc)
    if not isinstance(data, dict):
        raise TocError.at(toc, 1, "expected a mapping with 'format: jb-book' and a 'root'")
    try:
        site_map = parse_toc_data(data)
    except MalformedError as err:
        raise TocError.at(toc, _error_line(node, str(err)), str(err)) from err
    lines = {}
    for _, value in file_nodes(node):
        lines.setdefault(value.value, value.start_mark.line + 1)
    entries = tuple(TocEntry(doc, lines.get(doc, 1), named_file(book, doc))
                    for doc in reading_order(site_map))
    return Toc(toc, entries, site_map)


def toc_sources(book: Path, name: str = TOC,
                optional: frozenset[str] = frozenset()) -> list[Path]:
    """Source files named by the book's TOC, in reading order; raises TocError.

    Entries listed in ``optional`` (e.g. a page a command is about to generate) are
    skipped when their file does not exist yet."""
    toc = read_toc(book, name)
    missing = toc.missing(optional)
    if missing:
        raise TocError(missing)
    return [e.path for e in toc.entries if e.path is not None]
