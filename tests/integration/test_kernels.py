"""Stage kernels forked from the run's kernel server: real kernels, with the run's folder and environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.utils import run_sync

from ecom_pipeline import config, kernel_server, kernels

REPORT = (
    "import json, os, sys; print(json.dumps({'ppid': os.getppid(), 'cwd': os.getcwd(), 'sid': os.getsid(0), "
    "'probe': os.environ.get('KERNEL_PROBE'), 'preloaded': sorted({'pandas', 'ecom_pipeline.db'} & set(sys.modules)), "
    "'max_columns': sys.modules['pandas'].get_option('display.max_columns')}))"
)


def _client(kernel: kernels.Kernel) -> BlockingKernelClient:
    client = kernel.manager.blocking_client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def _ask(kernel: kernels.Kernel, code: str) -> dict:
    """Run ``code`` in the kernel and return the JSON it prints."""
    client = _client(kernel)
    try:
        printed: list[str] = []
        reply = client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.loads("".join(printed))
    finally:
        client.stop_channels()


def _stop(kernel: kernels.Kernel) -> None:
    kernels.shutdown(kernel)


def test_a_kernel_is_a_fork_of_the_server_with_the_run_s_folder_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNEL_PROBE", "set after the server started")
    with kernels.forked():
        server = kernels._server
        assert server is not None
        monkeypatch.setenv("KERNEL_PROBE", "as the run has it now")
        kernel = kernels.start("python3", tmp_path, warm_up=False)
        try:
            seen = _ask(kernel, REPORT)
        finally:
            _stop(kernel)
        assert seen["ppid"] == server.process.pid  # forked by the server, not started by this process
        assert seen["preloaded"] == ["ecom_pipeline.db", "pandas"]  # imported by the server, not by this kernel
        assert seen["cwd"] == str(tmp_path)
        assert seen["probe"] == "as the run has it now"  # the environment of the launch, not the server's
        assert seen["sid"] != os.getsid(0)  # a session of its own, as jupyter_client starts kernels
        assert seen["max_columns"] == 20  # pandas shows frames as in any kernel, not as in the server's terminal
        server_process = server.process
    assert server_process.poll() == 0  # the server ends with the run's kernels


def _waiting_for_requests(server: psutil.Process, timeout: float = 90) -> None:
    """Return once the server has loaded what it preloads: asleep (reading its input) and using no CPU."""
    deadline, before = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        used = sum(server.cpu_times()[:2])
        if used == before and server.status() == psutil.STATUS_SLEEPING:
            return
        before = used
        time.sleep(0.5)
    raise AssertionError("the kernel server was still busy")


LOADED = (
    "import json, sys; print(json.dumps({m: m in sys.modules for m in "
    "('ecom_pipeline.stages.quality', 'ecom_pipeline.stages.analytics', 'statsmodels')}))"
)


@pytest.mark.parametrize(
    ("modules", "loaded"),
    [
        (["ecom_pipeline.stages.quality"], {"ecom_pipeline.stages.quality"}),
        (kernel_server.PRELOAD_NEXT, {"ecom_pipeline.stages.quality", "ecom_pipeline.stages.analytics", "statsmodels"}),
    ],
    ids=["quality only", "every stage"],
)
def test_the_server_preloads_the_code_of_the_run_s_stages_only(tmp_path, modules, loaded):
    """A run of some stages (``--only``, ``--from``, ``--resume``) does not import the others' libraries."""
    with kernels.forked(modules):
        server = kernels._server
        assert server is not None
        _waiting_for_requests(psutil.Process(server.process.pid))
        kernel = kernels.start("python3", tmp_path, warm_up=False)
        try:
            seen = _ask(kernel, LOADED)
        finally:
            _stop(kernel)
    assert {module for module, present in seen.items() if present} == loaded


