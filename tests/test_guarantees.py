"""What the build guarantees when things go wrong (docs/guarantees.md): one build at a
time, a published site that is complete, limits that name the cell, and Ctrl-C decided by
the parent process only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_execute import CACHE, execute, make_book, stamps

from tools.core.lock import BuildLocked, build_lock, lock_path
from tools.execution.manifest import load_manifest
from tools.render.build import publish

REPO = Path(__file__).resolve().parents[1]
PAGE = ("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  name: python3\n  display_name: Python 3\n{extra}---\n# {title}\n\nProse.\n\n"
        "```{{code-cell}} ipython3\nx = 1\n```\n\n```{{code-cell}} ipython3\n{code}\n```\n")


def add_page(book: Path, name: str, code: str, extra: str = "") -> None:
    (book / "chapter" / f"{name}.md").write_text(
        PAGE.format(extra=extra, title=name.title(), code=code))
    toc = book / "_toc.yml"
    toc.write_text(toc.read_text().replace(
        "          - file: chapter/standalone\n",
        f"          - file: chapter/standalone\n          - file: chapter/{name}\n"))


@pytest.fixture()
def book(tmp_path: Path) -> Path:
    return make_book(tmp_path / "book")


def hold_lock(book: Path) -> subprocess.Popen:
    """Another process that holds the book's build lock until it is killed."""
    code = ("import sys, time; from pathlib import Path; from tools.core.lock import "
            "build_lock\nwith build_lock(Path(sys.argv[1]), 'html'):\n"
            "    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(book)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_build_refuses_while_one_runs_and_runs_after(book: Path):
    holder = hold_lock(book)
    try:
        code, ran, output = execute(book)
        assert code == 1 and ran == set()
        assert "another build is running (tools html, process " in output
        assert not (book / CACHE / "dlbook-keys.json").exists()
    finally:
        holder.kill()
        holder.wait()
    code, ran, output = execute(book)  # the lock died with its process
    assert code == 0 and len(ran) == 3, output


def test_a_lock_taken_a_moment_ago_is_named_once_its_holder_wrote_itself_in(tmp_path):
    import fcntl
    import threading

    path = lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # taken; its description not written yet
        writer = threading.Timer(0.2, os.pwrite, (holder, b"tools html, process 1", 0))
        writer.start()
        with pytest.raises(BuildLocked, match=r"another build is running \(tools html, "
                                              r"process 1\)"), build_lock(tmp_path, "execute"):
            pass
        writer.join()
    finally:
        os.close(holder)


def test_the_lock_is_reentrant_in_one_process(book: Path):
    with build_lock(book, "html"), build_lock(book, "execute"):
        pass
    with build_lock(book, "html"):  # released: taken again
        pass


def test_publish_refuses_a_site_without_its_index(tmp_path: Path):
    produced, output = tmp_path / "produced", tmp_path / "html"
    produced.mkdir()
    output.mkdir()
    (output / "index.html").write_text("the last good site")
    (produced / "page.html").write_text("half a site")
    with pytest.raises(Exception, match="index.html:1: the build produced no such file"):
        publish(produced, output, "index.html")
    assert (output / "index.html").read_text() == "the last good site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["html", "produced"]
    (produced / "index.html").write_text("a whole site")
    publish(produced, output, "index.html")
    assert (output / "index.html").read_text() == "a whole site"


def test_a_timeout_names_the_cell_its_line_and_the_limit(book: Path):
    add_page(book, "slow", "import time\n\ntime.sleep(60)", extra="execution:\n  timeout: 2\n")
    start = time.monotonic()
    code, ran, output = execute(book)
    assert code == 1 and "chapter/slow.md" not in ran
    text = (book / "chapter" / "slow.md").read_text().splitlines()
    line = text.index("import time") + 1
    assert (f"chapter/slow.md:{line}: code cell 2 (line {line}) exceeded the 2 s limit "
            "(set by execute.timeout in _config.yml or the page's execution: timeout:)"
            in output), output
    assert "KeyboardInterrupt" not in output
    assert time.monotonic() - start < 50


def test_a_cell_with_too_much_output_fails_naming_the_cell(book: Path):
    add_page(book, "loud", "print('x' * (5 * 2**20))")
    code, ran, output = execute(book)
    assert code == 1 and "chapter/loud.md" not in ran
    assert "code cell 2" in output and "OutputTooLarge" in output
    assert "the limit is 4 MB per cell" in output
    assert "chapter/loud.md" not in load_manifest(book / CACHE).entries


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_to_a_background_build_is_decided_by_the_parent(book: Path):
    """``tools html`` started as a script's background job (SIGINT ignored, as a shell
    starts it) and then sent SIGINT with its whole process group: the parent stops the
    run and says so; no notebook is reported as failed."""
    assert execute(book)[0] == 0  # then only the new page runs
    add_page(book, "steady", "import time\n\ntime.sleep(30)")
    command = [sys.executable, "-m", "tools", "html", "--book", str(book), "--profile",
               "smoke"]
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=_ignore_sigint)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _runs_steady(run.pid):
        time.sleep(0.5)
    time.sleep(3)  # the kernel is in the sleeping cell
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted" in err
    assert "FAILED" not in err and "Traceback" not in err
    assert "chapter/steady.md" not in stamps(book)


