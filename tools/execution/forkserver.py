"""A parent process that imports the heavy modules once and forks a fresh kernel per notebook.

``python -m tools.execution.forkserver SOCKET`` listens on the Unix socket ``SOCKET``, then
imports what every book kernel imports (:data:`PRELOAD`: torch, NumPy, pandas, matplotlib
and IPython's kernel machinery, never ``dlbook``, which each build regenerates). A
:mod:`tools.execution.forked` client sends one request per kernel: the kernel command
that jupyter_client built (``python -m ipykernel_launcher -f CONNECTION_FILE``), its
environment and working folder, and, as ancillary data, its standard input, output and
error. The server forks; the child becomes that kernel and the server answers with its
process id.

Isolation is the same as with a kernel started from scratch: one process per notebook,
in its own session (process group), with exactly the requested environment, folder,
``sys.path`` and signal handlers; the kernel's start-up lines seed every generator
afterwards, and the smoke profile's reductions are installed in the child from its own
``DLBOOK_SMOKE``. Nothing runs in the server that a notebook could change: the server
never executes notebook code and never starts torch's thread pools or CUDA (it refuses
to fork once CUDA is initialised, and then every client falls back to a plain start).

The server ignores ``SIGCHLD`` so the kernels it forks are reaped by the system, and the
child restores the default handler before anything else, so a notebook's own
subprocesses report their exit status as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
from pathlib import Path

# What a book kernel imports before its first cell (the kernel's debugger support
# included), and what almost every page imports. Not the inline back end: importing it
# hooks matplotlib into the IPython shell that imports it, which only the kernel has.
PRELOAD = (
    "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.utils.data", "pandas",
    "matplotlib", "matplotlib.pyplot", "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_svg", "matplotlib.backends.backend_pdf", "IPython",
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
)
LAUNCHER = ["-m", "ipykernel_launcher"]  # the kernel command this server can fork
MAX_REQUEST = 1 << 20  # bytes of one JSON request
STANDARD_FDS = 3  # stdin, stdout and stderr arrive with each request


def preload(names=PRELOAD) -> list[str]:
    """Import ``names``; return those that failed (a kernel imports them itself then)."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (a missing optional module is not fatal)
            failed.append(name)
    return failed


def forkable(argv: list[str]) -> str | None:
    """Why a kernel command cannot be forked from here (None: it can)."""
    if len(argv) < 3 or argv[1:3] != LAUNCHER:
        return f"not an ipykernel command: {argv[:3]}"
    if Path(argv[0]).resolve() != Path(sys.executable).resolve():
        return f"another Python: {argv[0]}"
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        return "CUDA is initialised in the fork server"
    threads = _threads()
    if threads > 1:
        return f"the fork server runs {threads} threads; forking it is unsafe"
    return None


def _threads() -> int:
    """Threads of this process (a library's thread pool would make forking unsafe)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def become_kernel(request: dict, fds: list[int]) -> None:
    """In the forked child: take the request's streams, environment, folder and signal
    handlers, then run the kernel; never returns."""
    code = 1
    try:
        os.setsid()  # its own process group, as jupyter_client starts kernels
        for target, fd in enumerate(fds[:STANDARD_FDS]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            sys.modules["torch"].set_num_threads(int(threads))
        _install_smoke()
        # Read from the environment when ipykernel was imported (in the server, without
        # it): the kernel's parent, as jupyter_client tells every kernel it starts.
        from ipykernel import kernelapp

        kernelapp.IPKernelApp.parent_handle.default_value = int(
            os.environ.get("JPY_PARENT_PID") or 0)
        # As `python -m ipykernel_launcher` starts: without the folder `-m` put first
        # (the kernel adds '' itself); the rest came from the same PYTHONPATH.
        if sys.path and sys.path[0] == _STARTED["path0"]:
            del sys.path[0]
        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin,
                    *request["argv"][3:]]
        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001  (report it on the kernel's stderr, then exit)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_STARTED = {"path0": None}  # sys.path[0] as `python -m` set it for the server


def _install_smoke() -> None:
    """Apply the child's own smoke reductions, as the kernel's sitecustomize would have."""
    site = sys.modules.get("sitecustomize")
    install = getattr(site, "install_smoke", None)
    if install is not None:
        install()


def serve(path: Path) -> None:
    """Accept requests on ``path`` until terminated; fork a kernel for each."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)  # clients may connect while the modules are still loading
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked kernels are reaped for us
    while True:
        connection, _ = listener.accept()
        with connection:
            try:
                message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, STANDARD_FDS)
                request = json.loads(message)
            except (OSError, ValueError) as error:
                _answer(connection, {"error": f"bad request: {error}"})
                continue
            reason = forkable(request.get("argv", []))
            if reason is not None:
                _answer(connection, {"error": reason})
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                connection.close()
                become_kernel(request, fds)
            for fd in fds:
                os.close(fd)
            _answer(connection, {"pid": pid})


def _answer(connection: socket.socket, reply: dict) -> None:
    try:
        connection.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:
        pass  # the client gave up; a forked kernel is then shut down by its heartbeat


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides when this stops
    _STARTED["path0"] = sys.path[0] if sys.path else None
    serve(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
