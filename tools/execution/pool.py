"""Run notebooks in parallel: one worker process (and kernel) per slot, results in order done.

A *slot* is one place to run: a CPU share (``OMP_NUM_THREADS`` = cores / slots unless the
environment sets it, so two kernels on two cores do not fight over threads) or one GPU
(``CUDA_VISIBLE_DEVICES`` pinned to it). Each slot has one worker, ``python -m
tools.execution.runner --serve``, which runs the slot's tasks one after the other (a new
kernel for each); :func:`run_tasks` yields each finished task to the caller (the only
process that writes the cache). A worker that dies is replaced for the next task. On
Ctrl-C it kills every worker and its kernel (kernels run in their own process group) and
re-raises, so nothing half-done is ever reported as done.

Two things keep the cores busy:

- kernels are forked from one :mod:`tools.execution.forkserver` per run, which has
  imported torch, matplotlib and the kernel machinery once, instead of each kernel
  importing them again (``fork=False``, or ``DLBOOK_FORK_KERNELS=0``, starts every kernel
  from scratch);
- when fewer notebooks remain than slots, a notebook that starts gets the idle slots'
  share of the cores as threads (:func:`threads_at_start`), unless the environment sets
  ``OMP_NUM_THREADS``. The engine orders the tasks longest first.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tools.execution.kernel_env import SMOKE_VARIABLE


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
class Worker:
    """A runner process (``python -m tools.execution.runner --serve``) serving one slot: it
    takes requests on its standard input and reports on its own pipe."""

    slot: Slot
    process: subprocess.Popen
    log: Path


@dataclass
class Running:
    task: Task
    worker: Worker
    started: float
    files: dict[str, Path]
    log_offset: int = 0
    kernel_pid: int | None = None
    cell: tuple[int, int] = (0, 0)

    @property
    def slot(self) -> Slot:
        return self.worker.slot


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


def threads_at_start(cores: int, slots: int, busy: int, waiting: int) -> int | None:
    """Threads for a notebook that starts while ``busy`` others run and ``waiting`` wait:
    a fair share of the cores among those that will run at once (None: leave the slot's
    setting, because the environment fixes ``OMP_NUM_THREADS``)."""
    preset = os.environ.get("OMP_NUM_THREADS", "")
    if preset.isdigit() and int(preset) > 0:
        return None
    return max(1, cores // max(1, min(slots, busy + 1 + waiting)))


def fork_enabled(env: dict | None = None) -> bool:
    """Kernels are forked unless ``DLBOOK_FORK_KERNELS`` is 0 (or the platform cannot)."""
    value = (os.environ if env is None else env).get("DLBOOK_FORK_KERNELS", "1")
    return value.strip() not in ("0", "false", "no") and hasattr(os, "fork") \
        and hasattr(socket, "send_fds")


def start_fork_server(scratch: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """Start the fork server of this run (it imports the heavy modules while the first
    workers start); return the process and its socket."""
    path = scratch / "fork.sock"
    with (scratch / "fork.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.execution.forkserver", str(path)],
            env=env, cwd=scratch, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
    return process, path


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


def start_worker(slot: Slot, env: dict, scratch: Path, events: queue.Queue) -> Worker:
    """Start the runner process of ``slot``; a thread forwards its events to ``events``."""
    read_end, write_end = os.pipe()
    log = scratch / f"slot{slot.index}.log"
    with log.open("a") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.execution.runner", "--serve", str(write_end)],
            env=env, stdin=subprocess.PIPE, stdout=stream, stderr=stream, text=True,
            bufsize=1, pass_fds=(write_end,),
            start_new_session=True)  # a Ctrl-C reaches the parent only
    os.close(write_end)
    worker = Worker(slot, process, log)
    threading.Thread(target=_read_events, args=(worker, read_end, events),
                     daemon=True).start()
    return worker


def _read_events(worker: Worker, fd: int, events: queue.Queue) -> None:
    with os.fdopen(fd, encoding="utf-8") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.put((worker, event))
    worker.process.wait()
    events.put((worker, {"event": "exit"}))


def _kill(worker: Worker, kernel_pid: int | None) -> None:
    """Kill a worker and its kernel's whole process group, now."""
    if kernel_pid:
        try:
            os.killpg(kernel_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if worker.process.poll() is None:
        worker.process.kill()


def _outcome(running: Running, done: bool) -> Outcome:
    files = running.files
    done = done and files["result.json"].is_file() and files["out.ipynb"].is_file()
    with running.worker.log.open(errors="replace") as log:
        log.seek(running.log_offset)
        text = log.read()
    return Outcome(running.task, running.slot,
                   json.loads(files["result.json"].read_text()) if done else None,
                   nbformat.read(files["out.ipynb"], as_version=4) if done else None,
                   time.monotonic() - running.started, text[-4000:])


def run_tasks(tasks: list[Task], slots: list[Slot],
              on_change: Callable[[list[Running]], None] = lambda running: None,
              fork: bool | None = None, cores: int | None = None) -> Iterator[Outcome]:
    """Run ``tasks`` over ``slots``; yield each :class:`Outcome` as its task ends."""
    pending = list(tasks)
    free = list(reversed(slots))
    active: dict[int, Running] = {}
    workers: dict[int, Worker] = {}
    events: queue.Queue = queue.Queue()
    scratch = Path(tempfile.mkdtemp(prefix="dlbook-exec-"))
    cores = cores or os.cpu_count() or 1
    base = {k: v for k, v in tasks[0].env.items() if k != SMOKE_VARIABLE} if tasks else {}
    server = None
    if tasks and (fork_enabled() if fork is None else fork):
        # One thread in the server, so that no library starts a thread pool before fork.
        server = start_fork_server(scratch, {**base, **slots[0].env, "OMP_NUM_THREADS": "1",
                                             "MKL_NUM_THREADS": "1"})

    def start(number: int, task: Task, slot: Slot) -> None:
        worker = workers.get(slot.index)
        if worker is None or worker.process.poll() is not None:
            worker = workers[slot.index] = start_worker(slot, {**base, **slot.env},
                                                        scratch, events)
        files = {name: scratch / f"{number}.{name}" for name in
                 ("in.ipynb", "out.ipynb", "result.json")}
        nbformat.write(task.notebook, files["in.ipynb"])
        env = {**task.env, **slot.env}
        threads = threads_at_start(cores, len(slots), len(active), len(pending))
        if threads is not None:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        running = Running(task, worker, time.monotonic(), files, worker.log.stat().st_size)
        active[slot.index] = running
        request = {"notebook": str(files["in.ipynb"]), "output": str(files["out.ipynb"]),
                   "result": str(files["result.json"]), "cwd": str(task.cwd), "env": env,
                   "timeout": task.timeout, "allow_errors": task.allow_errors,
                   "fork_server": str(server[1]) if server else None}
        try:
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
        except OSError:
            pass  # the worker died: its exit event reports the task

    try:
        while pending or active:
            while pending and free:
                start(len(tasks) - len(pending), pending.pop(0), free.pop())
            on_change(list(active.values()))
            try:
                worker, event = events.get(timeout=0.25)
            except queue.Empty:
                continue
            running = active.get(worker.slot.index)
            if running is None or running.worker is not worker:
                continue  # a worker that has nothing to do any more
            if event["event"] == "kernel":
                running.kernel_pid = event.get("pid")
            elif event["event"] == "cell":
                running.cell = (event["number"], event["of"])
            elif event["event"] in ("done", "exit"):
                del active[worker.slot.index]
                free.append(worker.slot)
                yield _outcome(running, event["event"] == "done")
    except BaseException:
        for running in active.values():
            _kill(running.worker, running.kernel_pid)
        for running in active.values():
            running.worker.process.wait()
        raise
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                try:
                    worker.process.stdin.close()  # no more requests: it exits
                except OSError:
                    pass
        for worker in workers.values():
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        if server is not None:
            server[0].kill()
            server[0].wait()
        shutil.rmtree(scratch, ignore_errors=True)
