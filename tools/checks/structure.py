"""Rules of ``tools check`` about the shape of pages and of the book.

- a section (``chapters/<chapter>/<slug>.md``) starts with front matter that makes it a
  MyST notebook (jupytext ``format_name: myst``) with a ``kernelspec``;
- every page has exactly one H1 title with a label line right above it (``(chap-...)=``
  on a chapter's ``index.md``, ``(sec-...)=`` on a section);
- ``## Exercises`` is the last ``##`` section of every section;
- sources hold no stored outputs (``.ipynb`` with outputs, output blocks in MyST);
- ``_toc.yml`` and the files under ``chapters/`` name the same pages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sphinx.util.matching import Matcher

from tools.checks.pages import Page, code_cell_fence_line, inline_children
from tools.core.problems import Problem
from tools.core.toc import SUFFIXES, TocEntry, TocError, read_toc

EXERCISES = "Exercises"
OUTPUT_FENCES = frozenset({"output", "{output}", "{code-output}"})
STORED_KEYS = ("outputs", "execution_count")


def front_matter_problems(page: Page) -> list[Problem]:
    """A section must be a MyST notebook: jupytext format ``myst`` and a kernelspec."""
    if not page.is_section or page.notebook is None:
        return []
    meta = page.notebook.metadata
    if not meta:
        return [Problem(page.path, 1, "no front matter: a section starts with the "
                                      "jupytext/kernelspec front matter of the section "
                                      "template (`make new-section` writes it)")]
    found = []
    text_rep = (meta.get("jupytext") or {}).get("text_representation") or {}
    if text_rep.get("format_name") != "myst" and meta.get("file_format") != "mystnb":
        found.append(Problem(page.path, 1, "the front matter does not declare the MyST "
                                           "notebook format (jupytext: text_representation: "
                                           "format_name: myst): its code cells would not run"))
    if "kernelspec" not in meta:
        found.append(Problem(page.path, 1, "the front matter has no kernelspec (name: "
                                           "python3): its code cells would not run"))
    return found


def _label_prefix(page: Page) -> tuple[str, ...]:
    if page.is_chapter_index:
        return ("chap-",)
    if page.is_section:
        return ("sec-",)
    return ("sec-", "chap-")


def title_problems(page: Page) -> list[Problem]:
    """Exactly one H1, with a ``(sec-...)=`` (or ``(chap-...)=``) label right above."""
    if page.notebook is None:
        return []
    top = [item for item in page.tokens if item.depth == 0
           and item.token.type not in ("myst_line_comment", "html_block")]
    titles = [n for n, item in enumerate(top)
              if item.token.type == "heading_open" and item.token.tag == "h1"]
    prefix = _label_prefix(page)
    example = f"({prefix[0]}<slug>)="
    if not titles:
        return [Problem(page.path, 1, f"no H1 title (`# Title`): a page has exactly one, "
                                      f"with a `{example}` label line right above it")]
    first = top[titles[0]]
    found = [Problem(page.path, top[n].line, f"a second H1 title (the first is at line "
                                             f"{first.line}): a page has exactly one; "
                                             "use `##` for its sections")
             for n in titles[1:]]
    before = top[titles[0] - 1] if titles[0] else None
    if before is None or before.token.type != "myst_target":
        found.append(Problem(page.path, first.line, f"the H1 title has no label: put a "
                                                    f"`{example}` line right above it"))
    elif not before.token.content.startswith(prefix):
        found.append(Problem(page.path, before.line,
                             f"label '{before.token.content}' of the page title should start "
                             f"with '{prefix[0]}'" + (" or 'chap-'" if len(prefix) > 1 else "")))
    return found


def _heading_title(page: Page, index: int) -> str:
    inline = page.tokens[index + 1].token if index + 1 < len(page.tokens) else None
    return inline.content.strip() if inline is not None else ""


def exercises_problems(page: Page, line_count: int) -> list[Problem]:
    """``## Exercises`` closes every section: it exists and no ``##`` follows it."""
    if not page.is_section or page.notebook is None:
        return []
    sections = [(item.line, _heading_title(page, n)) for n, item in enumerate(page.tokens)
                if item.depth == 0 and item.token.type == "heading_open"
                and item.token.tag == "h2"]
    at = next((n for n, (_, title) in enumerate(sections) if title == EXERCISES), None)
    if at is None:
        return [Problem(page.path, line_count, f"no `## {EXERCISES}` section: every section "
                                               "ends with exercises (see CONTRIBUTING.md)")]
    return [Problem(page.path, line, f"`## {title}` follows `## {EXERCISES}` (line "
                                     f"{sections[at][0]}): exercises close the section")
            for line, title in sections[at + 1:]]


def _ipynb_output_lines(text: str) -> list[int]:
    """The line of each code cell's ``"outputs"`` key in a notebook's JSON text."""
    return [n for n, line in enumerate(text.splitlines(), 1)
            if line.lstrip().startswith('"outputs"')]


