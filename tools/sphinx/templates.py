"""Compiled page templates kept between builds.

Sphinx compiles the theme's Jinja templates (about forty for sphinx-book-theme) in every
build process, a few tenths of a second of each rebuild. Jinja can keep compiled
templates in a bytecode cache, checked against each template's source; this extension
gives Sphinx's template environment one, in ``_build/.memo/jinja``.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemBytecodeCache
from sphinx.application import Sphinx

from tools.core.memo import MEMO_FOLDER


def _cache_templates(app: Sphinx) -> None:
    templates = getattr(app.builder, "templates", None)
    environment = getattr(templates, "environment", None)
    if environment is None:  # a builder without HTML templates (LaTeX)
        return
    folder = Path(app.srcdir) / MEMO_FOLDER / "jinja"
    folder.mkdir(parents=True, exist_ok=True)
    environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _cache_templates)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