def test_a_kernel_interrupted_stops_its_cell_and_keeps_running():
    with kernels.forked():
        kernel = kernels.start("python3", config.NOTEBOOKS_DIR)
        try:
            client = _client(kernel)
            msg_id = client.execute("import time; time.sleep(60)")
            time.sleep(0.5)
            run_sync(kernel.manager.interrupt_kernel)()
            reply = client.get_shell_msg(timeout=30)
            while reply["parent_header"]["msg_id"] != msg_id:  # replies to the readiness probe come first
                reply = client.get_shell_msg(timeout=30)
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            assert run_sync(kernel.manager.is_alive)()
            client.stop_channels()
        finally:
            _stop(kernel)
        assert not run_sync(kernel.manager.is_alive)()


def test_nbclient_s_client_is_ready_once_the_kernel_has_answered_while_it_was_busy():
    """The stage's client asks while the kernel still runs what it was given before (the warm-up imports):
    it asks again until the kernel answers on both channels, then sees only its own requests' output."""
    with kernels.forked():
        kernel = kernels.start("python3", config.NOTEBOOKS_DIR, warm_up=False)
        try:
            kernel.warm_up.execute("import time; time.sleep(2); print('from before')")
            time.sleep(0.5)  # delivered; then closed, as before a stage (the clients share one shell identity)
            kernel.warm_up.stop_channels()
            client = kernel.manager.client()
            assert type(client) is kernels.ready_client_class()  # what nbclient gets from km.client()
            client.start_channels()
            try:
                run_sync(client.wait_for_ready)(timeout=60)
                printed: list[str] = []
                reply = run_sync(client.execute_interactive)(
                    "print('after')", timeout=60, output_hook=lambda m: printed.append(m["content"].get("text", ""))
                )
            finally:
                client.stop_channels()
            assert reply["content"]["status"] == "ok"
            assert "".join(printed) == "after\n"
        finally:
            _stop(kernel)


def test_kernels_stop_when_the_server_dies():
    """The run killed: its server gets end of input or dies, and each kernel, its parent gone, stops itself."""
    with kernels.forked():
        server = kernels._server
        assert server is not None
        kernel = kernels.start("python3", config.NOTEBOOKS_DIR)
        try:
            pid = _ask(kernel, "import json, os; print(json.dumps({'pid': os.getpid()}))")["pid"]
            process = psutil.Process(pid)  # before the kill: the system may end the kernel at once
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            _, alive = psutil.wait_procs([process], timeout=15)  # reaped: jupyter_client asks for the pid
            assert not alive
            assert not run_sync(kernel.manager.is_alive)()
        finally:
            _stop(kernel)
        # A kernel asked for once the server is gone is started the usual way.
        fallback = kernels.start("python3", config.NOTEBOOKS_DIR)
        try:
            assert _ask(fallback, REPORT)["ppid"] == os.getpid()
        finally:
            _stop(fallback)


# Under a subreaper (a container's init, a service manager), an orphan's new parent is not process 1, so
# ipykernel's poller, started once the kernel has started, would watch the subreaper and never stop the kernel.
ORPHANED_IN_ITS_FIRST_MOMENT = """
import ctypes, json, os, signal, sys, time
from ecom_pipeline.kernel_server import KernelServer
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of this process's children become its own
server = KernelServer()
kernel = server.fork([sys.executable, "-m", "ipykernel_launcher", "-f", sys.argv[1]], os.getcwd(), dict(os.environ))
pid = kernel.pid  # the server answers with the pid at once after the fork, before the kernel has started
server.process.send_signal(signal.SIGKILL)
server.process.wait()
def running(pid):
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)  # ended and reaped here, if it became this process's
    except ChildProcessError:  # killed as the server died, before it could become this process's child:
        return os.path.exists(f"/proc/{pid}")  # the server (ignoring SIGCHLD) left nothing to reap
deadline = time.monotonic() + 15
while running(pid) and time.monotonic() < deadline:
    time.sleep(0.05)
stopped = time.monotonic() < deadline
if not stopped:
    os.kill(pid, signal.SIGKILL)
print(json.dumps({"stopped": stopped}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers and parent-death signals are Linux's")
def test_a_kernel_orphaned_as_it_starts_stops_under_a_subreaper(tmp_path):
    """The run killed while a kernel is being forked (the moment a stage starts, a kernel is started ahead)."""
    done = subprocess.run(
        [sys.executable, "-c", ORPHANED_IN_ITS_FIRST_MOMENT, str(tmp_path / "kernel.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {"stopped": True}


# The run (a child of this subreaper) starts its server and is killed; the server, orphaned, becomes this process's
# child, so its end can be read: killed by the system with the run, or ended by itself on finding the run gone.
SERVER_OF_A_KILLED_RUN = """
import ctypes, json, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
run = subprocess.Popen([sys.executable, "-c", "from ecom_pipeline.kernel_server import KernelServer; "
                        "print(KernelServer().process.pid, flush=True); import time; time.sleep(600)"],
                       stdout=subprocess.PIPE, text=True)