def ipynb_output_problems(path: Path, shown: Path) -> list[Problem]:
    """Stored outputs (or execution counts) in a ``.ipynb`` source."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as err:
        return [Problem(shown, 1, f"not a valid notebook (JSON): {err}")]
    lines = _ipynb_output_lines(text)
    code = [c for c in data.get("cells", []) if c.get("cell_type") == "code"]
    found = []
    for number, cell in enumerate(code, 1):
        if cell.get("outputs") or cell.get("execution_count") is not None:
            line = lines[number - 1] if number <= len(lines) else 1
            found.append(Problem(shown, line, f"code cell {number} has stored outputs: "
                                              "clear them before committing (Jupyter: Edit > "
                                              "Clear Outputs of All Cells); the build "
                                              "executes every notebook"))
    return found


def myst_output_problems(page: Page, text_lines: list[str]) -> list[Problem]:
    """Output blocks pasted into a MyST source, or outputs kept in cell options."""
    if page.notebook is None:
        return []
    found = []
    for cell in page.notebook.code_cells:
        if any(key in cell.options for key in STORED_KEYS):
            found.append(Problem(page.path, code_cell_fence_line(text_lines, cell.line),
                                 f"code cell {cell.number} keeps outputs in its options: "
                                 "remove them; the build executes every notebook"))
    for item in page.tokens:
        if item.token.type == "fence" and item.token.info.strip() in OUTPUT_FENCES:
            found.append(Problem(page.path, item.line, "a stored output block: remove it; "
                                                       "outputs come from executing the "
                                                       "code cells"))
    return found


def toc_entries(book: Path) -> tuple[list[TocEntry], list[Problem]]:
    """Every entry of the TOC (:mod:`tools.core.toc`) and what is wrong with it."""
    try:
        toc = read_toc(book)
    except TocError as err:
        return [], list(err.problems)
    return list(toc.entries), toc.missing()


def chapter_files(book: Path, exclude: list[str]) -> list[Path]:
    """Pages under ``chapters/`` (``.md``, ``.ipynb``) that Sphinx would read."""
    folder = book / "chapters"
    matcher = Matcher(exclude)
    found = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        rel = path.relative_to(book).as_posix()
        if (path.suffix in SUFFIXES and path.is_file() and not matcher(rel)
                and not any(part.startswith(".") for part in path.relative_to(book).parts)):
            found.append(path)
    return found


def toc_sync_problems(book: Path, shown: Path, entries: list[TocEntry],
                      exclude: list[str]) -> list[Problem]:
    """Files under ``chapters/`` that the TOC does not name."""
    listed = {e.path.resolve() for e in entries if e.path is not None}
    return [Problem(shown / path.relative_to(book), 1,
                    "not in _toc.yml: add it under its chapter (`make new-section` does), "
                    "or delete it")
            for path in chapter_files(book, exclude) if path.resolve() not in listed]


def option_continuation_problems(page: Page) -> list[Problem]:
    """A ``:key: value`` option continued on an indented line: MyST ends the options
    there and reads the rest (later options included) as the directive's content."""
    found = []
    for item, directive in page.directives():
        lines = item.token.content.split("\n")
        used = directive.body_line - item.line - 1
        if 0 < used < len(lines) and lines[used][:1] in (" ", "\t") and lines[used].strip():
            found.append(Problem(page.path, directive.body_line,
                                 f"{{{directive.name}}}: this indented line ends the "
                                 "`:key:` options (MyST reads it, and any option after it, "
                                 "as content); write long option values in a `---` YAML "
                                 "block instead"))
    return found


# A math alphabet command as a bare sub- or superscript (``_\mathcal{X}``): unicode-math,
# which the PDF build loads, stops there with "Missing { inserted"; MathJax accepts it.
UNBRACED_SCRIPT = re.compile(r"[_^]\s*(\\(?:math[a-z]+|symbf|boldsymbol|bm)\s*\{[^{}]*\})")
MATH_BLOCKS = ("math_block", "math_block_label", "amsmath")
STRAY_LABEL = re.compile(r"\(eq-[\w.:-]+\)")  # an equation label that became a paragraph


def math_problems(page: Page) -> list[Problem]:
    r"""Math that the website renders but LaTeX cannot (``_\mathcal{X}`` needs braces),
    and an equation label written on the line after the equation, which is plain text."""
    found = []

    def scan(content: str, line: int) -> None:
        for match in UNBRACED_SCRIPT.finditer(content):
            at = line + content.count("\n", 0, match.start())
            found.append(Problem(page.path, at,
                                 f"math: `{match.group(0)}`: a script that is a math "
                                 "alphabet command needs braces, or the PDF build stops "
                                 f"(unicode-math): write `{match.group(0)[0]}"
                                 f"{{{match.group(1)}}}`"))

    for item in page.tokens:
        if item.token.type == "inline" and STRAY_LABEL.fullmatch(item.token.content.strip()):
            label = item.token.content.strip()
            found.append(Problem(page.path, item.line,
                                 f"math: `{label}` on a line of its own is text, not a "
                                 f"label: put it after the closing `$$`, as `$$ {label}`"))
        if item.token.type in MATH_BLOCKS:
            scan(item.token.content, item.line)  # the content starts after the fence
        elif item.token.type == "inline":
            for child, line in inline_children(item):
                if child.type == "math_inline":
                    scan(child.content, line)
    return found
