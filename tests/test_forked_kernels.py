"""Kernels forked from the fork server (``tools/execution/forkserver.py``, ``forked.py``).

The same notebooks run through the pool twice, once with every kernel started from
scratch and once forked from the server: their outputs must be identical (seeds, figures,
working folder, ``sys.path``, smoke reductions, a subprocess's exit status), and each
run must say how its kernel started. A kernel that dies does not disturb the others or
the server, and a server that cannot fork leaves kernels to start the usual way.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import nbformat
import pytest

from tools.execution import forkserver
from tools.execution.forked import ForkUnavailable, request_kernel
from tools.execution.kernel_env import kernel_environment, page_environment, smoke_settings
from tools.execution.pool import Task, make_slots, run_tasks, threads_at_start

REPO = Path(__file__).resolve().parents[1]

CELLS = [
    "import os, random, sys\nimport numpy as np\nimport torch\n"
    "print(os.path.basename(os.getcwd()), sys.path.count(''), sys.argv[1:2])",
    "print(random.random(), np.random.rand(), torch.rand(2).tolist())",
    "print(sorted(k for k in os.environ if k.startswith(('DLBOOK', 'OMP', 'PYTHONHASH'))))",
    "print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])",
    "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    "import dlbook\nprint(dlbook.Trainer(max_epochs=99).max_epochs)",
    "import subprocess\n"
    "print(subprocess.run([sys.executable, '-c', 'import sys; sys.exit(3)']).returncode)",
    "import signal\nprint(signal.getsignal(signal.SIGINT).__name__, "
    "signal.getsignal(signal.SIGCHLD))",
]


def notebook(*extra: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(code) for code in (*CELLS, *extra)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    return nb


def outputs(nb: nbformat.NotebookNode) -> list:
    """Every output of every cell, without execution counts."""
    return [[{k: v for k, v in out.items() if k != "execution_count"} for out in c.outputs]
            for c in nb.cells]


def run(tasks: list[Task], fork: bool, jobs: int = 2) -> dict:
    return {o.task.name: o for o in run_tasks(tasks, make_slots(jobs, [], cores=jobs),
                                              fork=fork, cores=jobs)}


@pytest.fixture(scope="module")
def env() -> dict:
    return kernel_environment(REPO, {k: v for k, v in os.environ.items()
                                     if k not in ("PYTHONPATH", "OMP_NUM_THREADS")})


def test_forked_kernels_give_the_outputs_of_kernels_started_from_scratch(env, tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    smoke = page_environment(env, smoke_settings({"max_epochs": 3}))
    full = page_environment(env, None)
    tasks = [Task("smoke", notebook(), folder, smoke, 300),
             Task("full", notebook(), tmp_path, full, 300)]
    plain, forked = run(tasks, fork=False), run(tasks, fork=True)
    for name in ("smoke", "full"):
        assert plain[name].result["ok"], plain[name].log
        assert forked[name].result["ok"], forked[name].log
        assert plain[name].result["kernel"] == "spawned"
        assert forked[name].result["kernel"] == "forked"
        assert outputs(forked[name].notebook) == outputs(plain[name].notebook)
    texts = [o.get("text", "") for cell in outputs(forked["smoke"].notebook) for o in cell]
    assert "pages 1 ['-f']\n" in texts  # its own folder; '' once on sys.path
    assert "3\n" in texts and "3\n" in texts[-2:]  # smoke cap; the subprocess's status
    assert any(t.startswith("default_int_handler") for t in texts), texts
    figure = outputs(forked["full"].notebook)[4][0]["data"]
    assert {"image/svg+xml", "application/pdf"} <= set(figure)
    assert "99\n" in [o.get("text") for o in outputs(forked["full"].notebook)[5]]


def test_a_kernel_that_dies_leaves_the_others_and_the_server_alone(env, tmp_path):
    full = page_environment(env, None)
    dies = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    tasks = [Task("dies", notebook(dies), tmp_path, full, 300),
             Task("lives", notebook(), tmp_path, full, 300),
             Task("later", notebook(), tmp_path, full, 300)]  # forked after the death
    done = run(tasks, fork=True)
    assert not done["dies"].result["ok"]
    assert done["dies"].result["error"]["ename"] == "DeadKernelError"
    for name in ("lives", "later"):
        assert done[name].result["ok"], done[name].log
        assert done[name].result["kernel"] == "forked"
    assert outputs(done["lives"].notebook) == outputs(done["later"].notebook)


def test_without_a_server_the_kernel_starts_the_usual_way(tmp_path):
    with pytest.raises(ForkUnavailable, match="no fork server"):
        request_kernel(tmp_path / "absent.sock", [sys.executable, "-m",
                                                  "ipykernel_launcher"], {}, tmp_path,
                       timeout=0.2)


def test_the_server_refuses_what_it_cannot_fork(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_threads", lambda: 1)  # as in the server
    assert forkserver.forkable([sys.executable, "-m", "ipykernel_launcher", "-f", "c"]) \
        is None
    monkeypatch.setattr(forkserver, "_threads", lambda: 2)  # a library's thread pool
    assert "runs 2 threads" in forkserver.forkable([sys.executable, "-m",
                                                    "ipykernel_launcher"])
    monkeypatch.setattr(forkserver, "_threads", lambda: 1)
    assert "not an ipykernel" in forkserver.forkable([sys.executable, "-m", "other"])
    assert "another Python" in forkserver.forkable(["/usr/bin/python0", "-m",
                                                    "ipykernel_launcher"])
    path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    with listener, pytest.raises(ForkUnavailable, match="did not answer|closed"):
        request_kernel(path, [sys.executable], {}, tmp_path, timeout=0.5)


@pytest.mark.parametrize(("busy", "waiting", "threads"), [
    (1, 5, 1),  # a full queue: one core each
    (1, 0, 1),  # the other slot is busy: still one core each
    (0, 0, 2),  # the last notebook, alone: both cores
])
def test_a_notebook_that_starts_alone_gets_the_idle_cores(busy, waiting, threads,
                                                          monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_at_start(2, 2, busy, waiting) == threads
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads_at_start(2, 2, busy, waiting) is None  # the environment decides
