"""Shared helpers: copy a fixture book next to the project's real configuration and build it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOOKS = REPO / "tests" / "books"
ARTIFACTS = REPO / "tests" / "artifacts"


def make_book(dest: Path, *layers: str) -> Path:
    """Lay the fixture books ``layers`` (later ones overwrite) plus the real config."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        shutil.copytree(BOOKS / layer, dest, dirs_exist_ok=True)
    shutil.copy2(REPO / "_config.yml", dest / "_config.yml")
    latex = dest / "book" / "_latex"
    latex.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "book" / "_latex" / "bbm.sty", latex / "bbm.sty")
    return dest


def build(book: Path, command: str = "html", *extra: str) -> subprocess.CompletedProcess:
    """Run ``python -m tools <command> --book <book>`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "tools", command, "--book", str(book), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=1500,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a test server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def output_of(result: subprocess.CompletedProcess) -> str:
    """Everything the command printed, without terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


@pytest.fixture(scope="session")
def good_book(tmp_path_factory) -> Path:
    """The good fixture book, built once into its own folder."""
    book = make_book(tmp_path_factory.mktemp("good") / "book", "good")
    result = build(book)
    assert result.returncode == 0, output_of(result)[-4000:]
    return book


@pytest.fixture()
def built_copy(good_book, tmp_path) -> Path:
    """A copy of the built good book (cache included), to break in one test."""
    copy = tmp_path / "book"
    shutil.copytree(good_book, copy, symlinks=True)
    return copy
