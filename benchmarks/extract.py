"""Time whole-book library extraction (goal: at most 1 s) and print the median of 5 runs.

    python benchmarks/extract.py               # the book in this repository
    python benchmarks/extract.py --scale 10    # its chapters copied 10 times (a big book)

What is timed is ``tools.library.generate.generate``: reading every page in TOC order, finding the
``#@save`` blocks, resolving them and rendering ``dlbook/`` and ``book/api.md`` in
memory (``--check`` adds one comparison with the files on disk). Starting Python and
importing the tools (jupytext alone takes about half a second) is reported separately.
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


def toc_order(book: Path) -> list[str]:
    """The pages that the book's TOC names and that exist, in TOC order (no suffix)."""
    import yaml

    from tools.core.toc import _files

    names: list[str] = []
    _files(yaml.safe_load((book / "_toc.yml").read_text(encoding="utf-8")), names)
    return [n for n in names if (book / f"{n}.md").is_file() and n != "book/api"]


def scaled_copy(book: Path, scale: int, dest: Path) -> Path:
    """A book made of the front matter and ``scale`` copies of every chapter, in TOC
    order (only the pages that exist: the real TOC may name pages still being written)."""
    order = toc_order(book)
    chapters = list(dict.fromkeys(n.split("/")[1] for n in order if n.startswith("chapters/")))
    pages = [n for n in order if not n.startswith("chapters/")]
    for copy in range(scale):
        for number, folder in enumerate(chapters, 1 + copy * len(chapters)):
            renamed = f"{number:02d}-{folder.split('-', 1)[-1]}"
            shutil.copytree(book / "chapters" / folder, dest / "chapters" / renamed)
            for page in (dest / "chapters" / renamed).glob("*.md"):
                # Make each copy's blocks differ, so that no analysis is shared.
                text = page.read_text(encoding="utf-8")
                page.write_text(text.replace("#@save\n", f"#@save\n# copy {copy}\n"),
                                encoding="utf-8")
            pages += [f"chapters/{renamed}/{n.split('/')[2]}" for n in order
                      if n.startswith(f"chapters/{folder}/")]
    shutil.copytree(book / "book", dest / "book", ignore=shutil.ignore_patterns("api.md"))
    shutil.copytree(book / "dlbook", dest / "dlbook", ignore=shutil.ignore_patterns(
        "__pycache__"))
    lines = ["format: jb-book", "root: book/index", "chapters:"]
    lines += [f"  - file: {name}" for name in pages if name != "book/index"]
    (dest / "_toc.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def median_seconds(book: Path, runs: int) -> tuple[float, float, int, int]:
    from tools.library.generate import generate, library_sources
    from tools.library.names import analyse, library_attributes_of, parsed

    times, cpu = [], []
    for _ in range(runs):
        for cache in (analyse, library_attributes_of, parsed):
            cache.cache_clear()  # each run starts cold, as a fresh `tools lib` does
        start, start_cpu = time.perf_counter(), time.process_time()
        library, _files = generate(book)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    names = sum(len(m.entries) for m in library.modules)
    return (statistics.median(times), statistics.median(cpu), names,
            len(library_sources(book)))


def cold_command(book: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tools", "lib", "--check", "--book", str(book)],
                   cwd=REPO, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--book", type=Path, default=REPO)
    parser.add_argument("--scale", type=int, default=0,
                        help="time a book made of SCALE copies of the chapters instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        book = scaled_copy(args.book, args.scale, Path(tmp)) if args.scale else args.book
        median, cpu, names, pages = median_seconds(book, args.runs)
        cold = cold_command(book)
    verdict = "within" if median <= 1.0 else "OVER"
    print(f"extract: {median:.3f} s median of {args.runs} runs ({pages} pages, {names} "
          f"library names; {verdict} the 1 s goal; CPU time {cpu:.3f} s)")
    print(f"python -m tools lib --check, cold (start-up and imports included): {cold:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
