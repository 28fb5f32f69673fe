"""The execution engine end to end on the fixture book ``tests/books/exec-basic``.

Its three notebooks each use a different part of the fixture library (``dlbook/`` inside
the fixture): ``uses_child`` a class whose base lives in another module, ``uses_helper``
a function that calls a helper, ``standalone`` a function that needs nothing else. The
book is executed once per module (2 workers); each test works on a copy of it.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

from tools.execution.engine import execute_book
from tools.execution.manifest import load_manifest
from tools.render.build import Build, run_build

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "books" / "exec-basic"
NOTEBOOKS = ["chapter/uses_child.md", "chapter/uses_helper.md", "chapter/standalone.md"]
CACHE = Path("_build/.jupyter_cache")


def make_book(dest: Path) -> Path:
    """The fixture with the book's real configuration and our Sphinx extension."""
    shutil.copytree(FIXTURE, dest)
    config = (REPO / "_config.yml").read_text()
    if "tools.sphinx.execution" not in config:
        config = config.replace("    - tools.sphinx.site\n",
                                "    - tools.sphinx.site\n    - tools.sphinx.execution\n")
    (dest / "_config.yml").write_text(config)
    (dest / "book" / "_latex").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "book" / "_latex" / "bbm.sty", dest / "book" / "_latex")
    (dest / "book" / "references.bib").touch()
    return dest


def stamps(book: Path) -> dict[str, str]:
    return {k: e.stamp for k, e in load_manifest(book / CACHE).entries.items()}


def execute(book: Path, *args, **kwargs) -> tuple[int, set[str], str]:
    """Run the engine; return its status, the notebooks it executed, and its output."""
    before = stamps(book)
    out = io.StringIO()
    code = execute_book(book, *args, profile=kwargs.pop("profile", "smoke"), stream=out,
                        **kwargs)
    after = stamps(book)
    return code, {k for k in after if before.get(k) != after[k]}, out.getvalue()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def add_notebook(book: Path, name: str, *cells: str) -> None:
    body = "\n\n".join(f"```{{code-cell}} ipython3\n{cell}\n```" for cell in cells)
    (book / "chapter" / f"{name}.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        f"  name: python3\n  display_name: Python 3\n---\n# {name.title()}\n\n"
        f"Prose.\n\n{body}\n")
    edit(book / "_toc.yml", "          - file: chapter/standalone\n",
         f"          - file: chapter/standalone\n          - file: chapter/{name}\n")


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    book = make_book(tmp_path_factory.mktemp("exec") / "book")
    code, ran, output = execute(book, jobs=2)
    assert code == 0, output
    assert ran == set(NOTEBOOKS)
    return book


@pytest.fixture()
def book(executed: Path, tmp_path: Path) -> Path:
    """A copy of the executed book, cache and manifest included."""
    copy = tmp_path / "book"
    shutil.copytree(executed, copy, ignore=shutil.ignore_patterns(".work-*", "html"))
    return copy


def test_nothing_runs_twice(book: Path):
    assert execute(book)[:2] == (0, set())


def test_prose_edit_runs_nothing(book: Path):
    edit(book / "chapter/uses_child.md", "Uses a class", "Uses, as shown, a class")
    assert execute(book)[:2] == (0, set())


def test_code_edit_runs_that_notebook_only(book: Path):
    edit(book / "chapter/uses_child.md", '"child says"', '"the child says"')
    code, ran, output = execute(book)
    assert (code, ran) == (0, {"chapter/uses_child.md"})
    assert "code" in output


def would_run(book: Path, profile: str = "smoke") -> dict[str, str]:
    """The notebooks the engine would execute now, and why (nothing is executed)."""
    from tools.core.mystnb import book_settings
    from tools.execution.engine import library_root, plan, select_sources
    from tools.execution.kernel_env import kernel_environment
    from tools.library.graph import read_library

    settings = book_settings(book)
    jobs, _ = plan(book, select_sources(book, None), settings,
                   read_library(library_root(book)), profile,
                   kernel_environment(book), load_manifest(settings.cache_path),
                   get_cache(settings.cache_path))
    return {job.name: job.reason for job in jobs if job.reason}


@pytest.mark.parametrize(("module", "old", "new", "expected"), [
    ("base.py", "return 1\n", "return 2\n", {"chapter/uses_child.md": "library Base"}),
    ("base.py", "return 10 * x", "return 20 * x", {"chapter/uses_helper.md": "library helper"}),
    ("other.py", "return 42", "return 43", {"chapter/standalone.md": "library answer"}),
    ("models.py", '"""Calls helper()."""', '"""Calls the helper."""', {}),  # docstring only
])
def test_library_edit_invalidates_exactly_the_dependents(book: Path, module, old, new,
                                                         expected):
    edit(book / "dlbook" / module, old, new)
    assert would_run(book) == expected


