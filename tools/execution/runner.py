"""Execute notebooks, one kernel each: the worker process of :mod:`tools.execution.pool`.

``python -m tools.execution.runner --serve EVENTS_FD`` serves one slot of the pool for a
whole run: it reads requests from standard input, one JSON object a line (the notebook
to run, where to write the executed notebook and the result, the kernel's environment
and working folder, timeout, allow_errors, the fork server's socket), and runs each with
nbclient exactly as jupyter-cache does for myst-nb (the notebook's ``execution`` metadata
may override timeout and allow_errors). It reports on the file descriptor ``EVENTS_FD``
(a pipe no kernel inherits), one JSON object a line: ``{"event": "kernel", "pid": N}``
once the kernel runs, ``{"event": "cell", "number": k, "of": n}`` as each code cell
starts, and ``{"event": "done"}`` when the result is written. Serving many notebooks
from one process saves starting Python and importing nbclient for each of them.
``python -m tools.execution.runner REQUEST.json`` runs one request and reports on
standard output. It never writes to the cache: the parent process does, from the files
this process leaves.

Three limits make a failure say what happened, naming the cell:

- time: a cell that runs past the limit (``execute.timeout`` in ``_config.yml``, or the
  page's own ``execution: timeout:`` front matter) fails as a timeout, not as the
  ``KeyboardInterrupt`` that nbclient uses to stop the kernel;
- output: a cell whose outputs exceed :data:`OUTPUT_LIMIT` bytes fails, and what it
  printed past the limit is never held in memory;
- Ctrl-C: this process runs in its own session and ignores SIGINT, so that only the
  parent decides what an interrupt means (it stops every worker and keeps the cache
  consistent).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from tools.execution.forked import ForkProvisioner, manager_class

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
OUTPUT_LIMIT = 4 * 2**20  # bytes of output per code cell (docs/guarantees.md)
TIMEOUT_SOURCE = "set by execute.timeout in _config.yml or the page's execution: timeout:"


class OutputTooLarge(Exception):
    """A code cell produced more output than :data:`OUTPUT_LIMIT`."""


class LimitedClient(NotebookClient):
    """nbclient's client, keeping at most :data:`OUTPUT_LIMIT` bytes of output per cell."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.output_bytes: dict[int, int] = {}

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        total = self.output_bytes.get(cell_index, 0) + size
        self.output_bytes[cell_index] = total
        if total > OUTPUT_LIMIT:
            return None  # dropped: the cell fails when it ends
        return super().output(outs, msg, display_id, cell_index)


EVENTS = {"stream": sys.stdout}  # where events go: the pool's pipe when serving


def emit(**event) -> None:
    stream = EVENTS["stream"]
    stream.write(json.dumps(event) + "\n")
    stream.flush()


def error_of(notebook, index: int | None, err: Exception) -> dict:
    """The failing cell and its error, as plain text."""
    cell = notebook.cells[index] if index is not None else None
    info = {"cell_index": index, "ename": type(err).__name__, "evalue": str(err),
            "traceback": str(err), "execution_count": None}
    if cell is not None:
        info["execution_count"] = cell.get("execution_count")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                info.update(ename=output["ename"], evalue=output["evalue"],
                            traceback="\n".join(output.get("traceback", [])))
                break
    info["traceback"] = ANSI.sub("", info["traceback"])
    return info


def kernel_start(client: NotebookClient) -> str:
    """How the kernel was started: 'forked', or 'spawned' (with the reason when a fork
    server was asked but could not fork it)."""
    provisioner = getattr(client.km, "provisioner", None) if client.km else None
    if isinstance(provisioner, ForkProvisioner):
        reason = provisioner.fallback_reason
        return "forked" if reason is None else f"spawned ({reason})"
    return "spawned"


def run(request: dict) -> dict:
    """Execute the requested notebook; return the result record (also written to disk)."""
    notebook = nbformat.read(request["notebook"], as_version=4)
    timeout, allow_errors = request.get("timeout"), request.get("allow_errors", False)
    overrides = notebook.metadata.get("execution", {})
    timeout = overrides.get("timeout", timeout)
    allow_errors = overrides.get("allow_errors", allow_errors)
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    current: dict = {"index": None}

    def on_start(cell, cell_index) -> None:
        if cell_index not in code_cells:
            return
        current["index"] = cell_index
        emit(event="cell", number=code_cells.index(cell_index) + 1, of=len(code_cells))

    def on_notebook_start(notebook) -> None:
        # nbclient shuts the kernel down on SIGINT; the parent decides instead.
        asyncio.get_event_loop().remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        provisioner = getattr(client.km, "provisioner", None)
        current["kernel"] = kernel_start(client)
        emit(event="kernel", pid=getattr(provisioner, "pid", None))

    def on_executed(cell, cell_index, execute_reply) -> None:
        produced = client.output_bytes.get(cell_index, 0)
        if produced > OUTPUT_LIMIT:
            raise OutputTooLarge(f"the cell produced {produced / 2**20:.1f} MB of output; "
                                 f"the limit is {OUTPUT_LIMIT / 2**20:g} MB per cell")

    options = {}
    if request.get("fork_server"):
        options["kernel_manager_class"] = manager_class(Path(request["fork_server"]))
    client = LimitedClient(notebook, timeout=timeout, allow_errors=allow_errors,
                           record_timing=False, on_cell_start=on_start,
                           on_cell_executed=on_executed, on_notebook_start=on_notebook_start,
                           **options)
    start = time.perf_counter()
    result: dict = {"ok": True, "error": None}
    try:
        client.execute(cwd=request["cwd"])
    except CellTimeoutError:
        result = {"ok": False, "error": {
            "cell_index": current["index"], "ename": "Timeout", "timeout": timeout,
            "evalue": f"exceeded the {timeout} s limit ({TIMEOUT_SOURCE})", "traceback": ""}}
    except OutputTooLarge as err:
        result = {"ok": False, "error": {"cell_index": current["index"],
                                         "ename": "OutputTooLarge", "evalue": str(err),
                                         "traceback": ""}}
    except (CellExecutionError, DeadKernelError) as err:
        result = {"ok": False, "error": error_of(notebook, current["index"], err)}
    result["seconds"] = round(time.perf_counter() - start, 3)
    result["kernel"] = current.get("kernel", "not started")
    nbformat.write(notebook, request["output"])
    Path(request["result"]).write_text(json.dumps(result), encoding="utf-8")
    return result


def serve(events_fd: int) -> int:
    """Run the requests of standard input one after the other until it closes."""
    EVENTS["stream"] = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        os.environ.clear()  # what the kernel inherits: this notebook's environment
        os.environ.update(request["env"])
        try:
            run(request)
        except Exception:  # noqa: BLE001  (no result file: the pool reports this log)
            traceback.print_exc()
        emit(event="done")
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (module docstring)
    if argv[:1] == ["--serve"]:
        return serve(int(argv[1]))
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if "env" in request:
        os.environ.update(request["env"])
    run(request)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
