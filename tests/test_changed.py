"""``tools changed``: pages a git diff touches, plus the notebooks that use a changed
library definition (transitively), in a throw-away git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.execution.changed import affected

REPO = Path(__file__).resolve().parents[1]
FRONT = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
         "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n")
TOC = """\
format: jb-book
root: index
parts:
  - caption: A
    chapters:
      - file: chapters/01-a/index
        sections:
          - file: chapters/01-a/defs
          - file: chapters/01-a/uses-helper
          - file: chapters/01-a/uses-other
          - file: chapters/01-a/uses-wrapper
          - file: chapters/01-a/uses-extra
          - file: chapters/01-a/plain
"""
DEFS = """\
#@save
def helper(x):
    \"\"\"Double x.\"\"\"
    return 2 * x


#@save
def other():
    return 1


#@save
def wrapper(x):
    return helper(x) + 1
"""


def page(label: str, *cells: str, prose: str = "Some prose.") -> str:
    body = "\n\n".join(f"```{{code-cell}} ipython3\n{c}\n```" for c in cells)
    return f"{FRONT}({label})=\n# {label}\n\n{prose}\n\n{body}\n\n## Exercises\n\n1. Go.\n"


FILES = {
    "_toc.yml": TOC,
    "index.md": "(sec-home)=\n# Home\n",
    "chapters/01-a/index.md": "(chap-a)=\n# A\n",
    "chapters/01-a/defs.md": page("sec-defs", DEFS),
    "chapters/01-a/uses-helper.md": page("sec-uh", "import dlbook\n\ndlbook.helper(1)"),
    "chapters/01-a/uses-other.md": page("sec-uo", "from dlbook import other\n\nother()"),
    "chapters/01-a/uses-wrapper.md": page("sec-uw", "import dlbook\n\ndlbook.wrapper(2)"),
    "chapters/01-a/uses-extra.md": page("sec-ux", "from dlbook import _extra\n\n_extra.K"),
    "chapters/01-a/plain.md": page("sec-plain", "1 + 1"),
    "dlbook/_extra.py": '"""Hand-written."""\n\nK = 1\n',
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org",
                           "-c", "init.defaultBranch=main", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A git repository whose subfolder ``book`` holds the book, committed on main."""
    root = tmp_path / "repo"
    book = root / "book"
    for rel, text in FILES.items():
        (book / rel).parent.mkdir(parents=True, exist_ok=True)
        (book / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return book


def edit(book: Path, rel: str, old: str, new: str) -> None:
    path = book / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def names(found: list[str]) -> list[str]:
    return [rel.rsplit("/", 1)[1] for rel in found]


def test_nothing_changed(repo):
    assert affected(repo, "main") == []


def test_changed_definition_reaches_its_users_transitively(repo):
    edit(repo, "chapters/01-a/defs.md", "return 2 * x", "return 3 * x")
    assert names(affected(repo, "main")) == ["defs.md", "uses-helper.md", "uses-wrapper.md"]


def test_docstrings_and_prose_do_not_reach_users(repo):
    edit(repo, "chapters/01-a/defs.md", "Double x.", "Twice x.")
    edit(repo, "chapters/01-a/defs.md", "Some prose.", "Other prose.")
    assert names(affected(repo, "main")) == ["defs.md"]


def test_committed_branch_staged_and_untracked_changes(repo):
    root = repo.parent
    git(root, "checkout", "-q", "-b", "topic")
    edit(repo, "chapters/01-a/defs.md", "return 1", "return 5")
    git(root, "commit", "-q", "-am", "change other")
    edit(repo, "chapters/01-a/plain.md", "1 + 1", "2 + 2")  # not committed
    (repo / "chapters/01-a/new.md").write_text(page("sec-new", "3"))
    edit(repo, "_toc.yml", "          - file: chapters/01-a/plain\n",
         "          - file: chapters/01-a/plain\n          - file: chapters/01-a/new\n")
    assert names(affected(repo, "main")) == ["defs.md", "uses-other.md", "plain.md",
                                             "new.md"]


def test_hand_written_library_module(repo):
    edit(repo, "dlbook/_extra.py", "K = 1", "K = 2")
    assert names(affected(repo, "main")) == ["uses-extra.md"]


def test_a_broken_library_lists_every_user(repo):
    edit(repo, "chapters/01-a/defs.md", "def other():", "def other(:")
    assert names(affected(repo, "main")) == ["defs.md", "uses-helper.md", "uses-other.md",
                                             "uses-wrapper.md", "uses-extra.md"]


def test_command_prints_paths_from_the_current_folder(repo):
    edit(repo, "chapters/01-a/plain.md", "1 + 1", "2 + 2")
    result = subprocess.run([sys.executable, "-m", "tools", "changed", "--base", "main",
                             "--book", str(repo)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{repo}/chapters/01-a/plain.md"]
    bad = subprocess.run([sys.executable, "-m", "tools", "changed", "--base", "no-such-ref",
                          "--book", str(repo)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "no-such-ref" in bad.stderr
