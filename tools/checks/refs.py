"""Rules of ``tools check`` about what pages point at: references, citations, images.

Targets come from every page of the book: ``(label)=`` lines, ``:name:`` options of
directives (figures, tables), the ``mystnb: figure: name:`` of code cells that make a
figure, equation labels (``$$ ... $$ (eq-x)`` and ``{math}`` ``:label:``), and the keys
of the bibliography files of ``_config.yml``. Each ``{ref}``, ``{numref}``, ``{eq}`` and
``{cite}`` role must name one; each image must exist and have alt text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.checks.pages import Page, code_cell_fence_line, inline_children
from tools.core.markdown import citation_keys, role_parts
from tools.core.problems import Problem

BIB_ENTRY = re.compile(r"@(\w+)\s*[{(]\s*([^,\s]+)\s*,")
IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
ATTR = re.compile(r"""\b(src|alt)\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)
REMOTE = ("http://", "https://", "data:")


@dataclass
class Targets:
    """Everything a role may point at, with where each label is defined."""

    labels: dict[str, tuple[Path, int]] = field(default_factory=dict)
    equations: dict[str, tuple[Path, int]] = field(default_factory=dict)
    citations: set[str] = field(default_factory=set)
    bibliography: str = "the bibliography"  # the files, for messages
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: dict, name: str, path: Path, line: int) -> None:
        name = name.strip()
        if not name:
            return
        first = self.labels.get(name) or self.equations.get(name)
        if first is not None and first != (path, line):
            self.problems.append(Problem(path, line, f"label '{name}' is defined twice "
                                                     f"(first at {first[0]}:{first[1]})"))
            return
        kind[name] = (path, line)


def bib_keys(files: list[Path]) -> set[str]:
    """The entry keys of BibTeX files (``@comment``, ``@string``, ``@preamble`` skipped)."""
    keys = set()
    for path in files:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            keys |= {key for kind, key in BIB_ENTRY.findall(text)
                     if kind.lower() not in ("comment", "string", "preamble")}
    return keys


def _cell_figure(options: dict) -> tuple[dict, dict]:
    mystnb = options.get("mystnb") or {}
    return (mystnb.get("figure") or {}), (mystnb.get("image") or {})


def collect_targets(pages: list[Page], bibfiles: list[Path]) -> Targets:
    """All labels, equation labels and citation keys of the book."""
    targets = Targets(citations=bib_keys(bibfiles),
                      bibliography=", ".join(p.name for p in bibfiles) or "no .bib file")
    for page in pages:
        for item in page.tokens:
            if item.token.type == "myst_target":
                targets.add(targets.labels, item.token.content, page.path, item.line)
            elif item.token.type == "math_block_label":
                targets.add(targets.equations, item.token.info, page.path, item.line)
        for item, directive in page.directives():
            if directive.name == "math" and directive.options.get("label"):
                targets.add(targets.equations, str(directive.options["label"]), page.path,
                            item.line)
            elif directive.options.get("name") and directive.name != "code-cell":
                targets.add(targets.labels, str(directive.options["name"]), page.path,
                            item.line)
        for cell in page.notebook.code_cells if page.notebook else ():
            figure, _ = _cell_figure(cell.options)
            if figure.get("name"):
                targets.add(targets.labels, str(figure["name"]), page.path, cell.line)
    return targets


def reference_problems(page: Page, targets: Targets) -> list[Problem]:
    """Roles of ``page`` whose target is not defined anywhere in the book."""
    found = []
    for item in page.tokens:
        if item.token.type != "inline":
            continue
        for child, line in inline_children(item):
            if child.type != "myst_role":
                continue
            role = child.meta.get("name", "")
            if role in ("ref", "numref"):
                name = role_parts(child.content)[1]
                if name not in targets.labels and name not in targets.equations:
                    found.append(Problem(page.path, line, f"{{{role}}}`{name}`: no such label "
                                                          "in the book (a `(name)=` line, a "
                                                          "figure's name or a directive's "
                                                          ":name:)"))
            elif role == "eq":
                name = role_parts(child.content)[1]
                if name not in targets.equations:
                    found.append(Problem(page.path, line, f"{{eq}}`{name}`: no equation has "
                                                          "this label (`$$ ... $$ (label)`)"))
            elif role == "cite" or role.startswith("cite:"):
                for key in citation_keys(child.content):
                    if key not in targets.citations:
                        found.append(Problem(page.path, line, f"{{{role}}}`{key}`: no entry "
                                                              "with this key in "
                                                              f"{targets.bibliography}"))
    return found


def _image_exists(book: Path, page: Page, src: str) -> bool:
    if src.startswith(REMOTE):
        return True
    path = book / src.lstrip("/") if src.startswith("/") else \
        (book / page.rel).parent / src
    if path.name.endswith(".*"):
        return any(path.parent.glob(path.name))
    return path.is_file()


def image_problems(book: Path, page: Page, text_lines: list[str]) -> list[Problem]:
    """Images that do not exist or have no alt text, and figure cells without alt text."""
    found = []
    for item, directive in page.directives():
        if directive.name not in ("figure", "image"):
            continue
        kind = directive.name
        if not directive.argument:
            found.append(Problem(page.path, item.line, f"{{{kind}}} without an image path"))
        elif not _image_exists(book, page, directive.argument):
            found.append(Problem(page.path, item.line, f"{{{kind}}} image "
                                                       f"'{directive.argument}' not found"))
        if not str(directive.options.get("alt") or "").strip():
            found.append(Problem(page.path, item.line, f"{{{kind}}} has no alt text: add "
                                                       "`:alt:` describing the image for "
                                                       "readers who cannot see it"))
    for item in page.tokens:
        if item.token.type == "inline":
            for child, line in inline_children(item):
                if child.type == "image":
                    found += _image(book, page, line, child.attrs.get("src", ""),
                                    child.content)
                elif child.type == "html_inline":
                    found += _html_images(book, page, line, child.content)
        elif item.token.type == "html_block":
            found += _html_images(book, page, item.line, item.token.content)
    for cell in page.notebook.code_cells if page.notebook else ():
        figure, image = _cell_figure(cell.options)
        if (figure or image) and not str(image.get("alt") or "").strip():
            found.append(Problem(page.path, code_cell_fence_line(text_lines, cell.line),
                                 f"code cell {cell.number} makes a figure but has no alt "
                                 "text: add `mystnb: image: alt:` describing it"))
    return found


def _image(book: Path, page: Page, line: int, src: str, alt: str) -> list[Problem]:
    found = []
    if not _image_exists(book, page, str(src)):
        found.append(Problem(page.path, line, f"image '{src}' not found"))
    if not alt.strip():
        found.append(Problem(page.path, line, f"image '{src}' has no alt text: write it "
                                              "between the brackets of ![...](...)"))
    return found


def _html_images(book: Path, page: Page, line: int, html: str) -> list[Problem]:
    found = []
    for tag in IMG_TAG.finditer(html):
        attrs = {m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(4)
                 for m in ATTR.finditer(tag.group(0))}
        at = line + html[:tag.start()].count("\n")
        found += _image(book, page, at, attrs.get("src", ""), attrs.get("alt", ""))
    return found
