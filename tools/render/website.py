"""Where the website shows each page, section, figure and equation, and under what number.

The exported notebooks (:mod:`tools.render.commonmark`) turn a ``{ref}`` into a link to
the website that reads "Section 7.2, Title", so they need the site's numbers. Both export
paths (``tools notebooks`` from the cache, and the Sphinx extension inside the build) get
them here, from the sources and the TOC, numbered the way the site's Sphinx numbers them:

- **sections**: Sphinx's ``assign_section_numbers`` with sphinx-multitoc-numbering (which
  Jupyter Book loads): each numbered part of ``_toc.yml`` continues the chapter numbers of
  the one before; a chapter's sections follow the headings of its own page, because
  sphinx-external-toc appends the chapter's toctree to the end of the page's last
  top-level section; every heading of a numbered page gets a number;
- **figures, tables, labelled equations** (``numfig``, ``math_numfig``): Sphinx's
  ``assign_figure_numbers``: walking the pages from the root in TOC order, each one that
  has an id (a name or a label) and, except equations, a caption is numbered by its
  section's number cut to ``numfig_secnum_depth``, plus a counter per figure type and
  prefix, so "7.2.1" is the first figure of section 7.2, subsections included;
- **anchors**: docutils' ``make_id`` of the label (``#sec-x``, ``#fig-x``,
  ``#equation-eq-x``);
- **URLs**: ``html.baseurl`` of ``_config.yml`` (Sphinx's ``html_baseurl``) joined with
  the page's path and ``.html``.

``tests/test_commonmark.py`` builds a fixture book and compares every number, anchor and
page computed here with the HTML Sphinx wrote.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from docutils.nodes import make_id
from myst_parser.config.main import MdParserConfig

from tools.core.files import read_source
from tools.core.markdown import NOT_MARKDOWN, directive_name, markdown_parser, split_options
from tools.core.memo import FileMemo, settings_digest
from tools.core.mystnb import CONFIG, book_settings, read_config, sphinx_config
from tools.core.toc import TOC, read_toc, reading_order
from tools.render.citations import read_bibliography

FIGURES = frozenset({"figure"})
TABLES = frozenset({"table", "list-table", "csv-table"})
WORDS = {"figure": "Figure", "table": "Table"}


@dataclass(frozen=True)
class Target:
    """Something a role points at: its page, its anchor there ("" for the page itself),
    its kind (section, figure, table, equation, other), its number on the site (() when
    none) and its title (a heading's or a caption's Markdown)."""

    docname: str
    anchor: str
    kind: str
    number: tuple[int, ...] = ()
    title: str = ""

    @property
    def numbered(self) -> str:
        return ".".join(str(n) for n in self.number)


@dataclass(frozen=True)
class Website:
    """What the exported notebooks need to know of the book's website."""

    book: Path
    base_url: str  # "" when _config.yml sets no html.baseurl: links are page-relative
    md_config: MdParserConfig = field(compare=False)
    pages: dict[str, Target] = field(default_factory=dict)  # docname -> the page's title
    labels: dict[str, Target] = field(default_factory=dict)  # {ref}, {numref}; lower case
    equations: dict[str, Target] = field(default_factory=dict)  # {eq}
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> authors, year
    bibliography: str | None = None  # the page with the {bibliography} directive
    eqref_format: str = "({number})"

    @classmethod
    def unknown(cls) -> Website:
        """A website that knows no page: MyST syntax is still recognised (with the
        extensions that change it: math and colon fences) and rewritten, without links."""
        extensions = ["amsmath", "colon_fence", "dollarmath"]
        return cls(Path("."), "", MdParserConfig(enable_extensions=extensions))

    def url(self, target: Target, origin: str) -> str:
        """The URL of ``target`` as a link from the page ``origin`` (a docname)."""
        page = f"{target.docname}.html"
        if self.base_url:
            href = f"{self.base_url.rstrip('/')}/{page}"
        else:
            href = posixpath.relpath(page, posixpath.dirname(origin) or ".")
        return f"{href}#{target.anchor}" if target.anchor else href

    def page(self, reference: str, origin: str) -> Target | None:
        """The page a ``{doc}`` role names: relative to ``origin``, or to the book when it
        starts with ``/``; with or without its suffix."""
        name = reference.strip()
        for suffix in (".md", ".ipynb"):
            name = name.removesuffix(suffix)
        if name.startswith("/"):
            name = name.lstrip("/")
        else:
            name = posixpath.join(posixpath.dirname(origin), name)
        return self.pages.get(posixpath.normpath(name))


