"""Execute one notebook in one kernel: the worker process of :mod:`tools.execution.pool`.

``python -m tools.execution.runner REQUEST.json`` reads a request (the notebook to run, where to
write the executed notebook and the result, the working folder, timeout, allow_errors),
runs it with nbclient exactly as jupyter-cache does for myst-nb (the notebook's
``execution`` metadata may override timeout and allow_errors), and reports on stdout, one
JSON object a line: ``{"event": "kernel", "pid": N}`` once the kernel runs, then
``{"event": "cell", "number": k, "of": n}`` as each code cell starts. It never writes to
the cache: the parent process does, from the files this process leaves.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def emit(**event) -> None:
    print(json.dumps(event), flush=True)


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
        provisioner = getattr(client.km, "provisioner", None)
        emit(event="kernel", pid=getattr(provisioner, "pid", None))

    client = NotebookClient(notebook, timeout=timeout, allow_errors=allow_errors,
                            record_timing=False, on_cell_start=on_start,
                            on_notebook_start=on_notebook_start)
    start = time.perf_counter()
    result: dict = {"ok": True, "error": None}
    try:
        client.execute(cwd=request["cwd"])
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        result = {"ok": False, "error": error_of(notebook, current["index"], err)}
    result["seconds"] = round(time.perf_counter() - start, 3)
    nbformat.write(notebook, request["output"])
    Path(request["result"]).write_text(json.dumps(result), encoding="utf-8")
    return result


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    run(request)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
