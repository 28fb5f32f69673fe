"""Code cells as Python: IPython syntax turned into plain Python, and syntax errors.

One conversion serves every stage that reads code cells (``#@save`` extraction, the
library-use analysis, the Colab export, the checks): IPython's own transformer rewrites
magics one line for one line, so line numbers still match the source. A syntax error is
reported as ``path:line: code cell N: SyntaxError: message`` with the line in the
Markdown source, so an author can jump straight to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager

from tools.core.memo import FileMemo
from tools.core.notebook import Cell, Notebook, NotebookError, read_notebook
from tools.core.problems import Problem


def to_python(source: str) -> str:
    """A code cell as plain Python: IPython magics become calls, one line for one line.
    Raises SyntaxError for a malformed magic."""
    return TransformerManager().transform_cell(source)


MAGICS_WITH_CODE = {"time", "timeit", "prun", "capture", "debug"}


def python_of_cell(source: str) -> str | None:
    """A code cell as plain Python, or None if it is not Python.

    IPython magics are rewritten as IPython runs them; the code given to ``%time``,
    ``%%timeit``, ``%%capture`` and friends is appended, since it runs too.
    """
    try:
        python = to_python(source)
        tree = ast.parse(python)
    except SyntaxError:
        return None
    extra = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic")
                and node.args and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in MAGICS_WITH_CODE):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    code = python_of_cell(arg.value.strip())
                    if code:
                        extra.append(code)
    return "\n".join([python, *extra])


def cell_syntax_error(nb: Notebook, cell: Cell) -> Problem | None:
    """The syntax error of one code cell (IPython magics allowed), or None."""
    try:
        python = to_python(cell.source)
    except SyntaxError as err:  # raised by malformed magics
        return Problem(nb.path, cell.line, f"code cell {cell.number}: {err}")
    try:
        compile(python, f"{nb.path}:cell{cell.number}", "exec", dont_inherit=True)
    except SyntaxError as err:
        # Magics are rewritten one line for one line, so line numbers still match.
        offset = (err.lineno or 1) - 1
        return Problem(
            nb.path,
            cell.line + offset,
            f"code cell {cell.number}: SyntaxError: {err.msg}",
        )
    return None


def file_syntax_problems(path: Path) -> list[Problem]:
    """Syntax errors in the code cells of one page (none if it is not a notebook)."""
    try:
        nb = read_notebook(path)
    except NotebookError as err:
        return list(err.problems)
    if not nb.is_notebook:
        return []
    return [problem for cell in nb.code_cells
            if (problem := cell_syntax_error(nb, cell)) is not None]


def syntax_problems(paths: list[Path], memo: FileMemo | None = None) -> list[Problem]:
    """Syntax errors in the code cells of the notebooks among ``paths``; with ``memo``,
    a page whose file has not changed since it was last checked is not read again."""
    problems = []
    for path in paths:
        if path.suffix == ".md":
            problems += memo.value(path, file_syntax_problems) if memo is not None \
                else file_syntax_problems(path)
    return problems
