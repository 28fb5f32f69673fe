"""One Colab-ready, executed ``.ipynb`` per notebook page (``tools notebooks``).

``make notebooks`` executes what is not cached (``tools execute``), then writes
``_build/notebooks/<path of the page>.ipynb`` for every notebook page of the TOC. Each
notebook is the page as myst-nb reads it, with the outputs of its jupyter-cache record
merged in exactly as myst-nb merges them at render time
(``merge_match_into_notebook``), so a download shows the outputs of the website. Then
:func:`colab_ready` makes it run anywhere:

- a first cell installs the library the outputs were made with when ``dlbook`` cannot
  be imported (Colab, a bare Jupyter): the release ``dlbook==<version>`` for a build of a
  released commit, else that exact commit from the book's repository
  (:mod:`tools.render.install`); it does nothing where ``dlbook`` can be imported (the
  repository's environment, which installs the package in editable mode);
- Colab's GPU accelerator is requested in the metadata when the code uses a GPU
  (``try_gpu``, ``try_all_gpus``, ``.cuda()``, ``torch.cuda.*``, ``"cuda"`` devices,
  ``Trainer(num_gpus=N)`` with N other than 0), found with ``ast``;
- ``#@save`` marks become ``# saved in dlbook``: Colab reads any ``#@`` comment as a form
  annotation and flags ``#@save`` as "not an allowed annotation";
- Markdown cells become plain CommonMark (:mod:`tools.render.commonmark`): Jupyter and
  Colab show MyST labels, roles and directives as raw text, so references become links to
  the website with its numbers, citations author-year links to its bibliography, figures
  images attached to the cell, admonitions quoted blocks.

The same :func:`colab_ready` makes the website's download copies
(:mod:`tools.sphinx.notebooks`). A page whose outputs are not cached is an error and
nothing is written, so ``_build/notebooks`` is never a mix of old and new.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import nbformat

from tools.core.files import write_atomic
from tools.core.problems import Problem
from tools.core.python import python_of_cell
from tools.core.toc import toc_sources
from tools.library.edit import MARK, mark_start
from tools.render.commonmark import to_commonmark
from tools.render.install import PACKAGE, library_requirement
from tools.render.website import Website, website

OUT = Path("_build") / "notebooks"  # relative to the book
INSTALL_TAG = "dlbook-install"
SAVED_NOTE = "# saved in dlbook"
GPU_CALLS = frozenset({"try_gpu", "try_all_gpus", "cuda"})
GPU_TYPE = "T4"
DROPPED_METADATA = ("jupytext", "source_map", "smoke", "data_files")  # build-only keys


def install_source(requirement: str) -> str:
    """The install cell for ``requirement`` (from
    :func:`tools.render.install.library_requirement`)."""
    if not requirement.startswith((f"{PACKAGE}==", f"{PACKAGE} @ ")) or '"' in requirement:
        raise ValueError(f"not a requirement for {PACKAGE}: {requirement!r}")
    argument = requirement if " " not in requirement else f'"{requirement}"'
    return (
        "# Run this cell first. On Colab, or anywhere without this book's repository, it\n"
        "# installs the book's library `dlbook` as these outputs were made with it: the\n"
        "# released version, or else the exact commit of the book's repository. Where\n"
        "# `dlbook` can be imported already (the repository's environment), it does nothing.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("dlbook") is None:\n'
        f"    %pip install --quiet {argument}\n"
    )


def _is_gpu_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in GPU_CALLS:
        return True
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) \
            and func.value.attr == "cuda":  # torch.cuda.device_count(), ...
        return True
    if name == "Trainer":
        gpus = next((k.value for k in node.keywords if k.arg == "num_gpus"), None)
        return gpus is not None and not (isinstance(gpus, ast.Constant) and not gpus.value)
    if name in ("device", "to"):
        return any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                   and a.value.startswith("cuda") for a in node.args)
    return False


def uses_gpu(sources: list[str]) -> bool:
    """Whether code cells call for a GPU (see the module docstring)."""
    for source in sources:
        python = python_of_cell(source)
        if python is None:
            continue
        if any(isinstance(n, ast.Call) and _is_gpu_call(n) for n in ast.walk(ast.parse(python))):
            return True
    return False


def rewrite_marks(source: str) -> str:
    """``source`` with every ``#@save`` comment written as ``# saved in dlbook``."""
    if MARK not in source:
        return source
    lines = source.split("\n")
    for number, line in enumerate(lines):
        if mark_start(line) is not None:
            lines[number] = line[:mark_start(line)] + SAVED_NOTE
    return "\n".join(lines)