def test_library_edit_reruns_the_dependent(book: Path):
    edit(book / "dlbook" / "base.py", "return 1\n", "return 2\n")  # Child inherits it
    code, ran, output = execute(book)
    assert (code, ran) == (0, {"chapter/uses_child.md"}), output
    assert "child says 2" in "".join(text_outputs(book, "chapter/uses_child.md"))
    assert would_run(book) == {}


def test_profile_change_runs_again(book: Path):
    code, ran, output = execute(book, [book / "chapter/standalone.md"], profile="full")
    assert (code, ran) == (0, {"chapter/standalone.md"})
    assert "profile smoke→full" in output
    assert load_manifest(book / CACHE).entries["chapter/standalone.md"].profile == "full"


def test_failure_names_notebook_cell_and_line_and_keeps_the_rest(book: Path):
    add_notebook(book, "broken", "x = 1", "y = 2\nz = x / 0")
    add_notebook(book, "fine", "print('fine')")
    code, ran, output = execute(book, jobs=2)
    assert code == 1
    assert ran == {"chapter/fine.md"}, output  # the good one is cached despite the failure
    assert "chapter/broken.md: code cell 2 (line 18): y = 2" in output
    assert "chapter/broken.md:19: ZeroDivisionError: division by zero" in output
    assert "----> 2 z = x / 0" in output  # the traceback
    code, ran, _ = execute(book)
    assert (code, ran) == (1, set())  # the failure is not cached; it runs again


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def test_sigint_keeps_the_cache_consistent_and_resumes(book: Path, tmp_path: Path,
                                                      monkeypatch):
    pid_file = tmp_path / "kernel.pid"
    add_notebook(book, "quick", "print('quick')")
    add_notebook(book, "sleepy", "import os, time\nfrom pathlib import Path\n"
                 "Path(os.environ['PID_FILE']).write_text(str(os.getpid()))\n"
                 "time.sleep(float(os.environ['SLEEP']))")
    env = {**os.environ, "PID_FILE": str(pid_file), "SLEEP": "120"}
    command = [sys.executable, "-m", "tools", "execute", "--book", str(book), "--profile",
               "smoke", "--jobs", "2", str(book / "chapter")]
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 90
    while not (pid_file.is_file() and pid_file.read_text()
               and "chapter/quick.md" in stamps(book)):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err
    kernel = int(pid_file.read_text())
    for _ in range(20):
        if _dead(kernel):
            break
        time.sleep(0.25)
    assert _dead(kernel), "the kernel outlived the interrupted run"
    assert "chapter/sleepy.md" not in stamps(book)
    assert len(get_cache(book / CACHE).list_cache_records()) >= 4  # the store opens fine
    monkeypatch.setenv("PID_FILE", str(pid_file))
    monkeypatch.setenv("SLEEP", "0")
    code, ran, output = execute(book)
    assert (code, ran) == (0, {"chapter/sleepy.md"}), output


def text_outputs(book: Path, name: str) -> list[str]:
    cache = get_cache(book / CACHE)
    record = cache.get_cache_bundle(
        cache.match_cache_notebook(_read(book, name)).pk)
    return [o.get("text", "") for c in record.nb.cells for o in c.get("outputs", [])]


def _read(book: Path, name: str) -> nbformat.NotebookNode:
    from tools.core.mystnb import book_settings, read_as_mystnb

    return read_as_mystnb(book / name, book_settings(book))


def test_smoke_runs_are_deterministic(book: Path):
    first = text_outputs(book, "chapter/standalone.md")
    assert any("random" in text for text in first)
    code, ran, _ = execute(book, [book / "chapter/standalone.md"], force=True)
    assert (code, ran) == (0, {"chapter/standalone.md"})
    assert text_outputs(book, "chapter/standalone.md") == first


def build_log(book: Path, capfd) -> str:
    code = run_build(Build(book, "html", "smoke"))
    out, err = capfd.readouterr()
    assert code == 0, out + err
    return out + err


def read_pages(log: str) -> set[str]:
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    return set(re.findall(r"reading sources\.\.\. \[\s*\d+%\] (\S+)", plain))


