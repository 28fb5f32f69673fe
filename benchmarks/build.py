"""Benchmark of ``make html`` rebuilds: cold, nothing changed, one prose edit, one code edit.

    .venv/bin/python benchmarks/build.py                 # the real book and a 220-page book
    .venv/bin/python benchmarks/build.py --pages 220 --skip-real

Each book is built in a throw-away copy (``python -m tools html --profile smoke``), then:

- **no change**: the same build again;
- **prose edit**: one sentence of one page changed;
- **code edit**: one code cell of one page changed (that notebook re-executes);
- **live prose edit**: with ``python -m tools live`` serving the book, the time from saving
  one prose edit to the server saying the new site is published (median of three saves).

Each time is printed with its ratio to the cold build. For the real book, "cold" keeps
the execution cache of this checkout (``_build/.jupyter_cache``, copied) and starts
Sphinx from nothing, since executing every chapter again takes many minutes on a CPU;
the generated book is built truly cold: its 220 small notebooks execute too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY_IGNORE = shutil.ignore_patterns("_build", ".venv", ".git", "__pycache__", "*.egg-info",
                                     ".pytest_cache", ".ruff_cache")
FRONT = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
         "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n")


def html(book: Path) -> float:
    """Seconds of one ``tools html`` of ``book`` (which must succeed)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tools", "html", "--profile", "smoke",
                           "--book", str(book)], cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"build of {book} failed:\n{done.stderr[-3000:]}")
    return seconds


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"{path}: {old!r} not found")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def published_after(log: Path, count: int, timeout: float = 600) -> None:
    """Wait until the live server's log says "published" more than ``count`` times."""
    deadline = time.monotonic() + timeout
    while log.read_text().count("live: published") <= count:
        if "build failed" in log.read_text() or time.monotonic() > deadline:
            raise SystemExit(f"live build failed or timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def live_prose_edit(book: Path, page: Path, old: str, new: str) -> float:
    """Median seconds from a saved prose edit to the live server publishing it."""
    log = book.parent / "live.log"
    with log.open("w") as stream:
        server = subprocess.Popen([sys.executable, "-m", "tools", "live", "--port", "0",
                                   "--profile", "smoke", "--book", str(book)], cwd=REPO,
                                  stdout=stream, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while "live: serving" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"live did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        times = []
        for here, there in ((old, new), (new, old)) * 2:
            count = log.read_text().count("live: published")
            start = time.monotonic()
            edit(page, here, there)
            published_after(log, count)
            times.append(time.monotonic() - start)
        return statistics.median(times[1:])  # the first warms the fork server
    finally:
        server.terminate()
        server.wait(timeout=120)


def measure(name: str, book: Path, prose: tuple[Path, str, str],
            code: tuple[Path, str, str]) -> None:
    cold = html(book)
    same = html(book)
    edit(*prose)
    prose_time = html(book)
    edit(*code)
    code_time = html(book)
    page, old, new = prose
    live = live_prose_edit(book, page, new, old)
    print(f"{name}: cold {cold:.1f} s; no change {same:.1f} s ({same / cold:.2f}); "
          f"prose edit {prose_time:.1f} s ({prose_time / cold:.2f}); "
          f"code edit {code_time:.1f} s ({code_time / cold:.2f}); "
          f"live prose edit {live:.1f} s ({live / cold:.2f})", flush=True)


def real_book(root: Path) -> None:
    book = root / "real" / "book"
    shutil.copytree(REPO, book, ignore=COPY_IGNORE)
    cache = REPO / "_build" / ".jupyter_cache"
    if cache.is_dir():
        shutil.copytree(cache, book / "_build" / ".jupyter_cache")
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (book.parent / "shared").symlink_to(shared)
    page = book / "chapters" / "02-preliminaries" / "calculus.md"
    measure("real book (cold keeps the execution cache)", book,
            (page, "By the end of this section", "By the end of this short section"),
            (page, "```{code-cell} ipython3\n", "```{code-cell} ipython3\nedited = True\n"))


def generated_book(root: Path, pages: int) -> None:
    """``pages`` pages in chapters of ten, each with prose, math and two tiny code cells."""
    book = root / "generated"
    (book / "chapters").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", book / "_config.yml")
    (book / "book" / "_latex").mkdir(parents=True)
    shutil.copy(REPO / "book" / "_latex" / "bbm.sty", book / "book" / "_latex")
    (book / "book" / "references.bib").touch()
    (book / "index.md").write_text(FRONT + "\n(sec-home)=\n# Home\n\nA generated book.\n")
    toc = ["format: jb-book", "root: index", "parts:", "  - caption: Chapters",
           "    numbered: true", "    chapters:"]
    for number in range(pages):
        chapter, section = divmod(number, 10)
        folder = book / "chapters" / f"{chapter + 1:02d}-part"
        if section == 0:
            folder.mkdir()
            (folder / "index.md").write_text(f"(chap-{chapter})=\n# Chapter {chapter}\n")
            toc += [f"      - file: chapters/{folder.name}/index", "        sections:"]
        slug = f"page-{number:03d}"
        (folder / f"{slug}.md").write_text(
            FRONT + f"\n(sec-{slug})=\n# Page {number}\n\nSome prose about page {number}, "
            f"with math $x_{{{number}}}^2$.\n\n```{{code-cell}} ipython3\n"
            f"values = list(range({number % 7 + 3}))\n```\n\n"
            "```{code-cell} ipython3\nsum(values)\n```\n\n## Exercises\n\n1. Why?\n")
        toc.append(f"          - file: chapters/{folder.name}/{slug}")
    (book / "_toc.yml").write_text("\n".join(toc) + "\n")
    page = book / "chapters" / "01-part" / "page-003.md"
    measure(f"generated book of {pages} pages", book,
            (page, "Some prose about", "Some more prose about"),
            (page, "sum(values)", "sum(values) + 1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=220)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-generated", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dlbook-build-bench-"))
    try:
        if not args.skip_real:
            real_book(root)
        if not args.skip_generated:
            generated_book(root, args.pages)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