def _runs_steady(parent: int) -> bool:
    """Whether a worker of ``parent`` is executing a notebook (its kernel has started)."""
    workers = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True,
                             text=True).stdout.split()
    return any(subprocess.run(["pgrep", "-P", pid], capture_output=True).stdout
               for pid in workers)


def tools(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_a_byte_that_is_not_utf8_is_named_by_every_command(book: Path):
    page = book / "chapter" / "standalone.md"
    lines = page.read_bytes().split(b"\n")
    lines[9] = lines[9] + b" caf\xe9"
    page.write_bytes(b"\n".join(lines))
    column = lines[9].index(b"\xe9") + 1
    where = f"chapter/standalone.md:10:{column}: not UTF-8 (byte 0xe9)"
    for command in ("html", "check", "lib"):
        done = tools(command, "--book", str(book))
        assert done.returncode != 0, command
        assert where in done.stderr + done.stdout, (command, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (command, done.stderr[-3000:])


def test_a_yaml_error_in_the_configuration_names_its_line_and_column(book: Path):
    config = book / "_config.yml"
    lines = config.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("title:"))
    lines[at] = "title: [unclosed"
    config.write_text("\n".join(lines) + "\n")
    for command in ("html", "check", "execute"):
        done = tools(command, "--book", str(book))
        assert done.returncode != 0, command
        assert "_config.yml:" in done.stderr + done.stdout, (command, done.stderr[-2000:])
        assert "malformed YAML" in done.stderr + done.stdout
        assert "Traceback" not in done.stderr, (command, done.stderr[-3000:])


def test_a_notebook_that_read_a_corrupt_data_file_fails_and_is_not_cached(tmp_path: Path):
    """A mirror file whose checksum is wrong fails the notebook, naming the file and both
    checksums; nothing is cached, and no stand-in hides it."""
    from test_extract_support import page, write_book

    (tmp_path / "book").mkdir()
    book = write_book(tmp_path / "book", {"chapters/01-a/data.md": page("sec-data", """
        import dlbook

        dlbook.DATA_HUB['corrupt'] = ('https://example.invalid/corrupt.bin', '1' * 40)
        print(dlbook.download('corrupt'))
        """)})
    (book / "_config.yml").write_text((REPO / "_config.yml").read_text())
    mirror = tmp_path / "shared" / "data"  # found as the book's data mirror
    mirror.mkdir(parents=True)
    (mirror / "corrupt.bin").write_bytes(b"not the published bytes")
    code, ran, output = execute(book)
    assert code == 1 and ran == {"index.md"}, output
    assert "ChecksumMismatch: checksum mismatch for corrupt.bin: expected " + "1" * 40 + \
        ", got " in output
    assert "chapters/01-a/data.md" not in stamps(book)


@pytest.mark.slow
def test_two_html_builds_at_once_one_refuses_and_the_site_is_complete(tmp_path: Path):
    from test_execute import library_book

    book = library_book(tmp_path / "book")
    command = [sys.executable, "-m", "tools", "html", "--book", str(book), "--profile",
               "smoke"]
    runs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=900), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert "another build is running (tools html, process " in refused
    site = book / "_build" / "html"
    assert (site / "index.html").is_file() and (site / "_static").is_dir()
    assert not list((book / "_build").glob("html.*"))  # no staging folder left
