"""The generated library as a whole: stable, importable, lint-clean, and kept in sync."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_extract_support import (
    REPO,
    copy_fixture,
    files_of,
    page,
    run_tools,
    run_tools_process,
    write_book,
)

RUFF = Path(sys.executable).with_name("ruff")


@pytest.fixture()
def basic(tmp_path) -> Path:
    """The fixture book tests/fixtures/extract/basic, generated once."""
    book = copy_fixture("basic", tmp_path)
    result = run_tools("lib", "--book", str(book))
    assert result.returncode == 0, result.stderr
    return book


def snapshot(book: Path) -> dict[str, bytes]:
    return {p.relative_to(book).as_posix(): p.read_bytes()
            for p in sorted([*book.joinpath("dlbook").glob("*.py"), book / "book" / "api.md"])}


def test_extraction_is_idempotent(basic):
    before = snapshot(basic)
    assert set(before) == {"dlbook/__init__.py", "dlbook/ch01_basics.py",
                           "dlbook/ch02_models.py", "book/api.md"}
    again = run_tools("lib", "--book", str(basic))
    assert again.returncode == 0 and "0 file(s) changed" in again.stderr
    assert snapshot(basic) == before
    assert files_of(basic) == {k: v.decode() for k, v in before.items()}


def test_generated_library_imports_and_works(basic):
    script = (
        "import json, dlbook\n"
        "m = dlbook.Module(2.0)\n"
        "out = {'all': dlbook.__all__, 'version': dlbook.__version__,\n"
        "       'forward': m.forward([1, 2]).tolist(), 'models': m.models(),\n"
        "       'sine': dlbook.sine_table(), 'module': dlbook.timed.__module__,\n"
        "       'doc': dlbook.Module.forward.__doc__}\n"
        "print(json.dumps(out))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=basic, text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["all"] == ["add_to_class", "HyperParameters", "DATA_HUB", "timed",
                          "sine_table", "Module"]
    assert out["version"] == "0.0.0"
    assert out["forward"] == [2.0, 4.0] and out["models"] == []
    assert out["sine"] == [0.0, 1.0, 0.0, -1.0]
    assert out["module"] == "dlbook.ch01_basics"  # a replaced stub keeps its place
    assert "Defined in section sec-models-section (chapters/02-models/models.md)." in out[
        "doc"]


def test_every_public_name_is_defined_exactly_once(basic):
    defined: list[str] = []
    for path in sorted((basic / "dlbook").glob("ch*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.append(node.name)
                if isinstance(node, ast.ClassDef):
                    methods = [n.name for n in node.body if isinstance(n, ast.FunctionDef)]
                    assert len(methods) == len(set(methods)), (node.name, methods)
            elif isinstance(node, ast.Assign):
                defined += [t.id for t in node.targets]
    assert sorted(defined) == sorted(set(defined))
    init = (basic / "dlbook" / "__init__.py").read_text()
    exported = ast.literal_eval(init.split("__all__ = ", 1)[1])
    assert sorted(exported) == sorted(n for n in defined if not n.startswith("_"))


def test_generated_code_passes_ruff(basic):
    shutil.copy2(REPO / "pyproject.toml", basic / "pyproject.toml")
    result = subprocess.run([str(RUFF), "check", "--no-cache", "dlbook"], cwd=basic,
                            text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_passes_in_sync_and_fails_with_a_diff(basic):
    assert run_tools("lib", "--check", "--book", str(basic)).returncode == 0
    section = basic / "chapters" / "01-basics" / "plotting.md"
    section.write_text(section.read_text().replace("n=4", "n=8"))
    stale = run_tools("lib", "--check", "--book", str(basic))
    assert stale.returncode == 1
    assert "--- a/dlbook/ch01_basics.py" in stale.stdout
    assert "-def sine_table(n=4):\n+def sine_table(n=8):" in stale.stdout
    assert "+- `sine_table(n=8)`" in stale.stdout  # the API page too
    assert "run `make lib`" in stale.stderr
    assert "n=4" in (basic / "dlbook" / "ch01_basics.py").read_text()  # nothing written


def test_check_notices_hand_edits_and_stale_modules(basic):
    module = basic / "dlbook" / "ch02_models.py"
    module.write_text(module.read_text() + "\n# a hand edit\n")
    old = basic / "dlbook" / "ch09_removed.py"
    old.write_text((basic / "dlbook" / "ch01_basics.py").read_text())
    result = run_tools("lib", "--check", "--book", str(basic))
    assert result.returncode == 1
    assert "-# a hand edit" in result.stdout and "--- a/dlbook/ch09_removed.py" in result.stdout
    assert run_tools("lib", "--book", str(basic)).returncode == 0
    assert not old.exists() and "hand edit" not in module.read_text()


def test_hand_written_files_are_left_alone(basic):
    profile = basic / "dlbook" / "_smoke.py"
    profile.write_text('"""Hand-written."""\n')
    assert run_tools("lib", "--book", str(basic)).returncode == 0
    assert run_tools("lib", "--check", "--book", str(basic)).returncode == 0
    assert profile.read_text() == '"""Hand-written."""\n'
    clash = basic / "dlbook" / "ch01_basics.py"
    clash.write_text('"""Hand-written, where a generated module goes."""\n')
    result = run_tools("lib", "--book", str(basic))
    assert result.returncode == 1 and "ch01_basics.py:1: this file is not generated" in \
        result.stderr
    assert clash.read_text().startswith('"""Hand-written')


def test_first_run_may_find_the_api_page_in_the_toc_before_it_exists(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", "#@save\ndef f():\n    pass")})
    toc = tmp_path / "_toc.yml"
    toc.write_text(toc.read_text() + "      - file: book/api\n")
    assert run_tools("lib", "--book", str(tmp_path)).returncode == 0
    assert (tmp_path / "book" / "api.md").read_text().startswith("% Generated")
    assert run_tools("lib", "--check", "--book", str(tmp_path)).returncode == 0


def test_command_line_in_a_subprocess(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", "#@save\ndef f():\n    pass")})
    result = run_tools_process("lib", "--book", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dlbook" / "ch01_a.py").is_file()


def test_the_repository_library_is_in_sync_with_its_chapters():
    result = run_tools_process("lib", "--check")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    lint = subprocess.run([str(RUFF), "check", "--no-cache", "dlbook"], cwd=REPO,
                          text=True, capture_output=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
