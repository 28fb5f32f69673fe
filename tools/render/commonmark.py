"""MyST Markdown cells rewritten as plain CommonMark with ``$``/``$$`` math, for notebooks
read in Jupyter or Colab, which show MyST syntax as raw text.

A cell is parsed by MyST-Parser's own markdown-it parser (:mod:`tools.core.markdown`), and
only the MyST constructs it finds are rewritten, at the source lines the tokens give
(``token.map``); everything else is left byte for byte. Links point at the website
(:mod:`tools.render.website` gives its URLs and numbers):

- ``(label)=`` lines, ``% comments`` and ``+++`` breaks: dropped;
- ``{ref}``, ``{numref}``, ``{doc}``: a link whose text is "Section 7.2, Title"
  ("Chapter 7, Title" for a chapter, the title alone for an unnumbered page),
  "Figure 7.2.1", "Table 3.1.1", or the role's explicit text (``%s``/``{number}`` of a
  ``{numref}`` text become the number);
- ``{eq}``: the number, "(7.2.1)", linked to the website when the equation is on another
  page; on its own page the equation carries the number (``\\tag``), as on the site;
- ``{cite}``: "[Hinton et al., 2012, Srivastava et al., 2014]", each linked to the
  bibliography page; ``{cite:t}``: "Hinton et al. [2012]";
- ``{math}`` role: ``$...$``; ``{sub}``, ``{sup}``, ``{kbd}``: HTML; code-like roles: code;
  other roles: their text;
- ``$$ ... $$ (label)``: the label dropped, ``\\tag{number}`` added;
- ``{figure}``: ``![alt](attachment:...)`` (the image travels inside the notebook as a cell
  attachment, so it shows without the repository or the network), then the caption as a
  paragraph, "**Figure 7.2.1:** caption" when the site numbers it;
- admonitions (``{note}``, ``{tip}``, ``{warning}``, ``{admonition} Title``, ...): a
  quoted block, ``> **Note**`` then the body; ``{math}``: ``$$ ... $$``; ``{code-block}``:
  a fenced code block; ``{toctree}``: a list of links; other directives: a link to the
  page on the website.

Directive bodies are converted the same way, recursively. A construct is rewritten in
place, so converting converted text changes nothing.
"""

from __future__ import annotations

import base64
import mimetypes
import posixpath
import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from tools.core.markdown import (
    NOT_MARKDOWN,
    citation_keys,
    directive_name,
    markdown_parser,
    role_parts,
    split_options,
)
from tools.render.website import WORDS, Target, Website

ADMONITIONS = {
    "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
    "warning": "Warning", "caution": "Caution", "attention": "Attention", "danger": "Danger",
    "error": "Error", "seealso": "See also", "todo": "To do",
}
TITLED = frozenset({"admonition", "dropdown", "margin", "sidebar", "topic", "card"})
CODE_DIRECTIVES = frozenset({"code", "code-block", "sourcecode", "code-cell"})
CODE_ROLES = frozenset({"code", "literal", "samp", "file", "command", "envvar", "option",
                        "program", "mod", "func", "class", "meth", "attr", "obj", "data",
                        "exc", "const"})
HTML_ROLES = {"sub": "sub", "sup": "sup", "subscript": "sub", "superscript": "sup",
              "kbd": "kbd"}
