"""A new section: the page from the template, and its line in the TOC (``tools new-section``).

``make new-section CHAPTER=02-preliminaries SLUG=my-topic [TITLE="My Topic"]`` writes
``chapters/02-preliminaries/my-topic.md`` with the structure every section has (front
matter, ``(sec-my-topic)=`` label, H1 title, introduction, a code cell, Summary,
Exercises; it passes ``make check`` as written) and adds ``- file:
chapters/02-preliminaries/my-topic`` at the end of that chapter's ``sections:`` in
``_toc.yml``. The TOC is edited as text, one inserted line (two when the chapter has no
sections yet), so its comments and layout stay as they were. An existing slug is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.core.notebook import MYST_FRONT_MATTER
from tools.core.toc import TOC, file_nodes

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

TEMPLATE = MYST_FRONT_MATTER + """
({label})=
# {title}

<!-- The shape every section takes: replace the text, keep the structure (CONTRIBUTING.md).
     One idea per code cell; math defined before the code that uses it; every figure with
     alt text; `#@save` on code that later sections reuse (docs/library.md).
     Refer to sections as {{ref}}`sec-tensors`, to equations as {{eq}}`eq-...`, to figures
     as {{numref}}`fig-...`; cite as {{cite}}`key` with the key from book/references.bib. -->

By the end of this section you will be able to *say, in one sentence, what the reader can
do*. Link back to what they already know, and say why this section matters.

```{{code-cell}} ipython3
import torch
```

## The Idea

Two or three short paragraphs that build intuition first; then the math, defined before
use, each displayed equation with a label that the text refers to:

$$
\\hat{{y}} = \\mathbf{{w}}^\\top \\mathbf{{x}} + b .
$$ ({equation})

Equation {{eq}}`{equation}` says what the code below computes.

```{{code-cell}} ipython3
x = torch.arange(4.0)
w, b = torch.ones(4), 0.5
w @ x + b  # the point of the cell is visible in its output
```

## Summary

- Two to four bullets: what to remember.

## Exercises

1. A computation to do by hand or in code.
2. A derivation or proof.
3. A change to the code above and a prediction of what happens.
4. An open question that connects to later chapters.
"""


class NewSectionError(Exception):
    """Why the section cannot be created."""


@dataclass(frozen=True)
class Plan:
    """What to write: the new page and the TOC with its new line."""

    page: Path
    text: str
    toc_text: str


def render(slug: str, title: str) -> str:
    return TEMPLATE.format(label=f"sec-{slug}", title=title, equation=f"eq-{slug}-model")


def default_title(slug: str) -> str:
    small = {"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the", "to"}
    words = slug.split("-")
    return " ".join(w if n and w in small else w[:1].upper() + w[1:]
                    for n, w in enumerate(words))


def chapter_folder(book: Path, chapter: str) -> str:
    """The folder under ``chapters/`` that ``chapter`` names: its full name
    (``02-preliminaries``), its number (``2``, ``02``) or its slug (``preliminaries``)."""
    folders = sorted(p.name for p in (book / "chapters").iterdir() if p.is_dir()) \
        if (book / "chapters").is_dir() else []
    chapter = chapter.strip().strip("/").removeprefix("chapters/")
    matches = [f for f in folders if f == chapter] or \
        [f for f in folders if chapter.isdigit() and f.split("-")[0].isdigit()
         and int(f.split("-")[0]) == int(chapter)] or \
        [f for f in folders if f.partition("-")[2] == chapter]
    if len(matches) != 1:
        known = ", ".join(folders) or "none"
        raise NewSectionError(f"no single chapter folder matches '{chapter}' "
                              f"(chapters/: {known})")
    return matches[0]


def _last_line(node) -> int:
    """The 0-based line of the last scalar inside a YAML node."""
    if isinstance(node, yaml.ScalarNode):
        return node.end_mark.line
    children = [v for pair in node.value for v in pair] \
        if isinstance(node, yaml.MappingNode) else list(node.value)
    return max((_last_line(child) for child in children), default=node.start_mark.line)


def _chapter_node(node: yaml.Node, index: str) -> yaml.MappingNode | None:
    """The TOC mapping whose ``file`` is the chapter's index page."""
    return next((mapping for mapping, value in file_nodes(node)
                 if value.value.removesuffix(".md").removesuffix(".ipynb") == index), None)


def add_to_toc(toc_text: str, folder: str, entry: str) -> str:
    """``toc_text`` with ``- file: entry`` appended to the sections of ``folder``."""
    lines = toc_text.splitlines(keepends=True)
    chapter = _chapter_node(yaml.compose(toc_text), f"chapters/{folder}/index")
    if chapter is None:
        raise NewSectionError(f"{TOC} lists no chapter 'chapters/{folder}/index': add the "
                              "chapter first")
    values = {key.value: value for key, value in chapter.value}
    sections = values.get("sections")
    if isinstance(sections, yaml.SequenceNode) and sections.value:
        last = sections.value[-1]
        start = lines[last.start_mark.line]
        prefix = start[:last.start_mark.column]
        new = [f"{prefix}file: {entry}\n"]
        at = _last_line(last) + 1
    else:
        indent = " " * chapter.start_mark.column
        new = [f"{indent}sections:\n", f"{indent}  - file: {entry}\n"]
        at = _last_line(chapter) + 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + new + lines[at:])


def plan(book: Path, chapter: str, slug: str, title: str | None) -> Plan:
    if not SLUG.match(slug):
        raise NewSectionError(f"slug '{slug}' must be lower-case words joined by hyphens, "
                              "as in linear-regression")
    folder = chapter_folder(book, chapter)
    page = book / "chapters" / folder / f"{slug}.md"
    entry = f"chapters/{folder}/{slug}"
    toc = book / TOC
    toc_text = toc.read_text(encoding="utf-8")
    if page.exists() or page.with_suffix(".ipynb").exists():
        raise NewSectionError(f"{page} already exists: choose another slug")
    listed = re.search(rf"^\s*-?\s*file:\s*{re.escape(entry)}(\.md|\.ipynb)?\s*(#.*)?$",
                       toc_text, re.MULTILINE)
    if listed:
        raise NewSectionError(f"{toc}: '{entry}' is already listed: choose another slug")
    return Plan(page, render(slug, title or default_title(slug)),
                add_to_toc(toc_text, folder, entry))
