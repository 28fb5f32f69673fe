"""Rules of ``tools check`` about code: cells parse, pass ruff, and ``#@save`` rules hold.

- Syntax: every code cell compiles as IPython code (:mod:`tools.core.python`).
- Ruff: the code cells of each page are written, in order, into a temporary ``.ipynb``
  and checked with ``ruff check`` as a *notebook*, with the rules of ``[tool.ruff]`` in
  the book's ``pyproject.toml``. Linting a notebook (not a concatenated script) is what
  allows the display idiom of a cell ending with an expression (B018 is not reported
  for a cell's last expression), and makes E402 mean "imports at the top of a *cell*".
  Chapters use the project's line length; ``dlbook`` is a first-party package for
  import sorting. A ``#@save`` import run declares the library's import pool, so its
  unused imports (F401) are not reported. Ruff's own syntax errors are dropped: IPython
  syntax (``obj?``, ``%magic``) is judged by the syntax rule, which knows it. Each
  finding is mapped back from (cell, row) to the line of the Markdown source.
- ``#@save``: the extractor's own checks (:func:`tools.library.generate.generate`), unchanged.
- Build machinery: no code cell, and no generated ``dlbook`` module, names the smoke
  profile (``smoke``, ``_profile``, ``DLBOOK_PROFILE``, ``DLBOOK_SMOKE``). What a reader
  reads is the method as published; a page declares its smoke reductions in its front
  matter (``smoke:``), which must be valid (:func:`tools.execution.kernel_env.smoke_settings`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from tools.checks.pages import Page
from tools.core.files import PROJECT_ROOT
from tools.core.notebook import front_matter_line
from tools.core.problems import Problem
from tools.core.python import cell_syntax_error
from tools.core.toc import TocError
from tools.execution.kernel_env import SmokeSettingsError, smoke_settings
from tools.library.generate import PACKAGE, ExtractError, generate
from tools.library.header import is_generated
from tools.library.saved import MARK, Section, saved_blocks

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

# Settings that do not apply to a temporary copy of the cells.
NOT_CARRIED = {"exclude", "extend-exclude", "include", "extend-include", "src", "cache-dir",
               "force-exclude", "respect-gitignore", "per-file-ignores",
               "extend-per-file-ignores", "extend", "namespace-packages"}
CHAPTER_SETTINGS = {"lint.isort.known-first-party": ["dlbook"]}


def notebooks(pages: list[Page]):
    """``(page, notebook)`` for every page that parsed as a notebook."""
    for page in pages:
        if page.notebook is not None and page.notebook.is_notebook:
            yield page, page.notebook


def syntax_problems(pages: list[Page]) -> list[Problem]:
    found = []
    for page, nb in notebooks(pages):
        for cell in nb.code_cells:
            problem = cell_syntax_error(nb, cell)
            if problem is not None:
                found.append(Problem(page.path, problem.line, problem.message))
    return found


# Words that belong to the build, not to the code a reader reads.
MACHINERY = re.compile(r"smoke|_profile|DLBOOK_PROFILE|DLBOOK_SMOKE", re.IGNORECASE)
MACHINERY_HINT = ("declare smoke reductions in the page's front matter (smoke: ...), "
                  "never in code (docs/execution.md)")


def machinery_words(text: str):
    """``(offset, word)`` for each line of ``text`` (0-based) that names the build."""
    for offset, line in enumerate(text.splitlines()):
        match = MACHINERY.search(line)
        if match:
            yield offset, match.group(0)


def machinery_problems(pages: list[Page]) -> list[Problem]:
    """Code cells that name the smoke profile, and invalid ``smoke`` front matter."""
    found = []
    for page, nb in notebooks(pages):
        for cell in nb.code_cells:
            found += [Problem(page.path, cell.line + offset, f"code cell {cell.number} "
                              f"names {word!r}: {MACHINERY_HINT}")
                      for offset, word in machinery_words(cell.source)]
        if "smoke" in nb.metadata:
            try:
                smoke_settings(nb.metadata["smoke"])
            except SmokeSettingsError as err:
                found.append(Problem(page.path, front_matter_line(page.path, "smoke:"),
                                     f"front matter: {err}"))
    return found


def library_machinery_problems(root: Path) -> list[Problem]:
    """Generated ``dlbook`` modules that name the smoke profile (hand-written ones may)."""
    package = root / PACKAGE
    found = []
    for path in sorted(package.glob("*.py")) if package.is_dir() else []:
        if is_generated(path):
            found += [Problem(path, offset + 1, f"generated module names {word!r}: "
                              f"{MACHINERY_HINT}")
                      for offset, word in machinery_words(path.read_text(encoding="utf-8"))]
    return found


def ruff_settings(book: Path) -> dict:
    """``[tool.ruff]`` of the book's pyproject.toml (else this project's), flattened to
    dotted keys, with the chapter settings on top."""
    for pyproject in (book / "pyproject.toml", PROJECT_ROOT / "pyproject.toml"):
        if tomllib is not None and pyproject.is_file():
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            if "ruff" in data.get("tool", {}):
                break
    else:
        data = {}
    flat: dict = {}

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            name = f"{prefix}{key}"
            if key in NOT_CARRIED:
                continue
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                flat[name] = value

    walk(data.get("tool", {}).get("ruff", {}), "")
    flat.update(CHAPTER_SETTINGS)
    return flat


def toml_text(settings: dict) -> str:
    """A ruff.toml holding ``settings`` (dotted keys; strings, numbers, lists)."""
    def value(item) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return json.dumps(item)

    return "".join(f"{key} = {value(item)}\n" for key, item in settings.items())


def cells_notebook(page: Page) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(cell.source) for cell in page.notebook.code_cells]
    return nb


def pool_import_lines(page: Page) -> set[int]:
    """Source lines of the page's ``#@save`` import runs (the library's import pool)."""
    nb = page.notebook
    if not any(MARK in cell.source for cell in nb.code_cells):
        return set()
    blocks, _ = saved_blocks(nb, Section(page.path, page.rel, 0, None, page.rel))
    return {block.line + n for block in blocks if block.kind == "import"
            for n in range(block.text.count("\n") + 1)}


def run_ruff(folder: Path, config: Path) -> list[dict] | str:
    """Ruff's JSON findings for the notebooks under ``folder``, or an error message."""
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--exit-zero",
               "--config", str(config), "--output-format", "json", str(folder)]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                              timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"ruff did not run: {err}"
    if done.returncode != 0:
        return f"ruff failed: {(done.stderr or done.stdout).strip()[:500]}"
    try:
        return json.loads(done.stdout or "[]")
    except ValueError:
        return f"ruff printed no JSON: {done.stdout[:200]}"