DROPPED_BLOCKS = frozenset({"myst_target", "myst_line_comment", "myst_block_break"})
IMAGE_SUFFIXES = (".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp")
ENVIRONMENT = re.compile(r"\\begin\{(equation|align|alignat|gather|multline|flalign|eqnarray)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Converted:
    """A cell's CommonMark and the images it needs as cell attachments
    (``{name: {mime type: base64}}``, nbformat's ``attachments``)."""

    text: str
    attachments: dict[str, dict[str, str]] = field(default_factory=dict)


def _code(text: str) -> str:
    """``text`` as a code span, with a fence longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _spaced(content: str) -> str:
    """A pattern for ``content`` as it may stand in the source: any run of whitespace may
    be another run (the parser joins lines)."""
    return r"\s+".join(re.escape(part) for part in content.split())


def _prefixes(line: str, marker: str) -> tuple[str, str]:
    """The container prefix of a block's first line (list indent, ``> ``) and the prefix of
    its next lines (list markers turned into spaces)."""
    at = line.find(marker)
    first = line[:at] if at > 0 else ""
    return first, re.sub(r"[^>\s]", " ", first)


def _label_text(target: Target, label: str) -> str:
    if target.kind == "section":
        if not target.number:
            return target.title or label
        word = "Chapter" if len(target.number) == 1 else "Section"
        return f"{word} {target.numbered}, {target.title}"
    if target.kind in WORDS and target.number:
        return f"{WORDS[target.kind]} {target.numbered}"
    return target.title or label


class _Converter:
    """One cell's conversion: collects its edits and its attachments."""

    def __init__(self, site: Website, docname: str, parser) -> None:
        self.site, self.docname, self.parser = site, docname, parser
        self.attachments: dict[str, dict[str, str]] = {}

    # --- the text --------------------------------------------------------------------------

    def convert(self, text: str) -> str:
        text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        starts[-1] = len(text)  # the end of the last line (which has no newline)
        edits: list[tuple[int, int, str]] = []
        cursor = 0
        for token in self.parser.parse(text, {}):
            if token.map is None:
                continue
            first, end = token.map
            if token.type in DROPPED_BLOCKS:
                edits.append((starts[first], starts[end], ""))
            elif token.type == "math_block_label":
                edits += self.equation_label(token, lines, starts)
            elif directive_name(token) is not None:
                block = self.directive(token, lines[first])
                tail = "\n" if text[starts[first]:starts[end]].endswith("\n") else ""
                edits.append((starts[first], starts[end], block + tail))
            elif token.type == "inline":
                found, cursor = self.inline(token, text, max(cursor, starts[first]),
                                            starts[end])
                edits += found
        for start, stop, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[stop:]
        return text

    def equation_label(self, token: Token, lines: list[str], starts: list[int]) -> list:
        """``$$ ... $$ (label)``: the label goes, the number comes as ``\\tag``."""
        last = token.map[1] - 1
        label = token.info.strip()
        match = re.search(r"\$\$\s*\(\s*" + re.escape(label) + r"\s*\)\s*$", lines[last])
        if match is None:
            return []
        target = self.site.equations.get(label)
        tag = f"\\tag{{{target.numbered}}} " if target and target.number \
            and not ENVIRONMENT.search(token.content) and "\\tag" not in token.content else ""
        return [(starts[last] + match.start(), starts[last] + len(lines[last]), f"{tag}$$")]

    # --- inline roles ----------------------------------------------------------------------

    def inline(self, token: Token, text: str, start: int, stop: int) -> tuple[list, int]:
        """Edits for the roles of an inline token, found in order in its source lines
        (code spans and math are passed over, so their text is never taken for a role)."""
        edits, pos, in_link = [], start, 0
        for child in token.children or []:
            if child.type == "link_open":
                in_link += 1
            elif child.type == "link_close":
                in_link -= 1
            elif child.type in ("code_inline", "math_inline", "math_inline_double"):
                fence = re.escape(child.markup or "`")
                pattern = re.compile(rf"{fence}\s*{_spaced(child.content)}\s*{fence}")
                match = pattern.search(text, pos, stop)
                pos = match.end() if match else pos
            elif child.type == "myst_role":
                name = child.meta.get("name", "")
                pattern = re.compile(r"\{" + re.escape(name) + r"\}(`+)\s*"
                                     + _spaced(child.content) + r"\s*\1(?!`)")
                match = pattern.search(text, pos, stop)
                if match:
                    edits.append((match.start(), match.end(),
                                  self.role(name, child.content, in_link > 0)))
                    pos = match.end()
        return edits, pos

    def link(self, text: str, target: Target | None, plain: bool) -> str:
        if target is None or plain:
            return text
        return f"[{text}]({self.site.url(target, self.docname)})"

    def role(self, name: str, content: str, in_link: bool) -> str:
        explicit, target = role_parts(content)
        if name in ("ref", "numref"):
            found = self.site.labels.get(target.lower()) or self.site.equations.get(target)
            if found is None:
                return explicit or target
            text = explicit or _label_text(found, target)
            if name == "numref" and explicit:
                number = found.numbered
                text = explicit.replace("%s", number).replace("{number}", number) \
                    .replace("{name}", found.title)
            elif found.kind == "equation" and not explicit:
                text = self.site.eqref_format.format(number=found.numbered)
            return self.link(text, found, in_link)
        if name == "doc":
            page = self.site.page(target, self.docname)
            text = explicit or (_label_text(page, target) if page else target)
            return self.link(text, page, in_link)
        if name == "eq":
            found = self.site.equations.get(target)
            if found is None:
                return explicit or target
            text = explicit or self.site.eqref_format.format(number=found.numbered)
            return self.link(text, found, in_link or found.docname == self.docname)
        if name == "cite" or name.startswith("cite:"):
            return self.cite(name.partition(":")[2] or "p", content, in_link)
        if name == "math":
            return f"${content}$"
        if name in HTML_ROLES:
            return f"<{HTML_ROLES[name]}>{content}</{HTML_ROLES[name]}>"
        if name in CODE_ROLES or name.startswith("py:"):
            return _code(explicit or target)
        if name == "abbr":
            return re.sub(r"\s*\([^()]*\)\s*$", "", content)
        return explicit or target

    def cite(self, variant: str, content: str, in_link: bool) -> str:
        page = self.site.pages.get(self.site.bibliography or "")
        parts = []
        for key in citation_keys(content):
            who, year = self.site.citations.get(key, (key, ""))
            if variant.startswith(("t", "ct")):
                parts.append(f"{who} [{self.link(year, page, in_link)}]" if year else who)
            elif variant.startswith(("author", "cauthor")):
                parts.append(self.link(who, page, in_link))
            elif variant.startswith("year"):
                parts.append(self.link(year or who, page, in_link))
            else:
                parts.append(self.link(f"{who}, {year}" if year else who, page, in_link))
        joined = ", ".join(parts)
        return f"[{joined}]" if variant.startswith("p") else joined

    # --- directives ------------------------------------------------------------------------

    def directive(self, token: Token, first_line: str) -> str:
        """The CommonMark block that replaces a directive, prefixed like its fence."""
        name, argument = directive_name(token)
        options, used = split_options(token.content)
        body = "\n".join(token.content.split("\n")[used:]).strip("\n")
        if name in ("figure", "image"):
            lines = self.figure(argument, options, body if name == "figure" else "")
        elif name == "math":
            lines = self.math(options, body)
        elif name in CODE_DIRECTIVES:
            lines = self.code_block(argument, body)
        elif name == "toctree":
            lines = self.toctree(body)
        elif name == "raw" and argument.strip() == "html":
            lines = body.split("\n")
        elif name in ADMONITIONS or name in TITLED or name not in NOT_MARKDOWN:
            title = ADMONITIONS.get(name) or argument or name.capitalize()
            if name in ADMONITIONS and argument:
                body = f"{argument}\n{body}"
            lines = self.quote(title, body)
        else:
            page = self.site.pages.get(self.docname)
            lines = [f"*This part of the page is shown on the "
                     f"{self.link('website', page, False)}.*"]
        first, rest = _prefixes(first_line, token.markup or "`")
        return "\n".join(
            (first if number == 0 else (rest if line else rest.rstrip())) + line
            for number, line in enumerate(lines))

    def quote(self, title: str, body: str) -> list[str]:
        converted = self.convert(body).strip("\n")
        lines = [f"> **{title}**"]
        if converted:
            lines.append(">")
            lines += [f"> {line}" if line.strip() else ">" for line in converted.split("\n")]
        return lines

    def figure(self, source: str, options: dict, body: str) -> list[str]:
        caption, _, legend = self.convert(body).strip("\n").partition("\n\n")
        caption = " ".join(caption.split())
        alt = " ".join(str(options.get("alt") or "Figure").split()).replace("]", "\\]")
        lines = [f"![{alt}]({self.image(source)})"]
        name = str(options.get("name") or "").strip()
        target = self.site.labels.get(name.lower()) if name else None
        if caption:
            label = f"**Figure {target.numbered}:** " if target and target.number else ""
            lines += ["", f"{label}{caption}"]
        if legend.strip():
            lines += ["", *legend.strip("\n").split("\n")]
        return lines

    def math(self, options: dict, body: str) -> list[str]:
        parts = [p.strip("\n") for p in re.split(r"\n\s*\n", body) if p.strip()]
        if len(parts) > 1:  # Sphinx aligns equations separated by blank lines
            parts = ["\\begin{aligned}",
                     " \\\\\n".join(f"\\begin{{split}}{p}\\end{{split}}" for p in parts),
                     "\\end{aligned}"]
        label = str(options.get("label") or "").strip()
        target = self.site.equations.get(label) if label else None
        lines = ["$$", *"\n".join(parts).split("\n")]
        if target and target.number and not ENVIRONMENT.search(body):
            lines.append(f"\\tag{{{target.numbered}}}")
        return [*lines, "$$"]

    def code_block(self, language: str, body: str) -> list[str]:
        longest = max((len(run) for run in re.findall(r"^\s*(`{3,})", body, re.M)), default=2)
        fence = "`" * (longest + 1)
        return [f"{fence}{language.split()[0] if language.split() else ''}",
                *body.split("\n"), fence]

    def toctree(self, body: str) -> list[str]:
        lines = []
        for entry in (line.strip() for line in body.split("\n")):
            if not entry or entry.startswith(":") or entry == "self" or "*" in entry:
                continue
            explicit, target = role_parts(entry)
            if SCHEME.match(target):
                lines.append(f"- [{explicit or target}]({target})")
                continue
            page = self.site.page(target, self.docname)
            text = explicit or (_label_text(page, target) if page else target)
            lines.append(f"- {self.link(text, page, False)}")
        return lines

    def image(self, source: str) -> str:
        """The image as a cell attachment (``attachment:name``); remote images as they
        are; an image that is not found keeps its path."""
        if SCHEME.match(source):
            return source
        book = self.site.book
        folder = posixpath.dirname(self.docname)
        path = book / source.lstrip("/") if source.startswith("/") else \
            book / folder / source
        if path.name.endswith(".*"):
            stem = path.name[:-2]
            path = next((path.with_name(stem + s) for s in IMAGE_SUFFIXES
                         if path.with_name(stem + s).is_file()), path)
        if not path.is_file():
            return source.replace(" ", "%20")
        name = re.sub(r"[^\w.-]", "-", path.name)
        while name in self.attachments:
            name = f"x{name}"
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.attachments[name] = {mime: base64.b64encode(path.read_bytes()).decode("ascii")}
        return f"attachment:{name}"


_PARSERS: dict[int, tuple[object, object]] = {}


def _parser(site: Website):
    """MyST's parser with the book's settings, made once per settings object."""
    cached = _PARSERS.get(id(site.md_config))
    if cached is None or cached[0] is not site.md_config:
        cached = (site.md_config, markdown_parser(site.md_config))
        _PARSERS[id(site.md_config)] = cached
    return cached[1]


def to_commonmark(text: str, site: Website, docname: str) -> Converted:
    """A Markdown cell of the page ``docname`` as CommonMark (see the module docstring)."""
    converter = _Converter(site, docname, _parser(site))
    return Converted(converter.convert(text), converter.attachments)