def colab_ready(notebook: nbformat.NotebookNode, requirement: str, book: Path | None = None,
                docname: str | None = None) -> nbformat.NotebookNode:
    """A copy of an executed notebook that runs on Colab (see the module docstring); its
    first cell installs ``requirement`` (:func:`tools.render.install.library_requirement`).

    ``book`` and ``docname`` (the page's path in the book, without suffix) say where the
    page is, for the links, numbers and images of its Markdown cells; without them the
    MyST syntax is still rewritten, but references get neither numbers nor links."""
    nb = copy.deepcopy(notebook)
    site = website(book) if book is not None else Website.unknown()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            converted = to_commonmark(cell.source, site, docname or "index")
            cell.source = converted.text
            if converted.attachments:
                cell.attachments = {**cell.get("attachments", {}), **converted.attachments}
    for key in DROPPED_METADATA:
        nb.metadata.pop(key, None)
    nb.cells = [c for c in nb.cells if INSTALL_TAG not in c.get("metadata", {}).get("tags", [])]
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        cell.source = rewrite_marks(cell.source)
    install = nbformat.v4.new_code_cell(install_source(requirement))
    install.id = INSTALL_TAG  # a fixed id: the same page gives the same file
    install.metadata["tags"] = [INSTALL_TAG]
    nb.cells.insert(0, install)
    colab = dict(nb.metadata.get("colab", {}))
    colab.setdefault("provenance", [])
    if uses_gpu([c.source for c in code]):
        nb.metadata["accelerator"] = "GPU"
        colab["gpuType"] = GPU_TYPE
    nb.metadata["colab"] = colab
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    for number, cell in enumerate(nb.cells[1:], 1):  # readers make random ids: renumber
        cell.id = f"cell-{number}"
    return nb


def export(book: Path) -> tuple[dict[str, nbformat.NotebookNode], list[Problem]]:
    """The Colab-ready notebooks by path (``chapters/x/y.ipynb``), and the problems."""
    from jupyter_cache import get_cache

    from tools.core.mystnb import book_settings, is_excluded, read_as_mystnb

    settings = book_settings(book)
    cache = get_cache(settings.cache_path) if settings.cache_path.is_dir() else None
    requirement = library_requirement(book)
    found, problems = {}, []
    for source in toc_sources(book):
        notebook = read_as_mystnb(source, settings)
        if notebook is None:
            continue
        rel = source.resolve().relative_to(book.resolve()).with_suffix(".ipynb").as_posix()
        executed = notebook
        if not is_excluded(source, settings):
            try:
                if cache is None:
                    raise KeyError(rel)
                _, executed = cache.merge_match_into_notebook(notebook)
            except KeyError:
                problems.append(Problem(source, 1, "no executed outputs in the cache: run "
                                        "`make execute` (python -m tools execute) first"))
                continue
        found[rel] = colab_ready(executed, requirement, book, rel.removesuffix(".ipynb"))
    return found, problems


def write_all(out: Path, notebooks: dict[str, nbformat.NotebookNode]) -> int:
    """Write the notebooks under ``out`` and delete the ``.ipynb`` files left from pages
    that are gone; returns how many files changed."""
    changed = 0
    for rel, nb in notebooks.items():
        path = out / rel
        text = nbformat.writes(nb) + "\n"
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        write_atomic(path, text)
        changed += 1
    for path in sorted(out.rglob("*.ipynb")) if out.is_dir() else []:
        if path.relative_to(out).as_posix() not in notebooks:
            path.unlink()
            changed += 1
    return changed
