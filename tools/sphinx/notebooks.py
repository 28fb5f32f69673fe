"""Sphinx extension: the page's ".ipynb" download and "Colab" launch buttons serve the
Colab-ready executed notebooks of ``tools notebooks``.

sphinx-book-theme points the download button at ``_sources/<page>.ipynb`` (myst-nb's
executed notebook, as is) and the Colab button at the Markdown source on the default
branch, which Colab cannot run. After the theme has made its buttons (``html-page-context``
at a later priority), this extension

- writes ``_notebooks/<page>.ipynb`` into the site: the notebook myst-nb rendered this
  very page from, with the outputs of the execution cache, made Colab-ready by
  :func:`tools.render.colab.colab_ready` (install cell, GPU metadata, no ``#@save``), and
  points the download button at it;
- points the Colab button at ``<colab>/github/<org>/<repo>/blob/notebooks/<page>.ipynb``:
  the publishing workflow pushes ``_build/notebooks`` (the same notebooks, made by
  ``make notebooks`` from the same cache) to the ``notebooks`` branch.

Configuration (``sphinx: config:`` in ``_config.yml``): ``dlbook_notebooks_branch``
(default ``notebooks``), ``dlbook_notebooks_folder`` (default ``_notebooks``).
"""

from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from sphinx.application import Sphinx

from tools.core.files import write_atomic
from tools.render.colab import colab_ready
from tools.render.install import library_requirement

DOWNLOAD_LABEL = "download-notebook-button"
COLAB_PATH = re.compile(r"^(?P<base>.+?/github/[^/]+/[^/]+)/blob/.*$")
# What the install cell installs: git and _config.yml are read once per build, not per page.
requirement_of = functools.lru_cache(maxsize=None)(library_requirement)


def _buttons(items):
    """Every button of the header, groups opened."""
    for item in items or []:
        if isinstance(item, dict):
            yield item
            yield from _buttons(item.get("buttons"))


def executed_notebook(app: Sphinx, pagename: str) -> nbformat.NotebookNode | None:
    """The notebook myst-nb rendered ``pagename`` from, with the outputs of its
    jupyter-cache record merged in as myst-nb merges them (None for other pages).

    myst-nb writes the notebook it read to ``jupyter_execute/`` without the cached
    outputs, so they are merged here again."""
    config = getattr(app.env, "mystnb_config", None)
    folder = Path(getattr(config, "output_folder", "") or Path(app.outdir).parent /
                  "jupyter_execute")
    path = folder / f"{pagename}.ipynb"
    if not path.is_file():
        return None
    notebook = nbformat.read(path, as_version=4)
    cache_path = getattr(config, "execution_cache_path", None)
    if cache_path and Path(cache_path).is_dir():
        with contextlib.suppress(KeyError):
            _, notebook = get_cache(cache_path).merge_match_into_notebook(notebook)
    return notebook


def colab_url(url: str, branch: str, pagename: str) -> str:
    """The theme's Colab URL, re-aimed at ``pagename``'s notebook on ``branch``."""
    match = COLAB_PATH.match(url)
    return f"{match.group('base')}/blob/{branch}/{pagename}.ipynb" if match else url


def publish_copy(app: Sphinx, pagename: str, executed: nbformat.NotebookNode) -> None:
    """Write the Colab-ready copy of ``executed`` into the site."""
    folder = Path(app.outdir) / app.config.dlbook_notebooks_folder
    target = folder / f"{pagename}.ipynb"
    book = Path(app.srcdir)
    notebook = colab_ready(executed, requirement_of(book), book, pagename)
    write_atomic(target, nbformat.writes(notebook) + "\n")


def rewrite_buttons(app: Sphinx, pagename: str, templatename: str, context: dict,
                    doctree) -> None:
    """Point the download and Colab buttons of a notebook page at the Colab-ready copy."""
    buttons = list(_buttons(context.get("header_buttons")))
    if not buttons:
        return
    executed = executed_notebook(app, pagename)
    if executed is None:
        return
    folder = app.config.dlbook_notebooks_folder
    for button in buttons:
        if button.get("label") == DOWNLOAD_LABEL:
            publish_copy(app, pagename, executed)
            button["url"] = f"{context['pathto'](folder, 1)}/{pagename}.ipynb"
        elif button.get("text") == "Colab" and button.get("url"):
            button["url"] = colab_url(button["url"], app.config.dlbook_notebooks_branch,
                                      pagename)


def setup(app: Sphinx) -> dict:
    app.add_config_value("dlbook_notebooks_branch", "notebooks", "html")
    app.add_config_value("dlbook_notebooks_folder", "_notebooks", "html")
    # sphinx-book-theme makes its buttons at priority 501.
    app.connect("html-page-context", rewrite_buttons, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