# --- the pages as Sphinx sees them: sections, numbered things, toctrees --------------------


@dataclass(eq=False)
class _Section:
    title: str
    names: list[str]
    children: list = field(default_factory=list)  # _Section | _Item | _Toctree, in order
    number: tuple[int, ...] = ()


@dataclass(eq=False)
class _Item:
    kind: str  # "figure", "table", "displaymath" or "other" (a label on anything else)
    names: list[str]
    title: str = ""
    captioned: bool = True
    number: tuple[int, ...] = ()


@dataclass(eq=False)
class _Toctree:
    docs: list[str]
    numbered: int  # 0: not numbered; else the depth


@dataclass(eq=False)
class _Doc:
    name: str
    children: list = field(default_factory=list)  # _Item before the first heading, _Section
    bibliography: bool = False

    def sections(self):
        """Every section of the page, depth first, in document order."""
        todo = [c for c in self.children if isinstance(c, _Section)]
        while todo:
            section = todo.pop(0)
            yield section
            todo[:0] = [c for c in section.children if isinstance(c, _Section)]

    def items(self, node=None):
        """Every numbered-kind item of the page, in document order."""
        for child in (self if node is None else node).children:
            if isinstance(child, _Item):
                yield child
            elif isinstance(child, _Section):
                yield from self.items(child)


def _caption(body: str) -> str:
    """The first paragraph of a directive body, on one line."""
    lines = []
    for line in body.split("\n"):
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip())
    return " ".join(lines)


class _Scanner:
    """Collects a page's sections, labels, figures and equations from its tokens."""

    def __init__(self, parser, doc: _Doc) -> None:
        self.parser, self.doc = parser, doc
        self.open: list[tuple[int, _Section]] = []  # (heading level, section)
        self.pending: list[str] = []  # labels waiting for the next element

    def container(self) -> list:
        return self.open[-1][1].children if self.open else self.doc.children

    def add(self, item: _Item) -> None:
        item.names[:0] = self.pending
        self.pending = []
        self.container().append(item)

    def scan(self, text: str, nested: bool = False) -> None:
        tokens = self.parser.parse(text, {})
        for index, token in enumerate(tokens):
            if token.type == "myst_target":
                self.pending.append(token.content.strip())
            elif token.type == "heading_open" and token.level == 0 and not nested:
                level = int(token.tag[1:])
                while self.open and self.open[-1][0] >= level:
                    self.open.pop()
                section = _Section(tokens[index + 1].content.strip(), self.pending)
                self.pending = []
                self.container().append(section)
                self.open.append((level, section))
            elif token.type == "math_block_label":
                self.add(_Item("displaymath", [token.info.strip()]))
            elif directive_name(token) is not None:
                self.directive(token)
            elif token.map is not None and token.nesting >= 0 and token.type != "inline" \
                    and self.pending:
                self.add(_Item("other", []))

    def directive(self, token) -> None:
        name, argument = directive_name(token)
        options, used = split_options(token.content)
        body = "\n".join(token.content.split("\n")[used:])
        own = [str(options["name"]).strip()] if options.get("name") else []
        if name in FIGURES:
            caption = _caption(body)
            self.add(_Item("figure", own, caption, captioned=bool(caption)))
        elif name in TABLES:
            self.add(_Item("table", own, argument, captioned=bool(argument)))
        elif name == "math" and options.get("label"):
            self.add(_Item("displaymath", [str(options["label"]).strip()]))
        elif name == "code-cell":
            figure = ((options.get("mystnb") or {}).get("figure") or {}) \
                if isinstance(options.get("mystnb"), dict) else {}
            if figure:
                caption = str(figure.get("caption") or "").strip()
                names = [str(figure["name"]).strip()] if figure.get("name") else []
                self.add(_Item("figure", names, caption, captioned=bool(caption)))
            elif self.pending:
                self.add(_Item("other", []))
        else:
            if name == "bibliography":
                self.doc.bibliography = True
            if self.pending:
                self.add(_Item("other", own))
            if name not in NOT_MARKDOWN:
                self.scan(body, nested=True)


