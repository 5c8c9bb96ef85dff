"""One process per run that imports the project once and forks each stage's kernel from itself.

Most of a kernel's start is importing: IPython's kernel, pandas, numpy, pyarrow, psycopg, pydantic,
plotly and the project, about 2 s of CPU a kernel and seven kernels a run. The kernel server imports them
once, at the start of a run; each stage's kernel is then a fork of it that starts IPython's kernel
with those modules already loaded. It is still a process of its own, in a session of its own, started
with the command, folder and environment jupyter_client gives it, and it still ends when its parent
does: the server ends when the run closes the server's input or dies (at once on Linux: the system's
parent-death signal), and a kernel whose parent is gone is killed by the system too or, elsewhere, stops
itself within a second (ipykernel's parent poller).

``python -m ecom_pipeline.kernel_server`` reads one request a line on its standard input (JSON:
``argv``, ``cwd``, ``env``) and answers each with the new kernel's pid on its standard output.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ecom_pipeline.stages import STAGES

# What the stages' kernels import, loaded once. Nothing here may start a Python thread or open a connection
# at import: a fork copies only the thread that forks (OpenBLAS, which numpy loads, starts its own threads
# again in the fork). The first stage's kernel is forked as soon as what it needs is loaded; the modules of
# the run's stages (all of them unless the server is told which) are loaded while it runs: a run of some
# stages only does not import the others' libraries (statsmodels for analytics alone is a second of CPU).
PRELOAD_FIRST = ("ipykernel.kernelapp", "ipykernel.ipkernel", "pandas", "ecom_pipeline.params", "ecom_pipeline.db")
PRELOAD_NEXT = tuple(stage.module for stage in STAGES)
LAUNCHER = ["-m", "ipykernel_launcher"]  # the kernel command this server can stand in for, after the interpreter
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def serves(cmd: list[str]) -> bool:
    """True when ``cmd`` starts an IPython kernel on this interpreter: what a fork of the server is."""
    return len(cmd) > 2 and cmd[0] == sys.executable and cmd[1:3] == LAUNCHER


class KernelServer:
    """The run's side of the server: start it, ask it for kernels, close it."""

    def __init__(self, modules: Sequence[str] = PRELOAD_NEXT) -> None:
        """A server for kernels that will run the code of ``modules`` (the run's stages' modules)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ecom_pipeline.kernel_server", str(os.getpid()), *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        self._asked = 0  # requests written, answered in the same order
        self._pids: list[int] = []  # the answers read so far

    def fork(self, cmd: list[str], cwd: str | Path, env: dict[str, str]) -> ForkedKernel:
        """A new kernel running ``cmd`` (see :func:`serves`). Returns at once: the server answers with its pid
        once it has imported, which the kernel's first use waits for."""
        request = json.dumps({"argv": cmd, "cwd": str(cwd), "env": env})
        with self._lock:
            assert self.process.stdin
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
            self._asked += 1
            return ForkedKernel(self, self._asked - 1)

    def running(self) -> bool:
        return self.process.poll() is None

    def pid(self, ticket: int) -> int:
        """The pid of the ``ticket``-th kernel asked for, reading the server's answers up to it."""
        with self._lock:
            assert self.process.stdout
            while len(self._pids) <= ticket:
                answer = self.process.stdout.readline()
                if not answer:
                    raise RuntimeError(f"the kernel server ended (exit code {self.process.poll()})")
                self._pids.append(int(answer))
            return self._pids[ticket]

    def close(self) -> None:
        """End the server (kernels already forked keep running until they are shut down)."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


class ForkedKernel:
    """What jupyter_client's provisioner needs of a ``Popen`` for a kernel that is the server's child, not ours."""

    stdin = stdout = stderr = None

    def __init__(self, server: KernelServer, ticket: int) -> None:
        self.server, self.ticket = server, ticket
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.server.pid(self.ticket)

    def poll(self) -> int | None:
        # The server ignores SIGCHLD, so an ended kernel is reaped at once and its pid no longer exists.
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0  # the server's child: its exit status is not ours to read
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        # As Popen.send_signal: nothing to signal once the kernel has ended.
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def provisioner_class() -> type:
    """jupyter_client's local provisioner, launching through the run's kernel server where it can."""
    from jupyter_client.provisioning import LocalProvisioner

    class ForkingProvisioner(LocalProvisioner):
        server: KernelServer | None = None

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            if self.server is None or not self.server.running() or not serves(cmd):
                return await super().launch_kernel(cmd, **kwargs)
            self.process = self.server.fork(
                cmd, kwargs.get("cwd") or os.getcwd(), kwargs.get("env") or dict(os.environ)
            )
            self.cwd = kwargs.get("cwd", Path.cwd())
            return self.connection_info

        async def send_signal(self, signum: int) -> None:
            if not isinstance(self.process, ForkedKernel):
                return await super().send_signal(signum)
            try:
                os.killpg(self.process.pid, signum)  # its session's group, as jupyter_client signals kernels
            except OSError:  # no group yet (the fork has not made its session) or the kernel has ended
                self.process.send_signal(signum)

    return ForkingProvisioner


def warm() -> None:
    """Load what the stages' first figure and first holiday calendar would load lazily, in every kernel again:
    plotly's validators (a 10 MB JSON file), its trace classes and the reports' template, the calendar's country."""
    import holidays
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ecom_pipeline.params import WarehouseParams

    figure = make_subplots(rows=1, cols=2, specs=[[{"secondary_y": True}, {"type": "domain"}]])
    figure.add_trace(go.Bar(x=["a"], y=[1], name="bar", marker_color="#333", hovertemplate="%{y}"), 1, 1)
    figure.add_trace(go.Scatter(x=["a"], y=[1], mode="lines+markers", line={"dash": "dot"}), 1, 1, secondary_y=True)
    figure.add_trace(go.Pie(labels=["a"], values=[1], hole=0.5), 1, 2)
    figure.add_trace(go.Heatmap(z=[[1]], colorscale="Blues"))
    figure.update_layout(template="plotly_white", title="warm", legend={"orientation": "h"}, margin={"t": 40})
    figure.to_html(include_plotlyjs=False, full_html=False)
    holidays.country_holidays(WarehouseParams().holiday_country, years=2025)


