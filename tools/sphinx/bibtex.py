"""The bibliography style of the book: pybtex's ``plain``, with every entry it formats kept
between builds.

sphinxcontrib-bibtex formats every cited entry of the book again whenever any page
changed (twice with tooltips on: once for the list, once for the tooltip), which is most
of the time a one-line edit takes to build. What ``format_entry`` returns depends only on
the style, the label and the entry, so this style keeps each result in a
:class:`~tools.core.memo.Memo` under exactly those, and formats only entries that are new
or were edited. ``_config.yml`` selects it with ``bibtex_default_style: dlbook``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pybtex.plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from sphinx.application import Sphinx

from tools.core.memo import Memo

STYLE_NAME = "dlbook"
_memo: Memo | None = None  # this build's memo, from builder-inited to build-finished


def fingerprint(label: str, entry) -> str:
    """Everything of ``entry`` that formatting reads, and the label, as one string."""
    persons = {role: [str(person) for person in people]
               for role, people in entry.persons.items()}
    return json.dumps([label, entry.key, entry.type, sorted(entry.fields.items()), persons],
                      sort_keys=True)


class Style(PlainStyle):
    """pybtex's ``plain`` style, remembering what it formatted."""

    def format_entry(self, label, entry, bib_data=None):
        if _memo is None:
            return super().format_entry(label, entry, bib_data=bib_data)
        key = fingerprint(label, entry)
        hit, formatted = _memo.get(key)
        if hit:
            return formatted
        return _memo.put(key, None, super().format_entry(label, entry, bib_data=bib_data))


def _open(app: Sphinx) -> None:
    global _memo
    _memo = Memo(Path(app.srcdir), f"bibtex-{STYLE_NAME}")


def _close(app: Sphinx, exception) -> None:
    global _memo
    if _memo is not None and exception is None:
        _memo.save()
    _memo = None


def setup(app: Sphinx) -> dict:
    pybtex.plugin.register_plugin("pybtex.style.formatting", STYLE_NAME, Style)
    app.connect("builder-inited", _open)
    app.connect("build-finished", _close)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
