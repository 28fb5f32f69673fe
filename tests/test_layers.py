"""tools/ imports one way only: commands and sphinx, then render and checks, then
execution, library, core (docs/architecture.md). import-linter checks the contract of
pyproject.toml; the second test shows that the contract catches an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the ``tools`` package under ``root`` with its pyproject.toml."""
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""}, timeout=300)


def test_tools_imports_point_down_only():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "tools", tmp_path / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    core = tmp_path / "tools" / "core" / "files.py"
    core.write_text(core.read_text() + "\nfrom tools.checks.book import check_book  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "tools.core.files -> tools.checks.book" in done.stdout
