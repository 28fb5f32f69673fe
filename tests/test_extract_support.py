"""Helpers for the library-extraction tests: write tiny MyST books into a temporary folder.

Kept in a ``test_extract*`` module so that it sits with the tests it serves; it defines no
tests itself.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tools.cli import main
from tools.core.notebook import MYST_FRONT_MATTER
from tools.library.generate import ExtractError, generate

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "extract"
FRONT = MYST_FRONT_MATTER


def page(label: str, *cells: str, title: str | None = None) -> str:
    """A MyST notebook: label, H1, then each cell (code unless it starts with 'md:')."""
    parts = [FRONT, f"({label})=", f"# {title or label.removeprefix('sec-').title()}", ""]
    for cell in cells:
        body = textwrap.dedent(cell).strip("\n")
        if body.startswith("md:"):
            parts += [body[3:].strip(), ""]
        else:
            parts += ["```{code-cell} ipython3", body, "```", ""]
    return "\n".join(parts)


def write_book(root: Path, pages: dict[str, str]) -> Path:
    """Write ``pages`` ({'chapters/01-a/s.md': text}) and a TOC listing them in order."""
    (root / "index.md").write_text(FRONT + "\n(sec-home)=\n# Home\n", encoding="utf-8")
    entries = []
    for rel, text in pages.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        entries.append(f"      - file: {rel.removesuffix('.md')}")
    toc = ["format: jb-book", "root: index", "parts:", "  - caption: All", "    chapters:",
           *entries]
    (root / "_toc.yml").write_text("\n".join(toc) + "\n", encoding="utf-8")
    return root


def files_of(root: Path) -> dict[str, str]:
    """The generated files of the book at ``root``."""
    return generate(root)[1]


def problems_of(root: Path) -> list[str]:
    """The problems that stop generation, paths relative to ``root`` (fails the test when
    there are none)."""
    try:
        generate(root)
    except ExtractError as err:
        return [str(p).replace(f"{root}/", "") for p in err.problems]
    raise AssertionError("expected extraction problems, found none")


def copy_fixture(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    return target


def run_tools(*args: str) -> subprocess.CompletedProcess:
    """``python -m tools ARGS``, in this process (fast), capturing what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["python", "-m", "tools", *args], code,
                                       out.getvalue(), err.getvalue())


def run_tools_process(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m tools ARGS`` in a subprocess, from the repository."""
    return subprocess.run([sys.executable, "-m", "tools", *args], cwd=cwd, text=True,
                          capture_output=True, check=False)