def _page_text(path: Path) -> str:
    """A page as MyST Markdown (an ``.ipynb`` as its cells in MyST notation)."""
    if path.suffix != ".ipynb":
        return read_source(path)
    notebook = nbformat.reads(read_source(path), as_version=4)
    parts = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.cell_type == "code":
            meta = yaml.safe_dump(dict(cell.metadata)) if cell.metadata else ""
            options = f"---\n{meta}---\n" if meta else ""
            parts.append(f"```{{code-cell}}\n{options}{cell.source}\n```")
    return "\n\n".join(parts)


def _scan_page(parser, name: str, path: Path | None) -> _Doc:
    doc = _Doc(name)
    if path is not None:
        _Scanner(parser, doc).scan(_page_text(path))
    return doc


# --- numbering, as Sphinx does it ----------------------------------------------------------


class _SectionNumbers:
    """Sphinx's ``assign_section_numbers`` as sphinx-multitoc-numbering changes it."""

    def __init__(self, docs: dict[str, _Doc]) -> None:
        self.docs = docs
        self.last_chapter = 0
        self.assigned: set[str] = set()
        self.numstack: list[int] = []

    def run(self, order: list[str]) -> None:
        for name in order:
            doc = self.docs[name]
            trees = [t for s in doc.sections() for t in s.children
                     if isinstance(t, _Toctree) and t.numbered]
            if not trees:
                continue
            self.assigned.add(name)
            for tree in trees:
                self.numstack = [self.last_chapter]
                self.toctree(tree, tree.numbered)

    def toctree(self, tree: _Toctree, depth: int) -> None:
        if depth == 0:
            return
        for name in tree.docs:
            if name in self.assigned or name not in self.docs:
                continue
            self.assigned.add(name)
            self.entries(self.docs[name].children, depth)

    def entries(self, children: list, depth: int) -> None:
        for child in children:
            if isinstance(child, _Toctree):
                self.toctree(child, depth)
            elif isinstance(child, _Section):
                self.numstack[-1] += 1
                if len(self.numstack) == 1:
                    self.last_chapter += 1
                child.number = tuple(self.numstack) if depth > 0 else ()
                nested = [c for c in child.children if isinstance(c, (_Section, _Toctree))]
                if nested:
                    self.numstack.append(0)
                    self.entries(nested, depth - 1)
                    self.numstack.pop()


class _FigureNumbers:
    """Sphinx's ``assign_figure_numbers``: figures, tables and labelled equations."""

    def __init__(self, docs: dict[str, _Doc], depth: int) -> None:
        self.docs, self.depth = docs, depth
        self.assigned: set[str] = set()
        self.counters: dict[str, dict[tuple[int, ...], int]] = {}

    def doc(self, name: str, secnum: tuple[int, ...]) -> None:
        if name in self.assigned or name not in self.docs:
            return
        self.assigned.add(name)
        self.walk(self.docs[name], self.docs[name].children, secnum)

    def walk(self, doc: _Doc, children: list, secnum: tuple[int, ...]) -> None:
        title = next(doc.sections(), None)
        for child in children:
            if isinstance(child, _Section):
                own = child.number or (title.number if title else ())
                self.walk(doc, child.children, own or secnum)
            elif isinstance(child, _Toctree):
                for name in child.docs:
                    self.doc(name, secnum)
            elif child.kind != "other" and child.names and child.captioned:
                counter = self.counters.setdefault(child.kind, {})
                prefix = secnum[:self.depth]
                counter[prefix] = counter.get(prefix, 0) + 1
                child.number = (*prefix, counter[prefix])


def _number_equations_per_page(docs: dict[str, _Doc]) -> None:
    """Without ``numfig``/``math_numfig``, Sphinx numbers a page's equations 1, 2, ..."""
    for doc in docs.values():
        equations = [i for i in doc.items() if i.kind == "displaymath"]
        for number, item in enumerate(equations, 1):
            item.number = (number,)


def _strip_suffix(name: str) -> str:
    for suffix in (".md", ".ipynb"):
        name = name.removesuffix(suffix)
    return name


