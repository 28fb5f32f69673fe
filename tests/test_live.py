"""``make live`` (``python -m tools live``): the site is served, rebuilt on every save
through ``tools html``, and the open pages reload themselves.

The server runs on the good fixture book on a free local port; the test edits a line of
prose, waits (generously) for the served page to show it, and checks that an open page's
reload websocket was told to refresh. The server is always stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket
from conftest import REPO, free_port, make_book

from tools.render.live import RELOAD_PATH, book_sources

PAGE = "chapter/sample"
BEFORE = "Gradient descent is old"
AFTER = "Gradient descent is older than the computer"

pytestmark = pytest.mark.timeout(1200)


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None


def showing(url: str, text: str) -> str | None:
    """The page at ``url`` if it holds ``text``."""
    body = fetch(url)
    return body if body and text in body else None


def next_message(page: websocket.WebSocket, timeout: float) -> str | None:
    """The next text message on ``page`` within ``timeout`` seconds (the server's pings,
    which would keep a plain ``recv`` waiting forever, are answered and skipped)."""
    deadline = time.monotonic() + timeout
    page.settimeout(5)
    while time.monotonic() < deadline:
        try:
            opcode, data = page.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return data.decode()
    return None


def wait_for(predicate, proc: subprocess.Popen, log: Path, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make live exited ({proc.returncode}) before {what}:\n"
                        f"{log.read_text(errors='replace')[-4000:]}")
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"no {what} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture()
def live(tmp_path):
    """The fixture book served by ``tools live``: (book, port, process, log)."""
    book = make_book(tmp_path / "book", "good")
    port, log = free_port(), tmp_path / "live.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools", "live", "--book", str(book), "--port", str(port),
             "--profile", "smoke"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        yield book, port, proc, log
    finally:
        if proc.poll() is None:
            proc.terminate()  # a clean stop: the server stops any build first
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the server's own process group
                proc.wait(timeout=30)


def test_a_saved_prose_edit_is_rebuilt_served_and_reloads_the_open_page(live):
    book, port, proc, log = live
    url = f"http://127.0.0.1:{port}/{PAGE}.html"
    first = wait_for(lambda: "live: serving" in log.read_text() and showing(url, BEFORE),
                     proc, log, "first build", 900)
    assert BEFORE in first and AFTER not in first
    script = f'new WebSocket("ws://127.0.0.1:{port}{RELOAD_PATH}")'
    assert script in first  # the served page reloads itself

    page = websocket.create_connection(f"ws://127.0.0.1:{port}{RELOAD_PATH}", timeout=30)
    try:
        builds = log.read_text().count("built _build/html/index.html")
        source = book / f"{PAGE}.md"
        source.write_text(source.read_text().replace(BEFORE, AFTER, 1))
        rebuilt = wait_for(lambda: showing(url, AFTER), proc, log, "rebuilt page", 900)
        assert script in rebuilt
        assert next_message(page, 120) == "refresh"
    finally:
        page.close()
    output = log.read_text()
    assert output.count("built _build/html/index.html") == builds + 1
    assert "live: changed chapter/sample.md; rebuilding" in output
    assert "execute: all 1 notebook(s) cached" in output  # prose only: nothing re-ran

    proc.terminate()
    assert proc.wait(timeout=90) == 0
    assert "live: stopped" in log.read_text()


def test_what_live_watches(tmp_path):
    book = make_book(tmp_path / "book", "good").resolve()
    (book / "chapter" / "data").mkdir()
    sources = book_sources(book)
    assert sources.folders == (book / "book", book / "chapter")
    for rebuilds in ("_toc.yml", "_config.yml", "index.md", "chapter/sample.md",
                     "chapter/img/plot.svg", "book/references.bib"):
        assert book / rebuilds in sources, rebuilds
    for ignored in ("README.md", "chapter/.ipynb_checkpoints/sample-checkpoint.md",
                    "chapter/sample.md~", "chapter/.sample.md.swp", "chapter/4913",
                    "chapter/data/train.csv", "book/api.md", "_build/html/index.html",
                    "dlbook/core.py", "tools/render/live.py"):
        assert book / ignored not in sources, ignored
    assert tmp_path / "elsewhere.md" not in sources
