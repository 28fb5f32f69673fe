"""Benchmark of ``tools execute``: parallel speed-up, and invalidation after a library edit.

    .venv/bin/python benchmarks/execute.py [--notebooks 4] [--steps 150] [--jobs 2]
                                           [--threads 1]
    .venv/bin/python benchmarks/execute.py --book [--limit N] [--jobs 2] [--skip-jb]

``--book`` measures the real book instead (its first N notebooks with ``--limit``), on a
copy in a temporary folder, all in the smoke profile on this machine, one after the other:

1. Jupyter Book 1's own execution: one notebook after the other, each in a kernel
   started from scratch by ``jupyter_cache.executors.utils.single_nb_execution``, as
   ``jupyter-book build`` runs them; each page gets its own smoke reductions (Jupyter Book
   cannot set them, but the comparison needs the same work);
2. ours before this change: every kernel started from scratch, one fixed thread share
   per slot (``DLBOOK_FORK_KERNELS=0``, ``OMP_NUM_THREADS`` = cores / jobs);
3. ours now: kernels forked from the fork server, idle cores given to the last notebooks;
4. the fixed cost per notebook, both ways: 8 notebooks that only run the start-up every
   page has (``import torch``, pyplot, ``import dlbook``), one at a time;
5. efficiency: the notebooks' own execution time (summed) over wall time x slots.

Goals: fixed cost <= 0.5 s a notebook forked; ours >= 2x Jupyter Book 1 on 2 cores.

Builds a throw-away book in a temporary folder: N similar notebooks, each training a
small MLP on synthetic data for a few seconds with a tiny library of its own (``Module``
base class, ``Trainer``, ``train_steps`` helper, ``make_data``). It then

1. executes all of them serially (``--jobs 1``) and in parallel (``--jobs J``), forced,
   and prints both wall times and the speed-up (goal: >= 1.8x for J=2 on 2 cores). Each
   kernel gets ``--threads`` CPU threads in both runs (default 1, so the figure measures
   the parallel execution alone; ``--threads 0`` keeps the engine's default of cores/jobs,
   which gives a serial kernel every core);
2. edits one library definition at a time and compares the notebooks the engine re-runs
   with the set expected from the source (goal: equal), executing the first edit for real.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.execution.engine import execute_book  # noqa: E402
from tools.execution.manifest import load_manifest  # noqa: E402

LIBRARY = {
    "__init__.py": "from .core import *\nfrom .train import *\n",
    "core.py": '''
import torch


def make_data(n, d=64, seed=0):
    """Synthetic classification data."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, :10].sum(1) > 0).long()
    return X, y


class Module(torch.nn.Module):
    """Base class of the models."""

    def loss(self, y_hat, y):
        return torch.nn.functional.cross_entropy(y_hat, y)
''',
    "train.py": '''
import torch

from .core import Module


class MLP(Module):
    def __init__(self, d=64, h=256):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(),
                                       torch.nn.Linear(h, h), torch.nn.ReLU(),
                                       torch.nn.Linear(h, 2))

    def forward(self, X):
        return self.net(X)