server = int(run.stdout.readline())
run.kill()
run.wait()
signal.alarm(60)
_, status = os.waitpid(server, 0)
print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers and parent-death signals are Linux's")
def test_the_server_of_a_killed_run_ends_with_it_not_after_its_imports():
    """A server whose run was killed used to import for seconds more before it read the end of its input."""
    done = subprocess.run(
        [sys.executable, "-c", SERVER_OF_A_KILLED_RUN], capture_output=True, text=True, timeout=120, check=True
    )
    ended = json.loads(done.stdout.splitlines()[-1])
    # Killed with the run, or (killed before it could ask for that) ended at once on finding it gone.
    assert ended in ({"signal": signal.SIGKILL, "exit": None}, {"signal": None, "exit": 1}), ended


# In the kernel: ipykernel's check that the IOPub thread still runs, then a pause (a busy machine), then the send,
# for the control thread alone, which answers the shutdown request while the kernel's main thread exits.
SLOW_CONTROL_THREAD = """
import threading, time
from ipykernel import iostream

def schedule(self, f):
    if threading.current_thread().name == "Control" and self.thread.is_alive():
        time.sleep(0.5)
        self._events.append(f)
        self._event_pipe.send(b"")
    else:
        f()

iostream.IOPubThread.schedule = schedule
"""


def test_a_kernel_shut_down_while_its_control_thread_lags_ends_without_a_traceback(capfd):
    """ipykernel's exit closes IOPub before its control thread has answered the shutdown request; a kernel
    printed "ZMQError: Socket operation on non-socket" into a run's log when that thread was slow."""
    with kernels.forked():
        kernel = kernels.start("python3", config.NOTEBOOKS_DIR, warm_up=False)
        try:
            client = _client(kernel)
            assert client.execute_interactive(SLOW_CONTROL_THREAD, timeout=60)["content"]["status"] == "ok"
            client.stop_channels()
            run_sync(kernel.manager.shutdown_kernel)(now=False)
            assert not run_sync(kernel.manager.is_alive)()
        finally:
            _stop(kernel)
    printed = capfd.readouterr().err
    assert "Traceback" not in printed and "ZMQError" not in printed, printed


@pytest.mark.parametrize(
    "cmd, served",
    [
        ([sys.executable, "-m", "ipykernel_launcher", "-f", "k.json"], True),
        (["/opt/other/python", "-m", "ipykernel_launcher", "-f", "k.json"], False),  # another interpreter
        ([sys.executable, "-m", "other_kernel", "-f", "k.json"], False),
        ([sys.executable], False),
    ],
)
def test_only_an_ipython_kernel_on_this_interpreter_is_forked(cmd, served):
    assert kernel_server.serves(cmd) is served


def test_the_executed_notebook_is_written_at_most_so_often_while_it_runs():
    written = []
    save = kernels._at_most_every(0.2, lambda **kw: written.append(kw))
    for _ in range(5):
        save()  # a cell starting and ending: only the first is written
    time.sleep(0.25)
    save(note="later")
    assert written == [{}, {"note": "later"}]
