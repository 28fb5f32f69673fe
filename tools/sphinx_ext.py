"""Sphinx extension of the book: ships MathJax with the website so math renders offline.

MathJax comes from the pinned ``django-static-mathjax`` wheel (a plain copy of MathJax 3);
only the combined TeX/MathML/CHTML component, its WOFF2 fonts and the TeX
extensions it autoloads are copied, into a folder
that Sphinx then copies into ``_static/mathjax`` of the site.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

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


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
