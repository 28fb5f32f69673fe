"""Sphinx extension of the book: offline MathJax for the website, part numbering for the PDF.

LaTeX numbers every chapter, so the PDF would call the introduction "Chapter 4" after
three front-matter pages. Each TOC part therefore switches LaTeX's section numbering on
(numbered parts) or off (front and back matter) at its first document, and the PDF's
chapter numbers match the website's.

MathJax comes from the pinned ``django-static-mathjax`` wheel (a plain copy of MathJax 3);
only the combined TeX/MathML/CHTML component, its WOFF2 fonts and the TeX
extensions it autoloads are copied, into a folder
that Sphinx then copies into ``_static/mathjax`` of the site.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ConfigError

MATHJAX_FILES = (
    "tex-mml-chtml.js",  # TeX and MathML input, CommonHTML output, menu
    "output/chtml/fonts/woff-v2",  # its fonts
    "input/tex/extensions",  # extensions MathJax autoloads (boldsymbol, ...)
)


def mathjax_source() -> Path:
    """The ``es5`` folder of the installed MathJax distribution."""
    spec = find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "MathJax is not installed: run `make setup` (it installs django-static-mathjax)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"


def stage_mathjax(dest: Path) -> Path:
    """Copy the MathJax files the site needs under ``dest/mathjax``; return ``dest``."""
    source = mathjax_source()
    target = dest / "mathjax"
    for name in MATHJAX_FILES:
        src, dst = source / name, target / name
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    return dest


def _add_mathjax(app: Sphinx, config) -> None:
    staged = stage_mathjax(Path(app.doctreedir).parent / ".mathjax")
    config.html_static_path.append(str(staged))


def part_numbering(site_map) -> dict[str, bool]:
    """Map the first document of each TOC part to whether that part is numbered."""
    if site_map is None:
        return {}
    firsts = {}
    for tree in site_map.root.subtrees:
        if tree.items and isinstance(tree.items[0], str):
            firsts[str(tree.items[0])] = bool(tree.numbered)
    return firsts


def _number_parts(app: Sphinx, doctree: nodes.document) -> None:
    numbered = part_numbering(getattr(app.env, "external_site_map", None))
    docname = app.env.docname
    if docname in numbered:
        depth = 2 if numbered[docname] else -2
        command = f"\\setcounter{{secnumdepth}}{{{depth}}}"
        doctree.insert(0, nodes.raw("", command, format="latex"))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_mathjax)
    app.connect("doctree-read", _number_parts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