@pytest.mark.slow
def test_sphinx_renders_from_the_cache_and_rereads_exactly_the_dependents(book: Path, capfd):
    log = build_log(book, capfd)
    assert log.count("Using cached notebook") == 3
    assert "Executing notebook" not in log
    html = book / "_build" / "html"
    page = (html / "chapter" / "uses_helper.html").read_text()
    assert "scaled is 21" in page
    assert "Outputs on this page were produced with the smoke profile on CPU" in page
    assert "when you run this notebook yourself, nothing is reduced" in page
    report = (html / "book" / "execution.html").read_text()
    assert "Execution Report" in report
    table = report[report.index('<table class="dlbook-execution-report'):]
    table = table[:table.index("</table>")]
    assert table.count('href="../chapter/') == 3 and "Uses Helper" in table

    edit(book / "dlbook" / "base.py", "return 10 * x", "return 100 * x")
    log = build_log(book, capfd)
    assert "re-reading 1 page(s) whose outputs were re-executed: chapter/uses_helper" in log
    assert read_pages(log) == {"chapter/uses_helper", "book/execution"}
    assert "Executing notebook" not in log
    assert "scaled is 201" in (html / "chapter" / "uses_helper.html").read_text()


# --- smoke reductions: declared in the front matter, applied in the kernel ---------------

TRAINER_MODULE = '''"""A loop shaped like the book's Trainer."""


class Trainer:
    def __init__(self, max_epochs):
        self.max_epochs = max_epochs
'''


def add_smoke_page(book: Path, front_matter: str) -> Path:
    """A page whose output is the epochs a Trainer asked for 10 epochs really runs."""
    shutil.copy(REPO / "dlbook" / "_smoke.py", book / "dlbook" / "_smoke.py")
    (book / "dlbook" / "loop.py").write_text(TRAINER_MODULE)
    add_notebook(book, "trains", "from dlbook.loop import Trainer\n"
                 "print('epochs', Trainer(max_epochs=10).max_epochs)")
    page = book / "chapter" / "trains.md"
    edit(page, "---\n# Trains", f"{front_matter}---\n# Trains")
    return page


def test_page_smoke_reductions_reach_its_kernel_only_under_smoke(book: Path):
    add_smoke_page(book, "smoke:\n  max_epochs: 3\n")
    code, ran, output = execute(book, [book / "chapter/trains.md"])
    assert (code, ran) == (0, {"chapter/trains.md"}), output
    assert "epochs 3" in "".join(text_outputs(book, "chapter/trains.md"))
    entry = load_manifest(book / CACHE).entries["chapter/trains.md"]
    assert entry.parts["smoke"]["max_epochs"] == 3 and entry.parts["smoke"]["module"]
    code, ran, output = execute(book, [book / "chapter/trains.md"], profile="full")
    assert (code, ran) == (0, {"chapter/trains.md"}), output
    assert "epochs 10" in "".join(text_outputs(book, "chapter/trains.md"))
    assert load_manifest(book / CACHE).entries["chapter/trains.md"].parts["smoke"] == {}


def test_page_caps_reach_the_library_and_the_page_s_own_definitions(book: Path):
    add_smoke_page(book, "smoke:\n  caps: {max_epochs: 4, width: 8}\n")
    page = book / "chapter" / "trains.md"
    edit(page, "print('epochs', Trainer(max_epochs=10).max_epochs)",
         "print('epochs', Trainer(max_epochs=10).max_epochs)\n```\n\n"
         "```{code-cell} ipython3\ndef layer(width=64):\n    return width\n```\n\n"
         "```{code-cell} ipython3\nprint('width', layer(), layer(width=2))")
    code, ran, output = execute(book, [page])
    assert (code, ran) == (0, {"chapter/trains.md"}), output
    texts = "".join(text_outputs(book, "chapter/trains.md"))
    assert "epochs 4" in texts and "width 8 2" in texts
    execute(book, [page], profile="full")
    texts = "".join(text_outputs(book, "chapter/trains.md"))
    assert "epochs 10" in texts and "width 64 2" in texts


def test_other_pages_get_the_book_defaults(book: Path):
    add_smoke_page(book, "")
    code, _, output = execute(book, [book / "chapter/trains.md"])
    assert code == 0, output
    assert "epochs 10" in "".join(text_outputs(book, "chapter/trains.md"))  # default cap
    edit(book / "dlbook" / "loop.py", "self.max_epochs = max_epochs",
         "self.max_epochs = max_epochs + 5")
    execute(book, [book / "chapter/trains.md"])
    assert "epochs 10" in "".join(text_outputs(book, "chapter/trains.md"))  # 15, capped


