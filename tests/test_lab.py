"""``make lab``: JupyterLab with the book's configuration opens a section as a notebook and
runs it in a kernel of the book's environment.

The server runs headless, as ``make lab`` starts it (``python -m jupyterlab`` with
``jupyter-config/`` on ``JUPYTER_CONFIG_PATH``), on a free local port with a token and its
own runtime, data and user-config folders, over a copy of one section and the repository's
``jupytext.toml``. The test talks to it only through its REST API and the kernel's
websocket, as the browser would, and always shuts it down.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import jupytext
import nbformat
import pytest
import websocket
import yaml
from conftest import free_port

REPO = Path(__file__).resolve().parents[1]
SECTION = "chapters/02-preliminaries/tensors.md"
SMOKE_BLOCK = "smoke:  # a build-only key that saving must keep\n  max_epochs: 2\n"

pytestmark = pytest.mark.timeout(600)


class Lab:
    """A running server: its address, token, and JSON requests to its REST API."""

    def __init__(self, proc: subprocess.Popen, root: Path, port: int, token: str,
                 log: Path) -> None:
        self.proc, self.root, self.port, self.token, self.log = proc, root, port, token, log

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        return json.loads(text) if text else {}

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def lab_environment(tmp: Path) -> dict[str, str]:
    """What ``make lab`` sets, plus folders of the test's own for everything the server
    would otherwise write under the home directory."""
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_PATH=str(REPO / "jupyter-config"), JUPYTER_PREFER_ENV_PATH="1",
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"))
    return env


def wait_until_up(lab: Lab, deadline: float) -> None:
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            pytest.fail(f"the server exited ({lab.proc.returncode}):\n{lab.server_log()}")
        try:
            lab.call("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    pytest.fail(f"the server did not answer within its start-up time:\n{lab.server_log()}")


def stop(lab: Lab) -> None:
    """Shut the server down through its API (it stops its kernels), then make sure."""
    if lab.proc.poll() is None:
        try:
            lab.call("POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError):
            pass
    try:
        lab.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(lab.proc.pid, signal.SIGTERM)  # the server's own process group
        lab.proc.wait(timeout=30)


@pytest.fixture()
def lab(tmp_path) -> Lab:
    """The server over ``root/``: the repository's ``jupytext.toml`` and a copy of the
    section, with a ``smoke`` key added to its front matter."""
    root = tmp_path / "root"
    (root / SECTION).parent.mkdir(parents=True)
    shutil.copy2(REPO / "jupytext.toml", root / "jupytext.toml")
    text = (REPO / SECTION).read_text(encoding="utf-8")
    assert text.startswith("---\n") and "\nsmoke:" not in text
    (root / SECTION).write_text(text.replace("\n---\n", "\n" + SMOKE_BLOCK + "---\n", 1),
                                encoding="utf-8")
    port, token = free_port(), uuid.uuid4().hex
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(command, cwd=root, env=lab_environment(tmp_path),
                                stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(proc, root, port, token, log)
    try:
        wait_until_up(server, time.monotonic() + 180)
        yield server
    finally:
        stop(server)


def message(session: str, code: str) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}


def run_cell(ws: websocket.WebSocket, session: str, code: str) -> tuple[str, list]:
    """Execute ``code``; its reply status and its outputs (nbformat dicts)."""
    request = message(session, code)
    ws.send(json.dumps(request))
    outputs, status, idle = [], None, False
    while status is None or not idle:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
            continue
        kind = msg["msg_type"]
        if msg["channel"] == "shell" and kind == "execute_reply":
            status = msg["content"]["status"]
        elif kind == "status":
            idle = msg["content"]["execution_state"] == "idle"
        elif kind in ("stream", "execute_result", "display_data", "error"):
            outputs.append(nbformat.v4.output_from_msg(msg))
    return status, outputs


def text_of(outputs: list) -> str:
    parts = []
    for out in outputs:
        parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
        parts.extend(out.get("traceback", []))
    return "".join(parts)


def test_a_section_opens_as_a_notebook_runs_in_the_book_kernel_and_saves_back(lab):
    # Double-clicking a .md opens it with jupytext's notebook viewer.
    settings = lab.call("GET", "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook", viewers

    model = lab.call("GET", f"/api/contents/{SECTION}?type=notebook&content=1")
    assert model["type"] == "notebook" and model["format"] == "json"
    notebook = nbformat.from_dict(model["content"])
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code_cells) >= 5 and notebook.cells[0].cell_type == "markdown"
    kernel_name = notebook.metadata["kernelspec"]["name"]
    assert notebook.metadata["smoke"] == {"max_epochs": 2}

    session = lab.call("POST", "/api/sessions", {
        "path": SECTION, "type": "notebook", "name": Path(SECTION).name,
        "kernel": {"name": kernel_name}})
    kernel_id, client = session["kernel"]["id"], uuid.uuid4().hex
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?session_id={client}",
        header=[f"Authorization: token {lab.token}"], timeout=300)
    try:
        for number, cell in enumerate(code_cells, 1):
            status, cell.outputs = run_cell(ws, client, cell.source)
            assert status == "ok", f"code cell {number}:\n{text_of(cell.outputs)}"
        status, probe = run_cell(ws, client, "import os, sys\nimport dlbook\n"
                                 "print(sys.prefix); print(dlbook.__file__); print(os.getcwd())")
    finally:
        ws.close()
        lab.call("DELETE", f"/api/sessions/{session['id']}")
    assert status == "ok", text_of(probe)
    prefix, library, cwd = text_of(probe).splitlines()
    assert Path(prefix) == Path(sys.prefix)  # the kernel runs in the book's environment
    assert Path(library).parent == REPO / "dlbook"  # ... with the repository's library
    assert Path(cwd).name == "02-preliminaries"  # ... next to the section, as in the build
    first = next(out for out in code_cells[0].outputs if out["output_type"] == "execute_result")
    assert first["data"]["text/plain"].startswith("tensor(")

    # Saving from JupyterLab keeps the page's source: cells, the build's front-matter keys,
    # no outputs and no version stamps.
    before = jupytext.read(lab.root / SECTION)
    lab.call("PUT", f"/api/contents/{SECTION}",
             {"type": "notebook", "format": "json", "content": notebook})
    saved = (lab.root / SECTION).read_text(encoding="utf-8")
    front = yaml.safe_load(saved.split("---\n")[1])
    assert front["smoke"] == {"max_epochs": 2} and front["kernelspec"]["name"] == "python3"
    assert "jupytext_version" not in saved and first["data"]["text/plain"] not in saved
    after = jupytext.read(lab.root / SECTION)
    assert [c.source for c in after.cells] == [c.source for c in before.cells]

