"""Check that every code cell of the book is valid (IPython) Python before anything runs.

A syntax error is reported as ``path:line: code cell N: SyntaxError: message`` with the
line in the Markdown source, so an author can jump straight to it.
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager

from tools.notebook import Cell, Notebook, Problem, read_notebook


def cell_syntax_error(nb: Notebook, cell: Cell) -> Problem | None:
    """The syntax error of one code cell (IPython magics allowed), or None."""
    try:
        python = TransformerManager().transform_cell(cell.source)
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


def syntax_problems(paths: list[Path]) -> list[Problem]:
    """Syntax errors in the code cells of the notebooks among ``paths``."""
    problems = []
    for path in paths:
        if path.suffix != ".md":
            continue
        nb = read_notebook(path)
        if not nb.is_notebook:
            continue
        for cell in nb.code_cells:
            problem = cell_syntax_error(nb, cell)
            if problem:
                problems.append(problem)
    return problems
