"""Kernels forked from :mod:`tools.execution.forkserver`, behind jupyter_client's own interfaces.

nbclient starts a kernel through a kernel manager, and the manager through its
*provisioner* (jupyter_client's extension point for where and how a kernel process
runs). :class:`ForkKernelManager` is the ``AsyncKernelManager`` that nbclient is given; it
uses :class:`ForkProvisioner`, a ``LocalProvisioner`` whose ``launch_kernel`` asks the fork
server for the kernel instead of starting a new Python. Everything else (ports,
connection file, interrupts, shutdown, restarts) is the local provisioner's own code, run
against :class:`ForkedProcess`, which answers the ``Popen`` calls it makes for a process
that is not our child. When the server cannot fork this kernel, or cannot be reached, the
provisioner starts it the ordinary way and says why in the log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import CaselessStrEnum, DottedObjectName, Type, Unicode

CONNECT_TIMEOUT = 120.0  # seconds to wait for the server (it may still be importing)


class ForkUnavailable(Exception):
    """The fork server did not give us a kernel (the reason is the message)."""


def request_kernel(server: Path, argv: list[str], env: dict, cwd: str,
                   timeout: float = CONNECT_TIMEOUT) -> int:
    """Ask the fork server at ``server`` for a kernel; return its process id."""
    payload = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}).encode()
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        while True:
            try:
                connection.connect(str(server))
                break
            except (FileNotFoundError, ConnectionRefusedError) as error:
                if time.monotonic() > deadline:
                    raise ForkUnavailable(f"no fork server at {server}: {error}") from error
                time.sleep(0.05)
        connection.settimeout(max(1.0, deadline - time.monotonic()))
        # The kernel's standard streams: no input (the runner's stdin carries requests),
        # output and errors where the runner's go.
        stdin = os.open(os.devnull, os.O_RDONLY)
        try:
            socket.send_fds(connection, [payload], [stdin, 1, 2])
        finally:
            os.close(stdin)
        reply = b""
        try:
            while not reply.endswith(b"\n"):
                chunk = connection.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError as error:
            raise ForkUnavailable(f"the fork server did not answer: {error}") from error
    try:
        answer = json.loads(reply)
    except ValueError as error:
        raise ForkUnavailable(f"the fork server closed the connection ({reply!r})") from error
    if "pid" not in answer:
        raise ForkUnavailable(answer.get("error", "no pid in the answer"))
    return int(answer["pid"])


class ForkedProcess:
    """The parts of ``subprocess.Popen`` that ``LocalProvisioner`` uses, for a kernel that
    the fork server (not this process) started. The server lets the system reap it, so
    the process is gone exactly when signalling it fails; its exit status is not known
    here and reads as 0 (nbclient learns of a crash from the kernel's heartbeat)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
            except PermissionError:  # the pid was reused by another user's process
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"kernel {self.pid} still running")
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkProvisioner(LocalProvisioner):
    """A local provisioner whose kernels are forked by the server at ``server``."""

    server = Unicode("", config=True, help="Unix socket of the fork server")
    fallback_reason: str | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs) -> KernelConnectionInfo:
        env = kwargs.get("env") or dict(os.environ)
        cwd = kwargs.get("cwd") or os.getcwd()
        try:
            pid = request_kernel(Path(self.server), list(cmd), dict(env), cwd)
        except (ForkUnavailable, OSError) as error:
            self.fallback_reason = str(error)
            print(f"[dlbook] fork server: {error}; starting the kernel the usual way",
                  file=sys.stderr, flush=True)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(pid)
        self.pid = self.pgid = pid  # the kernel leads its own process group
        self.cwd = cwd
        return self.connection_info


class ForkKernelClient(AsyncKernelClient):
    """jupyter_client's asynchronous client, ready sooner. Its ``wait_for_ready`` ends by
    reading IOPub until 0.2 s pass without a message, a fixed 0.2 s for every kernel.
    Here, once the kernel has answered ``kernel_info`` and IOPub has delivered a message
    (so it is connected), the messages already waiting are dropped and no more are awaited:
    nbclient matches every output to the request that caused it, so a late start-up
    message is ignored anyway."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.01)
            except Empty:
                return

    wait_for_ready = _async_wait_for_ready  # the name nbclient calls, as in the base class


class ForkKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` that provisions with :class:`ForkProvisioner` (the
    server's socket comes from ``fork_server``) and gives nbclient a
    :class:`ForkKernelClient`."""

    fork_server = Unicode("", config=True, help="Unix socket of the fork server")
    client_class = DottedObjectName("tools.execution.forked.ForkKernelClient")
    client_factory = Type(klass=AsyncKernelClient, default_value=ForkKernelClient)
    # Unix sockets, not TCP ports: a port chosen free can be taken before the kernel binds
    # it (by the kernel of another slot, or by a page's own distributed workers).
    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None and self.fork_server:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            if self.transport == "ipc":  # sockets under the temporary folder
                self.ip = str(Path(tempfile.gettempdir()) / f"dlbook-kernel-{self.kernel_id}")
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id,
                                               kernel_spec=self.kernel_spec, parent=self,
                                               server=self.fork_server)
        return await super()._async_pre_start_kernel(**kw)


def manager_class(server: Path) -> type[ForkKernelManager]:
    """A :class:`ForkKernelManager` class bound to ``server``, for nbclient's
    ``kernel_manager_class``."""
    return type("BookForkKernelManager", (ForkKernelManager,),
                {"fork_server": Unicode(str(server))})