def test_changing_a_page_s_reductions_runs_it_again(book: Path):
    page = add_smoke_page(book, "smoke:\n  max_epochs: 3\n")
    assert execute(book, [page])[0] == 0
    edit(page, "max_epochs: 3", "max_epochs: 2")
    code, ran, output = execute(book, [page])
    assert (code, ran) == (0, {"chapter/trains.md"}) and "smoke settings" in output
    assert "epochs 2" in "".join(text_outputs(book, "chapter/trains.md"))
    edit(book / "dlbook" / "_smoke.py", '"""The smoke profile', '"""The profile')
    assert set(would_run(book).values()) == {"smoke settings"}  # every page uses it
    assert len(would_run(book)) == 4


def test_bad_reductions_name_the_page_and_line_and_run_nothing(book: Path):
    add_smoke_page(book, "smoke:\n  max_epoch: 3\n")
    code, ran, output = execute(book)
    assert code == 1 and "chapter/trains.md" not in ran
    assert "chapter/trains.md:8: front matter: smoke: unknown key 'max_epoch'" in output


# --- the library is regenerated before anything runs -------------------------------------

SAVED = "def scale(x):  #@save\n    \"\"\"Ten times x.\"\"\"\n    return 10 * x"
PAGES = {
    "chapters/01-a/saves.md": ("sec-saves", SAVED, "print('saved', scale(2))"),
    "chapters/01-a/uses.md": ("sec-uses", "import dlbook\n\nprint('uses', dlbook.scale(3))"),
    "chapters/01-a/alone.md": ("sec-alone", "print('alone', 6 * 7)"),
}


PAGES_RUN = ("saves", "uses", "alone")


def library_book(dest: Path) -> Path:
    """A book whose first page saves a function that the second uses; the third stands
    alone. It has no dlbook/ until something generates it."""
    from test_extract_support import page, write_book

    dest.mkdir(parents=True)
    write_book(dest, {rel: page(*cells) for rel, cells in PAGES.items()})
    config = (REPO / "_config.yml").read_text().replace(
        "    - tools.sphinx.site\n", "    - tools.sphinx.site\n    - tools.sphinx.execution\n")
    (dest / "_config.yml").write_text(config)
    (dest / "book" / "_latex").mkdir(parents=True)
    shutil.copy(REPO / "book" / "_latex" / "bbm.sty", dest / "book" / "_latex")
    (dest / "book" / "references.bib").touch()
    return dest


@pytest.mark.slow
def test_html_build_regenerates_the_library_and_reruns_exactly_its_dependents(tmp_path,
                                                                              capfd):
    book = library_book(tmp_path / "book")
    assert not (book / "dlbook").exists()
    build_log(book, capfd)  # the first build generates the library it executes against
    module = next((book / "dlbook").glob("ch01_*.py"))
    assert "return 10 * x" in module.read_text()
    assert "uses 30" in "".join(text_outputs(book, "chapters/01-a/uses.md"))
    before = stamps(book)
    assert set(before) == {"index.md", *(f"chapters/01-a/{n}.md" for n in PAGES_RUN)}
    edit(book / "chapters/01-a/saves.md", "return 10 * x", "return 100 * x")
    log = build_log(book, capfd)
    assert "library regenerated from the chapters: dlbook/" in log
    assert "return 100 * x" in module.read_text()
    after = stamps(book)
    assert {k for k in after if before[k] != after[k]} == {
        "chapters/01-a/saves.md",  # its code changed
        "chapters/01-a/uses.md"}  # it calls dlbook.scale; alone.md does not
    assert "uses 300" in "".join(text_outputs(book, "chapters/01-a/uses.md"))


def test_invalid_save_block_stops_before_anything_runs_and_writes_nothing(tmp_path):
    book = library_book(tmp_path / "book")
    code, ran, output = execute(book)
    assert code == 0 and len(ran) == 4, output  # the three pages and the index
    library = {p.name: p.read_text() for p in (book / "dlbook").glob("*.py")}
    before = stamps(book)
    edit(book / "chapters/01-a/saves.md", "return 10 * x", "return 10 * y")
    code, ran, output = execute(book)
    assert code == 1 and ran == set() and stamps(book) == before
    assert "chapters/01-a/saves.md:" in output and "'y' is not defined" in output
    assert "nothing was executed" in output
    assert {p.name: p.read_text() for p in (book / "dlbook").glob("*.py")} == library