def train_steps(model, X, y, steps, batch=256, lr=0.1):
    """Plain minibatch SGD."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        j = (i * batch) % (len(X) - batch)
        loss = model.loss(model(X[j:j + batch]), y[j:j + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


class Trainer:
    def __init__(self, steps):
        self.steps = steps

    def fit(self, model, data):
        return train_steps(model, *data, self.steps)
''',
}

# What each notebook uses; the MLP notebooks reach Module through a base class.
NOTEBOOKS = {
    "trainer_a": "model = dlbook.MLP()\nprint(dlbook.Trainer({steps}).fit(model, data))",
    "trainer_b": "model = dlbook.MLP(h=192)\nprint(dlbook.Trainer({steps}).fit(model, data))",
    "helper": "model = dlbook.MLP()\nprint(dlbook.train_steps(model, *data, {steps}))",
    "plain": ("import torch\nnet = torch.nn.Sequential(torch.nn.Linear(64, 256), "
              "torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), "
              "torch.nn.Linear(256, 2))\nopt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
              "X, y = data\nfor i in range({steps}):\n    j = (i * 256) % (len(X) - 256)\n"
              "    loss = torch.nn.functional.cross_entropy(net(X[j:j+256]), y[j:j+256])\n"
              "    opt.zero_grad(); loss.backward(); opt.step()\nprint(float(loss))"),
}

# (file, old, new, notebooks expected to re-run)
EDITS = [
    ("core.py", "return torch.nn.functional.cross_entropy(y_hat, y)",
     "return torch.nn.functional.cross_entropy(y_hat, y, reduction='mean')",
     {"trainer_a", "trainer_b", "helper"}),
    ("train.py", "return train_steps(model, *data, self.steps)",
     "return train_steps(model, *data, steps=self.steps)", {"trainer_a", "trainer_b"}),
    ("train.py", "opt = torch.optim.SGD(model.parameters(), lr=lr)",
     "opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)",
     {"trainer_a", "trainer_b", "helper"}),
    ("core.py", '"""Synthetic classification data."""', '"""Synthetic data (docs only)."""',
     set()),
]


def notebook_text(name: str, code: str) -> str:
    return ("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
            f"  name: python3\n  display_name: Python 3\n---\n# {name}\n\n"
            "```{code-cell} ipython3\nimport dlbook\n\ndata = dlbook.make_data(8192)\n```\n\n"
            f"```{{code-cell}} ipython3\n{code}\n```\n")


def make_book(root: Path, count: int, steps: int) -> list[str]:
    (root / "dlbook").mkdir(parents=True)
    for name, text in LIBRARY.items():
        (root / "dlbook" / name).write_text(text.lstrip())
    kinds = list(NOTEBOOKS)
    names = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        name = f"{kind}_{i}"
        names.append(name)
        (root / f"{name}.md").write_text(
            notebook_text(name, NOTEBOOKS[kind].format(steps=steps)))
    (root / "index.md").write_text("# Benchmark\n")
    toc = "format: jb-book\nroot: index\nchapters:\n" + "".join(
        f"  - file: {n}\n" for n in names)
    (root / "_toc.yml").write_text(toc)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    return names


def timed_run(book: Path, jobs: int, force: bool = True,
              pages: list[str] | None = None) -> tuple[float, str]:
    out = io.StringIO()
    start = time.perf_counter()
    paths = [book / page for page in pages] if pages else None
    code = execute_book(book, paths, profile="smoke", jobs=jobs, force=force, stream=out)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"execution failed:\n{out.getvalue()}")
    return seconds, out.getvalue()


def executed_since(book: Path, before: dict) -> set[str]:
    after = {k: e.stamp for k, e in load_manifest(book / "_build/.jupyter_cache").entries.items()}
    return {Path(k).stem for k in after if before.get(k) != after[k]}


def would_run(book: Path) -> set[str]:
    """The notebooks the engine would re-run now (planning only, nothing executes)."""
    from jupyter_cache import get_cache

    from tools.core.mystnb import book_settings
    from tools.execution.engine import library_root, plan, select_sources
    from tools.execution.kernel_env import kernel_environment
    from tools.library.graph import read_library

    settings = book_settings(book)
    env = kernel_environment(book)
    jobs, _ = plan(book, select_sources(book, None), settings,
                   read_library(library_root(book)), "smoke", env,
                   load_manifest(settings.cache_path), get_cache(settings.cache_path))
    return {job.source.stem for job in jobs if job.reason}


BOOK_PARTS = ("_config.yml", "_toc.yml", "book", "chapters", "dlbook")
STARTUP = "import torch\nfrom matplotlib import pyplot as plt\n\nimport dlbook\n"


def copy_book(dest: Path, limit: int | None) -> list[str]:
    """The real book under ``dest``; its notebooks (the first ``limit`` of them)."""
    from tools.core.mystnb import book_settings, is_excluded
    from tools.core.toc import toc_sources

    dest.mkdir(parents=True)
    for part in BOOK_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("_build"))
        else:
            shutil.copy(source, dest / part)
    settings = book_settings(dest)
    pages = [p for p in toc_sources(dest) if p.suffix == ".md"
             and not is_excluded(p, settings) and "kernelspec" in p.read_text()[:400]]
    pages = pages[:limit] if limit else pages
    return [p.relative_to(dest).as_posix() for p in pages]


def ours(book: Path, pages: list[str], jobs: int, fork: bool) -> tuple[float, float]:
    """Wall seconds of a forced run, and the notebooks' own summed seconds."""
    saved = {k: os.environ.get(k) for k in ("DLBOOK_FORK_KERNELS", "OMP_NUM_THREADS",
                                            "MKL_NUM_THREADS")}
    os.environ["DLBOOK_FORK_KERNELS"] = "1" if fork else "0"
    if fork:
        os.environ.pop("OMP_NUM_THREADS", None)
        os.environ.pop("MKL_NUM_THREADS", None)
    else:  # before: each slot's fixed share, whatever the queue holds
        share = str(max(1, (os.cpu_count() or 1) // jobs))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = share
    try:
        seconds, _ = timed_run(book, jobs, pages=pages)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    entries = load_manifest(book / "_build/.jupyter_cache").entries
    return seconds, sum(e.seconds or 0 for e in entries.values())


def jupyter_book_serial(book: Path, pages: list[str]) -> float:
    """Execute ``pages`` one after the other as ``jupyter-book build`` does with myst-nb's
    cache mode: ``jupyter_cache.executors.utils.single_nb_execution`` in the page's
    folder, one kernel started from scratch per page."""
    from jupyter_cache.executors.utils import single_nb_execution

    from tools.core.mystnb import book_settings, read_as_mystnb
    from tools.execution.kernel_env import kernel_environment, page_environment, smoke_settings

    settings = book_settings(book)
    base = kernel_environment(book)
    saved = dict(os.environ)
    errors = 0
    try:
        start = time.perf_counter()
        for page in pages:
            notebook = read_as_mystnb(book / page, settings)
            os.environ.clear()
            os.environ.update(page_environment(base, smoke_settings(
                notebook.metadata.get("smoke"))))
            result = single_nb_execution(notebook, cwd=str((book / page).parent),
                                         timeout=settings.timeout, allow_errors=False)
            errors += result.err is not None
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if errors:
        print(f"  (Jupyter Book 1's run: {errors} notebook(s) failed)")
    return seconds


def fixed_cost(root: Path, fork: bool) -> tuple[float, float]:
    """Seconds per notebook that only starts up, one at a time: the marginal cost of a
    notebook (from runs of 4 and 12 of them), and what a run pays once (the workers, and
    the fork server's imports)."""
    import nbformat

    from tools.execution.kernel_env import kernel_environment, page_environment, smoke_settings
    from tools.execution.pool import Task, make_slots, run_tasks

    env = page_environment(kernel_environment(REPO), smoke_settings(None))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STARTUP)])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    seconds = {}
    for count in (4, 12):
        tasks = [Task(f"start{i}", nb, root, env, 300) for i in range(count)]
        start = time.perf_counter()
        outcomes = list(run_tasks(tasks, make_slots(1, []), fork=fork))
        seconds[count] = time.perf_counter() - start
        if not all(o.result and o.result["ok"] for o in outcomes):
            raise SystemExit("a start-up notebook failed")
    marginal = (seconds[12] - seconds[4]) / 8
    return marginal, seconds[4] - 4 * marginal