def ruff_problems(book: Path, pages: list[Page]) -> list[Problem]:
    """Ruff's findings in the code cells of every notebook page, at their source lines."""
    linted = [p for p in pages if p.notebook is not None and p.notebook.is_notebook
              and p.notebook.code_cells]
    if not linted:
        return []
    found = []
    with tempfile.TemporaryDirectory(prefix="dlbook-check-") as tmp:
        folder = Path(tmp)
        config = folder / "ruff.toml"
        config.write_text(toml_text(ruff_settings(book)), encoding="utf-8")
        by_file = {}
        for number, page in enumerate(linted):
            target = folder / f"page{number:04d}.ipynb"
            nbformat.write(cells_notebook(page), target)
            by_file[target.name] = page
        result = run_ruff(folder, config)
        pool_lines: dict[Path, set[int]] = {}
        if isinstance(result, str):
            return [Problem(linted[0].path, 1, result)]
        for item in result:
            code = item.get("code")
            page = by_file.get(Path(item.get("filename", "")).name)
            if page is None or not code or code == "invalid-syntax":
                continue
            cells = page.notebook.code_cells
            number = item.get("cell") or 1
            cell = cells[number - 1] if number <= len(cells) else cells[-1]
            line = cell.line + (item.get("location") or {}).get("row", 1) - 1
            if code == "F401" and line in pool_lines.setdefault(
                    page.path, pool_import_lines(page)):
                continue
            found.append(Problem(page.path, line,
                                 f"code cell {cell.number}: ruff {code}: {item['message']}"))
    return found


def saved_problems(book: Path) -> list[Problem]:
    """The extractor's problems with the ``#@save`` blocks."""
    try:
        generate(book)
    except TocError:  # the table-of-contents rule reports it, with every other entry
        return []
    except ExtractError as err:
        return list(err.problems)
    return []
