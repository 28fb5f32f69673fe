"""The book's MyST Markdown as tokens: MyST-Parser's own markdown-it parser and the pieces
of a directive or role that every reader of the tokens needs.

The checks (:mod:`tools.checks.pages`) and the notebook export
(:mod:`tools.render.commonmark`) read pages with the parser the Sphinx build uses
(``myst_parser.parsers.mdit.create_md_parser`` with the extensions of ``_config.yml``), so
both see exactly the labels, roles, equations and directives that Sphinx sees.
"""

from __future__ import annotations

import re

import yaml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

# Directives whose content is not Markdown: their bodies are not parsed again.
NOT_MARKDOWN = frozenset({
    "code-cell", "code-block", "code", "sourcecode", "literalinclude", "math", "raw",
    "eval-rst", "toctree", "tableofcontents", "bibliography", "csv-table",
    "execution-report", "mermaid", "graphviz", "glue", "glue:figure", "glue:math",
})
OPTION = re.compile(r"^:([\w-]+):(?:\s+(.*))?$")
EXPLICIT = re.compile(r"^(.*?)<([^<>]+)>\s*$", re.DOTALL)


def markdown_parser(config: MdParserConfig):
    """MyST-Parser's markdown-it parser, configured as the Sphinx build configures it."""
    return create_md_parser(config, RendererHTML)


def directive_name(token: Token) -> tuple[str, str] | None:
    """(name, argument) of a ``{name} argument`` fence, or None for a plain fence."""
    if token.type not in ("fence", "colon_fence"):
        return None
    match = re.match(r"^\{([^}]+)\}\s*(.*)$", token.info.strip())
    return (match.group(1), match.group(2).strip()) if match else None


def split_options(content: str) -> tuple[dict, int]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block) and the
    number of content lines they take. As in MyST, a ``:key:`` option is one line: an
    indented line after it ends the options and starts the content."""
    lines = content.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
        if end is not None:
            try:
                data = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError:
                data = {}
            return (data if isinstance(data, dict) else {}), end + 1
    options: dict = {}
    used = 0
    for line in lines:  # as MyST reads them: one `:key: value` per line, nothing more
        match = OPTION.match(line)
        if not match:
            break
        options[match.group(1)] = (match.group(2) or "").strip()
        used += 1
    return options, used


def role_parts(content: str) -> tuple[str | None, str]:
    """The explicit text (None: none) and the target of a role's ``text <target>`` or
    bare ``target``."""
    match = EXPLICIT.match(content)
    if match and match.group(1).strip():
        return match.group(1).strip(), match.group(2).strip()
    return None, (match.group(2) if match else content).strip()


def citation_keys(content: str) -> list[str]:
    """Keys of a ``{cite}`` role: comma-separated, ``{pre}``/``{post}`` notes dropped."""
    plain = re.sub(r"\{[^}]*\}", "", content)
    return [key.strip() for key in plain.split(",") if key.strip()]