def _read_docs(book: Path, parser, memo: FileMemo) -> tuple[dict[str, _Doc], list[str]]:
    """Every page of the TOC scanned (a page whose file has not changed since it was last
    scanned is taken from ``memo``), with its toctrees appended where Sphinx puts them
    (docnames without suffix, as Sphinx names them), and the pages in reading order."""
    toc = read_toc(book)  # a TOC problem names its line
    paths = {_strip_suffix(e.name): e.path for e in toc.entries}
    site_map = toc.site_map
    raw = reading_order(site_map)
    order = [_strip_suffix(name) for name in raw]
    docs = {name: _scan_page(parser, name, None) if paths.get(name) is None else
            memo.value(paths[name], lambda path, n=name: _scan_page(parser, n, path), extra=name)
            for name in order}
    for key, name in zip(raw, order, strict=True):
        trees = [_Toctree([_strip_suffix(str(i)) for i in tree.items if not hasattr(i, "url")],
                          0 if not tree.numbered else
                          (999 if tree.numbered is True else int(tree.numbered)))
                 for tree in site_map[key].subtrees]
        doc = docs[name]
        if trees and doc.children and isinstance(doc.children[-1], _Section):
            doc.children[-1].children.extend(trees)
    return docs, order


def _targets(docs: dict[str, _Doc]) -> tuple[dict, dict, dict]:
    pages, labels, equations = {}, {}, {}
    for name, doc in docs.items():
        title = next(doc.sections(), None)
        pages[name] = Target(name, "", "section", title.number if title else (),
                             title.title if title else name)
        for section in doc.sections():
            for label in section.names:
                labels.setdefault(label.lower(), Target(name, make_id(label), "section",
                                                section.number, section.title))
        for item in doc.items():
            if item.kind == "displaymath":
                for label in item.names:
                    equations.setdefault(label, Target(name, make_id(f"equation-{label}"),
                                                       "equation", item.number))
                continue
            for label in item.names:
                kind = item.kind if item.kind in WORDS else "other"
                labels.setdefault(label.lower(), Target(name, make_id(label), kind,
                                                item.number, item.title))
    return pages, labels, equations


def build_website(book: Path) -> Website:
    """The website of ``book`` (see the module docstring); raises TocError or
    ConfigError with the line to fix."""
    book = book.resolve()
    config = sphinx_config(book)
    md_config = book_settings(book).md_config
    blocks = markdown_parser(md_config)  # block structure only: inline text is not needed
    blocks.disable(["inline", "linkify", "text_join"], ignoreInvalid=True)
    memo = FileMemo(book, "website", settings_digest(md_config))
    docs, order = _read_docs(book, blocks, memo)
    _SectionNumbers(docs).run(order)
    if config.get("numfig") and config.get("math_numfig", True):
        _FigureNumbers(docs, int(config.get("numfig_secnum_depth", 1))).doc(order[0], ())
    else:
        _number_equations_per_page(docs)
    pages, labels, equations = _targets(docs)
    bibfiles = [book / f for f in config.get("bibtex_bibfiles") or []]
    site = Website(
        book=book,
        base_url=str(config.get("html_baseurl") or ""),
        md_config=md_config,
        pages=pages,
        labels=labels,
        equations=equations,
        citations=read_bibliography(bibfiles, memo),
        bibliography=next((n for n in order if docs[n].bibliography), None),
        eqref_format=str(config.get("math_eqref_format") or "({number})"),
    )
    memo.save()
    return site


_BUILT: dict[Path, tuple[tuple, Website]] = {}


def _fingerprint(book: Path) -> tuple:
    """What the website depends on: the TOC, the configuration, the pages, the .bib files
    (their sizes and modification times)."""
    files = [book / TOC, book / CONFIG, *(e.path for e in read_toc(book).entries if e.path)]
    files += [book / f for f in read_config(book).get("bibtex_bibfiles") or []]
    stats = []
    for path in files:
        stat = path.stat() if path.is_file() else None
        stats.append((str(path), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0))
    return tuple(stats)


def website(book: Path) -> Website:
    """:func:`build_website`, computed again only when a source it reads has changed (the
    Sphinx extension asks once per page)."""
    book = book.resolve()
    key = _fingerprint(book)
    cached = _BUILT.get(book)
    if cached is None or cached[0] != key:
        _BUILT[book] = (key, build_website(book))
    return _BUILT[book][1]
