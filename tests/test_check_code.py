"""``tools check`` code rules: cells parse, pass ruff as a notebook, and #@save rules hold;
plus the command itself and the real book."""

from __future__ import annotations

import os
import subprocess
import sys

from test_check_support import (
    FRONT,
    REPO,
    SECTION,
    book_copy,
    broken,
    line_of,
    problems,
    section,
    write,
)

from tools.checks.book import check_book
from tools.checks.code import ruff_settings, toml_text


def cells(*sources: str) -> str:
    return "\n\n".join(f"```{{code-cell}} ipython3\n{s}\n```" for s in sources)


def test_syntax_error_names_the_line(tmp_path):
    found, text = broken(tmp_path, section(cells("x = 1\ny = (x +\n")))
    assert found == [f"{SECTION}:{line_of(text, 'y = (x +')}: code cell 1: SyntaxError: "
                     "'(' was never closed"]


def test_ruff_finding_mapped_to_the_markdown_line(tmp_path):
    found, text = broken(tmp_path, section(cells("import torch", "import os\n\ntorch.ones(1)")))
    assert found == [f"{SECTION}:{line_of(text, 'import os')}: code cell 2: ruff F401: `os` "
                     "imported but unused"]


def test_last_expression_of_a_cell_is_the_display_idiom(tmp_path):
    # a bare expression ending a cell shows its value; in the middle it is useless
    found, text = broken(tmp_path, section(cells("x = [1, 2]\nx", "x\ny = 3\ny")))
    assert found == [f"{SECTION}:{line_of(text, '{code-cell}', nth=2) + 1}: code cell 2: "
                     "ruff B018: "
                     "Found useless expression. Either assign it to a variable or remove it."]


def test_ipython_syntax_is_not_a_ruff_error(tmp_path):
    found, _ = broken(tmp_path, section(cells("%time sum(range(10))", "import torch\n\n"
                                              "torch.*ones*?")))
    assert found == []


def test_imports_at_the_top_of_a_cell_and_dlbook_first_party(tmp_path):
    found, text = broken(tmp_path, section(cells(
        "import torch\n\nimport dlbook\n\ndlbook, torch",
        "import math\n\nimport dlbook\nimport torch\n\nmath, dlbook, torch",
        "z = 1\nimport os\n\nos, z")))
    assert found == [
        f"{SECTION}:{line_of(text, 'import math')}: code cell 2: ruff I001: Import block is "
        "un-sorted or un-formatted",
        f"{SECTION}:{line_of(text, 'import os')}: code cell 3: ruff E402: Module level "
        "import not at top of cell"]


def test_saved_import_pool_is_not_unused(tmp_path):
    found, text = broken(tmp_path, section(cells("#@save\nimport collections\nimport re",
                                                 "import json")))
    assert found == [f"{SECTION}:{line_of(text, 'import json')}: code cell 2: ruff F401: "
                     "`json` imported but unused"]


def test_save_rules_are_the_extractor_s(tmp_path):
    found, text = broken(tmp_path, section(cells("#@save\nfor _ in range(2):\n    pass")))
    assert found == [f"{SECTION}:{line_of(text, '#@save')}: #@save marks a statement of "
                     "type For; only a top-level def, class, import or assignment can be "
                     "saved"]


def test_ruff_settings_come_from_pyproject(tmp_path):
    settings = ruff_settings(tmp_path)  # no pyproject here: the project's own
    assert settings["line-length"] == 99
    assert settings["lint.select"] == ["E", "F", "W", "I", "B", "UP"]
    assert settings["lint.isort.known-first-party"] == ["dlbook"]
    assert "extend-exclude" not in settings
    assert 'lint.select = ["E", "F", "W", "I", "B", "UP"]\n' in toml_text(settings)


def run_check(book, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "tools", "check", "--book", str(book),
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env)


def test_command_exit_status_output_and_annotations(tmp_path):
    book = book_copy(tmp_path)
    clean = run_check(book)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == ""
    assert "[dlbook] check: no problems" in clean.stderr
    text = section("See {ref}`sec-nowhere`.\n\n" + cells("import os"))
    (book / SECTION).write_text(text)
    env = {**os.environ, "GITHUB_ACTIONS": "true"}
    result = run_check(book, env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    path = book / SECTION
    assert lines[0] == (f"{path}:{line_of(text, 'sec-nowhere')}: {{ref}}`sec-nowhere`: no such "
                        "label in the book (a `(name)=` line, a figure's name or a directive's "
                        ":name:)")
    assert lines[1].startswith(f"::error file={path},line={line_of(text, 'sec-nowhere')},"
                               "title=make check::{ref}`sec-nowhere`")
    assert f"{path}:{line_of(text, 'import os')}: code cell 1: ruff F401" in result.stdout
    assert "2 problem(s) in 1 file(s)" in result.stderr
    only_index = run_check(book, str(book / "chapters/01-basics/index.md"))
    assert only_index.returncode == 0 and only_index.stdout == ""


def test_the_real_book_passes_check():
    found = [str(p) for p in check_book(REPO)]
    assert found == [], "\n".join(found)


def test_the_fixture_copy_is_clean(tmp_path):
    assert problems(book_copy(tmp_path)) == []


def test_build_machinery_in_a_code_cell_is_refused(tmp_path):
    found, text = broken(tmp_path, section(cells(
        "epochs = 10", "from dlbook import _profile\n\nk = _profile.smoke_scale(1, 8)")))
    line = line_of(text, "from dlbook import _profile")
    assert found == [
        f"{SECTION}:{line}: code cell 2 names '_profile': declare smoke reductions in the "
        "page's front matter (smoke: ...), never in code (docs/execution.md)",
        f"{SECTION}:{line + 2}: code cell 2 names '_profile': declare smoke reductions in "
        "the page's front matter (smoke: ...), never in code (docs/execution.md)"]


def test_smoke_front_matter_is_validated(tmp_path):
    front = FRONT.replace("\n---", "\nsmoke:\n  max_epochs: 0\n---")
    found, _ = broken(tmp_path, section(cells("x = 1"), front=front))
    line = front.splitlines().index("smoke:") + 1
    assert found == [f"{SECTION}:{line}: front matter: smoke: max_epochs must be a positive "
                     "whole number or null, not 0"]
    good = front.replace("max_epochs: 0", "max_epochs: 2\n  width: 0.25")
    assert broken(tmp_path / "good", section(cells("x = 1"), front=good))[0] == []


def test_generated_library_naming_the_build_is_refused(tmp_path):
    from tools.library.header import GENERATED

    book = book_copy(tmp_path)
    module = write(book, "dlbook/ch01_x.py", f"{GENERATED}\nx = 1\nSMOKE_CAP = 3\n")
    assert f"dlbook/{module.name}:3: generated module names 'SMOKE': declare smoke " \
        "reductions in the page's front matter (smoke: ...), never in code " \
        "(docs/execution.md)" in problems(book)
    hand = book / "dlbook" / "_smoke.py"
    hand.write_text('"""Hand-written: may name smoke."""\n')
    assert not any("_smoke.py" in p for p in problems(book))


def test_the_real_book_shows_no_build_machinery():
    from tools.checks.book import read_pages
    from tools.checks.code import library_machinery_problems, machinery_problems
    from tools.checks.structure import toc_entries

    entries, _ = toc_entries(REPO)
    book, _ = read_pages(REPO, [e.path for e in entries if e.path is not None])
    assert len(book.pages) > 60
    assert [str(p) for p in machinery_problems(book.pages)] == []
    assert [str(p) for p in library_machinery_problems(REPO)] == []
