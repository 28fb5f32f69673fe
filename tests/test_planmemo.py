"""The plan memo: a page is read again whenever its file or the context changes, and only
then."""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_execute import CACHE, edit, execute, make_book

from tools.execution.planmemo import PlanMemo, Reading, file_status


def test_a_reading_is_kept_per_status_and_context(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("one")
    status = file_status(page)
    memo = PlanMemo(tmp_path, "context-a")
    memo.put("page.md", status, Reading(True, "hash", {"m:f": "d"}, ["x.csv"], {"width": 0.5}))
    memo.save()
    again = PlanMemo(tmp_path, "context-a")
    assert again.get("page.md", file_status(page)) == Reading(True, "hash", {"m:f": "d"},
                                                               ["x.csv"], {"width": 0.5})
    assert PlanMemo(tmp_path, "context-b").get("page.md", file_status(page)) is None
    before = page.stat()
    page.write_text("two")  # same size, and the old modification time put back:
    os.utime(page, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file_status(page)[:2] == status[:2]
    assert again.get("page.md", file_status(page)) is None  # the change time still differs


def test_the_memo_never_hides_an_edit(tmp_path: Path):
    book = make_book(tmp_path / "book")
    assert execute(book)[0] == 0
    assert (book / CACHE / "dlbook-plan.json").is_file()
    code, ran, _ = execute(book)
    assert code == 0 and ran == set()
    edit(book / "chapter" / "standalone.md", "```{code-cell} ipython3\n",
         "```{code-cell} ipython3\nedited = 1\n")
    code, ran, _ = execute(book)
    assert code == 0 and ran == {"chapter/standalone.md"}
    memo = book / CACHE / "dlbook-plan.json"
    before = json.loads(memo.read_text())["context"]
    library = next((book / "dlbook").glob("*.py"))
    library.write_text(library.read_text() + "\n\nEXTRA = 1\n")  # the context changes
    code, ran, output = execute(book)
    assert code == 0 and ran == set(), output  # no notebook uses EXTRA
    assert json.loads(memo.read_text())["context"] != before  # every page was read again


def test_the_context_is_the_same_in_every_process():
    """Settings hold sets, which print in a per-process order: the digest must not."""
    import subprocess
    import sys

    code = ("from pathlib import Path; from tools.core.mystnb import book_settings; "
            "from tools.execution.planmemo import context_digest; "
            "print(context_digest(Path('dlbook'), book_settings(Path('.'))))")
    repo = Path(__file__).resolve().parents[1]
    digests = {subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": seed},
                              check=True).stdout.strip() for seed in ("1", "2", "3")}
    assert len(digests) == 1 and len(digests.pop()) == 64
