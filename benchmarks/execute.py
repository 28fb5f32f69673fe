"""Benchmark of ``tools execute``: parallel speed-up, and invalidation after a library edit.

    .venv/bin/python benchmarks/execute.py [--notebooks 4] [--steps 150] [--jobs 2]
                                           [--threads 1]

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


def timed_run(book: Path, jobs: int, force: bool = True) -> tuple[float, str]:
    out = io.StringIO()
    start = time.perf_counter()
    code = execute_book(book, profile="smoke", jobs=jobs, force=force, stream=out)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150, help="SGD steps per notebook")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per kernel in both runs (0: engine default)")
    args = parser.parse_args(argv)
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
