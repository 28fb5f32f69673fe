"""Benchmark of sharded execution: how well the split balances the real book, and what two
shards gain over one machine.

    .venv/bin/python benchmarks/shard.py                      # planned balance only
    .venv/bin/python benchmarks/shard.py --measure chapters/03-linear-regression

1. From the durations the manifest recorded for the book (``_build/.jupyter_cache``),
   the planned seconds of each shard for N = 2, 4, 8, and the balance: longest shard /
   mean shard (goal: <= 1.15), beside the ideal (total / N) and the longest notebook
   (no split can beat it).
2. With ``--measure PATH``: the notebooks under PATH, run from scratch in throw-away
   copies of the book, once on one machine (``--jobs 1``) and as two shards at the same
   time (``--shard 0/2`` and ``1/2``, ``--jobs 1`` each: two one-core machines), smoke
   profile. Prints both wall times and the speed-up; the shards' outputs are then merged
   through bundles into a third copy, which must have nothing left to run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.execution.manifest import load_manifest  # noqa: E402
from tools.execution.shards import planned_loads  # noqa: E402

COPY_IGNORE = shutil.ignore_patterns("_build", ".venv", ".git", "__pycache__", "*.egg-info")


def planned(book: Path) -> None:
    entries = load_manifest(book / "_build" / ".jupyter_cache").entries
    durations = {name: entry.seconds for name, entry in entries.items()}
    if not durations:
        print("no recorded durations: run `make execute` first")
        return
    total = sum(durations.values())
    print(f"{len(durations)} notebooks, {total:.0f} s recorded "
          f"({next(iter(entries.values())).profile} profile); longest notebook "
          f"{max(durations.values()):.0f} s")
    print(f"{'N':>3}  {'ideal s':>8}  {'longest shard s':>15}  {'balance':>7}  shards (s)")
    for count in (2, 4, 8):
        loads = planned_loads(durations, count)
        mean = sum(loads) / count
        print(f"{count:>3}  {total / count:>8.0f}  {max(loads):>15.0f}  "
              f"{max(loads) / mean:>7.3f}  {' '.join(f'{x:.0f}' for x in loads)}")


def tools(book: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools", *args, "--book", str(book)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def finish(run: subprocess.Popen) -> None:
    _, err = run.communicate()
    if run.returncode != 0:
        raise SystemExit(f"failed ({run.returncode}):\n{err[-3000:]}")


def measure(path: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="dlbook-shard-bench-"))
    try:
        copies = {name: root / name / "book" for name in ("single", "a", "b", "merged")}
        for book in copies.values():
            shutil.copytree(REPO, book, ignore=COPY_IGNORE)
        shared = REPO.parent / "shared"
        for book in copies.values():  # the same data mirror as the real book
            if shared.is_dir():
                (book.parent / "shared").symlink_to(shared)
        run = ("execute", "--profile", "smoke", "--jobs", "1")
        start = time.monotonic()
        finish(tools(copies["single"], *run, str(copies["single"] / path)))
        single = time.monotonic() - start
        start = time.monotonic()
        shards = [tools(copies[n], *run, "--shard", f"{k}/2", str(copies[n] / path))
                  for k, n in enumerate("ab")]
        for shard in shards:
            finish(shard)
        sharded = time.monotonic() - start
        bundles = [root / f"{n}.zip" for n in "ab"]
        for name, bundle in zip("ab", bundles, strict=True):
            finish(tools(copies[name], "cache", "export", "--profile", "smoke", str(bundle)))
        finish(tools(copies["merged"], "cache", "import", "--profile", "smoke",
                     *map(str, bundles)))
        finish(tools(copies["merged"], "execute", "--profile", "smoke", "--dry-run",
                     str(copies["merged"] / path)))
        print(f"{path}: one machine {single:.1f} s; two shards at once {sharded:.1f} s "
              f"({single / sharded:.2f}x); merged bundles leave nothing to run")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", metavar="PATH", default=None,
                        help="also time one machine against two shards on PATH")
    args = parser.parse_args()
    planned(REPO)
    if args.measure:
        measure(args.measure)


if __name__ == "__main__":
    main()