def serve(run: int | None = None, modules: Sequence[str] = PRELOAD_NEXT) -> None:
    """The server's loop: import (``modules`` after :data:`PRELOAD_FIRST`), then fork a kernel for each request
    until the input ends (or ``run``, the process that started the server, ends)."""
    if run is not None:
        _end_with(run)  # a killed run takes its server with it at once, and the server its kernels
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; the server ends with its input
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ended kernels are reaped by the system
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what anything prints goes to the run's stderr, never into the answers
    requests = _Requests(sys.stdin.fileno())
    server = os.getpid()

    def fork(request: dict[str, Any]) -> None:
        pid = os.fork()
        if pid == 0:
            _end_with(server)
            answers.close()  # the run must see the end of the answers when the server ends, kernels or not
            _run_kernel(request, server)  # raises SystemExit when the kernel ends
        answers.write(f"{pid}\n")
        answers.flush()

    for name in PRELOAD_FIRST:
        importlib.import_module(name)
    for step in [*(functools.partial(importlib.import_module, name) for name in modules), warm]:
        for request in requests.pending():  # a kernel asked for meanwhile does not wait for the rest
            fork(request)
        if requests.ended:
            break  # the run has ended: no kernel will be asked for again
        step()
    for request in requests:
        fork(request)
    answers.close()
    os._exit(0)  # nothing left to write; the interpreter's own exit would take half a second of teardown


class _Requests:
    """The requests on the server's input, one JSON object a line, read without Python's buffering so that
    :meth:`pending` can ask the descriptor whether more have arrived."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.ended = fd, b"", False

    def pending(self) -> Iterator[dict[str, Any]]:
        """The requests sent so far, without waiting for more."""
        while not self.ended and select.select([self.fd], [], [], 0)[0]:
            self._read()
        yield from self._lines()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every request until the input ends."""
        while True:
            yield from self._lines()
            if self.ended:
                return
            self._read()

    def _read(self) -> None:
        chunk = os.read(self.fd, 1 << 16)
        self.ended = not chunk
        self.buffer += chunk

    def _lines(self) -> Iterator[dict[str, Any]]:
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            yield json.loads(line)


def _end_with(parent: int) -> None:
    """Make sure this process ends when ``parent`` does, even if it already has: a kernel with the server, and
    the server with the run (the thread of the run that started it, as Linux counts parents).

    ipykernel's parent poller starts only once the kernel has started, a second or more after the fork, and
    if the parent is gone by then it waits for the kernel's parent to become process 1, which under a
    subreaper (a container's init, a service manager) never happens; the server itself would go on importing
    for seconds before it read the end of its input. On Linux the system kills the process the moment its
    parent ends; one whose parent ended before that was asked for ends itself at once.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _run_kernel(request: dict[str, Any], parent: int) -> None:
    """In the fork: become the kernel ``request`` asks for, as ``python -m ipykernel_launcher ARGS`` would."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # The server's requests are not the kernel's to read (its output already goes to the run's stderr).
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # Where there is no parent-death signal, ipykernel's poller stops the kernel once the server is gone. It reads
    # JPY_PARENT_PID when it is imported (in the server, before any kernel was asked for), so the parent is given
    # as an argument too.
    os.environ["JPY_PARENT_PID"] = str(parent)
    sys.argv = ["ipykernel_launcher", *request["argv"][len(LAUNCHER) + 1 :], f"--IPKernelApp.parent_handle={parent}"]
    # pandas chose its display for a terminal when the server imported it (as many columns as the terminal is
    # wide); in a kernel it shows 20, and the executed notebooks must read as they would from any kernel.
    sys.modules["pandas"].set_option("display.max_columns", 20)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    # The kernel has stopped. ipykernel's exit closes IOPub before it ends its control and shell channel
    # threads, and the control thread may still be answering the shutdown request: its last flush then fails
    # on a closed socket and prints a ZMQError traceback into the run's log. Let those threads end first.
    app = kernelapp.IPKernelApp.instance()
    for thread in (getattr(app, "control_thread", None), getattr(app, "shell_channel_thread", None)):
        if thread is not None and thread.is_alive():
            thread.stop()
            thread.join(timeout=10)
    raise SystemExit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else None, sys.argv[2:] or PRELOAD_NEXT)
