"""Run notebooks in parallel: one worker process (and kernel) per slot, results in order done.

A *slot* is one place to run: a CPU share (``OMP_NUM_THREADS`` = cores / slots unless the
environment sets it, so two kernels on two cores do not fight over threads) or one GPU
(``CUDA_VISIBLE_DEVICES`` pinned to it). Each task runs ``python -m tools.execution.runner`` in a
slot; :func:`run_tasks` yields each finished task to the caller (the only process that
writes the cache). On Ctrl-C it kills every worker and its kernel (kernels run in their
own process group) and re-raises, so nothing half-done is ever reported as done.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Slot:
    """Where a worker runs: environment overrides and a description of the device."""

    index: int
    env: dict
    device: str


@dataclass
class Task:
    """One notebook to execute, where (``cwd``) and how, and the name to show."""

    name: str
    notebook: nbformat.NotebookNode
    cwd: Path
    env: dict
    timeout: int | None = None
    allow_errors: bool = False


@dataclass
class Running:
    task: Task
    slot: Slot
    process: subprocess.Popen
    started: float
    files: dict[str, Path]
    kernel_pid: int | None = None
    cell: tuple[int, int] = (0, 0)


@dataclass
class Outcome:
    """A finished task: the runner's result record and executed notebook (None if the
    worker crashed before writing them)."""

    task: Task
    slot: Slot
    result: dict | None
    notebook: nbformat.NotebookNode | None
    seconds: float
    log: str = field(default="", repr=False)


def _threads(cores: int, count: int) -> int:
    """CPU threads per kernel: ``OMP_NUM_THREADS`` if set, else a fair share of cores."""
    preset = os.environ.get("OMP_NUM_THREADS", "")
    return int(preset) if preset.isdigit() and int(preset) > 0 else max(1, cores // count)


def make_slots(jobs: int | None, gpus: list[str], cores: int | None = None) -> list[Slot]:
    """One slot per GPU (or per core without GPUs), unless ``jobs`` says how many."""
    cores = cores or os.cpu_count() or 1
    if gpus:
        count = jobs or len(gpus)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [v.strip() for v in visible.split(",")] if visible else \
            [str(i) for i in range(len(gpus))]
        threads = _threads(cores, count)
        return [Slot(i, {"CUDA_VISIBLE_DEVICES": ids[i % len(gpus)],
                         "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
                     f"GPU {gpus[i % len(gpus)]}") for i in range(count)]
    count = max(1, jobs or cores)
    threads = _threads(cores, count)
    device = f"CPU ({cores} cores)"
    return [Slot(i, {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
                 device) for i in range(count)]


def _read_events(running: Running, events: queue.Queue) -> None:
    for line in running.process.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        events.put((running, event))
    running.process.wait()
    events.put((running, {"event": "exit"}))


def _kill(running: Running) -> None:
    """Kill a worker and its kernel's whole process group, now."""
    if running.kernel_pid:
        try:
            os.killpg(running.kernel_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if running.process.poll() is None:
        running.process.kill()


def run_tasks(tasks: list[Task], slots: list[Slot],
              on_change: Callable[[list[Running]], None] = lambda running: None,
              ) -> Iterator[Outcome]:
    """Run ``tasks`` over ``slots``; yield each :class:`Outcome` as its task ends."""
    pending = list(tasks)
    free = list(reversed(slots))
    active: dict[int, Running] = {}
    events: queue.Queue = queue.Queue()
    scratch = Path(tempfile.mkdtemp(prefix="dlbook-exec-"))

    def start(number: int, task: Task, slot: Slot) -> None:
        files = {name: scratch / f"{number}.{name}" for name in
                 ("in.ipynb", "out.ipynb", "result.json", "request.json", "log")}
        nbformat.write(task.notebook, files["in.ipynb"])
        files["request.json"].write_text(json.dumps({
            "notebook": str(files["in.ipynb"]), "output": str(files["out.ipynb"]),
            "result": str(files["result.json"]), "cwd": str(task.cwd),
            "timeout": task.timeout, "allow_errors": task.allow_errors}))
        with files["log"].open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tools.execution.runner", str(files["request.json"])],
                env={**task.env, **slot.env}, stdout=subprocess.PIPE, stderr=log,
                stdin=subprocess.DEVNULL, text=True, bufsize=1,
                start_new_session=True)  # a Ctrl-C reaches the parent only
        running = Running(task, slot, process, time.monotonic(), files)
        active[slot.index] = running
        threading.Thread(target=_read_events, args=(running, events), daemon=True).start()

    try:
        while pending or active:
            while pending and free:
                start(len(tasks) - len(pending), pending.pop(0), free.pop())
            on_change(list(active.values()))
            try:
                running, event = events.get(timeout=0.25)
            except queue.Empty:
                continue
            if event["event"] == "kernel":
                running.kernel_pid = event.get("pid")
            elif event["event"] == "cell":
                running.cell = (event["number"], event["of"])
            elif event["event"] == "exit":
                del active[running.slot.index]
                free.append(running.slot)
                files = running.files
                done = files["result.json"].is_file() and files["out.ipynb"].is_file()
                yield Outcome(
                    running.task, running.slot,
                    json.loads(files["result.json"].read_text()) if done else None,
                    nbformat.read(files["out.ipynb"], as_version=4) if done else None,
                    time.monotonic() - running.started,
                    files["log"].read_text(errors="replace")[-4000:])
    except BaseException:
        for running in active.values():
            _kill(running)
        for running in active.values():
            running.process.wait()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