def book_mode(args) -> int:
    cores = os.cpu_count() or 1
    mirror = REPO.parent / "shared" / "data"  # the copy is not beside it: say where it is
    if mirror.is_dir():
        os.environ.setdefault("DLBOOK_DATA_MIRROR", str(mirror))
    with tempfile.TemporaryDirectory(prefix="dlbook-bench-book-") as tmp:
        book = Path(tmp) / "book"
        pages = copy_book(book, args.limit)
        print(f"book: {len(pages)} notebooks, smoke profile, {args.jobs} slot(s) on "
              f"{cores} cores; load average before: {os.getloadavg()[0]:.1f}")
        plain_start, plain_once = fixed_cost(Path(tmp), fork=False)
        fork_start, fork_once = fixed_cost(Path(tmp), fork=True)
        print(f"fixed cost per notebook (start-up only):  started {plain_start:5.2f} s,"
              f"  forked {fork_start:5.2f} s  (goal <= 0.5 s)")
        print(f"paid once per run (workers, fork server): started {plain_once:5.2f} s,"
              f"  forked {fork_once:5.2f} s")
        jb = None if args.skip_jb else jupyter_book_serial(book, pages)
        before, before_busy = ours(book, pages, args.jobs, fork=False)
        after, after_busy = ours(book, pages, args.jobs, fork=True)
        if jb is not None:
            print(f"Jupyter Book 1, serial:        {jb:7.1f} s")
        print(f"ours before (started kernels): {before:7.1f} s"
              f"  efficiency {before_busy / (before * args.jobs):5.1%}")
        print(f"ours now (forked kernels):     {after:7.1f} s"
              f"  efficiency {after_busy / (after * args.jobs):5.1%}")
        if jb is not None:
            print(f"speed-up over Jupyter Book 1: before {jb / before:4.2f}x, "
                  f"now {jb / after:4.2f}x  (goal >= 2x)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150, help="SGD steps per notebook")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per kernel in both runs (0: engine default)")
    parser.add_argument("--book", action="store_true",
                        help="measure the real book (module docstring)")
    parser.add_argument("--limit", type=int, default=None,
                        help="with --book: only the first N notebooks")
    parser.add_argument("--skip-jb", action="store_true",
                        help="with --book: leave out Jupyter Book 1's serial run")
    args = parser.parse_args(argv)
    if args.book:
        return book_mode(args)
    if args.threads > 0:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="dlbook-bench-") as tmp:
        book = Path(tmp) / "book"
        names = make_book(book, args.notebooks, args.steps)
        timed_run(book, args.jobs)  # warm up: file caches, compiled bytecode
        serial, _ = timed_run(book, 1)
        parallel, _ = timed_run(book, args.jobs)
        print(f"notebooks: {len(names)} (each ~{serial / len(names):.1f} s serially, "
              f"kernel start included); threads per kernel: "
              f"{args.threads or 'engine default'}; load average before: "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"serial (--jobs 1):      {serial:6.1f} s")
        print(f"parallel (--jobs {args.jobs}):    {parallel:6.1f} s")
        print(f"speed-up:               {serial / parallel:6.2f}x  (goal >= 1.8x)")
        all_equal = True
        for i, (module, old, new, kinds) in enumerate(EDITS):
            path = book / "dlbook" / module
            original = path.read_text()
            path.write_text(original.replace(old, new))
            expected = {n for n in names if n.rsplit("_", 1)[0] in kinds}
            predicted = would_run(book)
            all_equal &= predicted == expected
            line = f"edit {module}: {new.strip()[:48]!r}\n    would re-run " \
                   f"{len(predicted)}, expected {len(expected)}: " \
                   f"{'equal' if predicted == expected else f'DIFFERENT {sorted(predicted)}'}"
            if i == 0:  # execute this one for real and count what ran
                before = {k: e.stamp for k, e in
                          load_manifest(book / "_build/.jupyter_cache").entries.items()}
                seconds, _ = timed_run(book, args.jobs, force=False)
                ran = executed_since(book, before)
                all_equal &= ran == expected
                line += f"; executed {len(ran)} in {seconds:.1f} s: " \
                        f"{'equal' if ran == expected else f'DIFFERENT {sorted(ran)}'}"
            else:
                path.write_text(original)  # undo: the next edit starts from a cached book
            print(line)
        print(f"invalidation: {'exactly the expected notebooks' if all_equal else 'MISMATCH'}")
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
