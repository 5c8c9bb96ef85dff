"""Notebook kernels for the stages: started ahead, so no stage waits for its kernel to boot.

Each stage's notebook still runs in a kernel of its own and stays its own
record; only the start moves: while stage *n* runs, the kernels of the next
stages (``orchestrator.KERNELS_AHEAD``) are already starting. Within
:func:`forked` they are forks of the run's kernel server, which has imported
the project once; otherwise each boots and imports the project itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from traitlets import default

from ecom_pipeline import kernel_server

# What every stage notebook imports first, and then its stage's own module; loaded while the previous
# stage runs. Silent and kept out of the history: the notebook's own cells still count from [1].
WARM_UP = "import pandas, ecom_pipeline.params, ecom_pipeline.stages, ecom_pipeline.db"
KERNEL_ARGUMENTS = [
    # The kernel's own log (a transport notice, shutdown chatter) is noise: a failing cell reaches the
    # run as a Papermill error with its traceback, and is saved in the notebook.
    "--IPKernelApp.log_level=CRITICAL",
    # As nbclient starts its kernels: no history database shared between kernels.
    "--HistoryManager.hist_file=:memory:",
]


def kernel_manager_class() -> type:
    """Kernels that talk over Unix sockets (IPC) on POSIX, not TCP ports.

    With TCP the client picks free ports and the kernel binds them later; another process can take one in
    between, and the kernel's heartbeat thread dies with a traceback ("Address already in use", a known
    jupyter_client race). Socket files live in Jupyter's runtime folder, beside the connection files.
    """
    from jupyter_client import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir

    if os.name != "posix":
        return AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        transport = "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            # A path of its own for each kernel: jupyter_client's default, "kernel-ipc" in the working folder,
            # is shared by kernels started side by side (their sockets would collide).
            os.makedirs(jupyter_runtime_dir(), exist_ok=True)
            return os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4().hex[:12]}-ipc")

    return IpcKernelManager


@dataclass
class Kernel:
    manager: Any  # jupyter_client's AsyncKernelManager
    warm_up: Any  # the client that asked for the imports; open until the stage, or the request could be lost


@functools.cache
def ready_client_class() -> type:
    """The client papermill's nbclient talks to a stage's kernel with: jupyter_client's, ready sooner.

    jupyter_client's client is ready once the kernel has answered a kernel_info request and IOPub has
    delivered a message, and then it reads IOPub until IOPub has been quiet for 0.2 s: 0.2 s of every stage
    spent waiting. This one is ready when the kernel has answered on the shell channel and published its
    idle status for one of these requests on IOPub (so IOPub is connected and has delivered everything the
    requests caused); nbclient reads only the messages of its own requests, so what came before needs no
    draining. Until IOPub is connected (ZeroMQ drops what a subscriber missed) the request is repeated.
    """
    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            asked: set[str] = set()
            while True:
                asked.add(self.kernel_info())
                reply = await self._answer_to(asked, self.shell_channel, "kernel_info_reply", wait_s=1.0)
                if reply is not None and await self._answer_to(asked, self.iopub_channel, "status", wait_s=0.2):
                    self._handle_kernel_info_reply(reply)
                    return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

        async def _answer_to(self, asked: set[str], channel: Any, msg_type: str, wait_s: float) -> Any:
            """The first ``msg_type`` message on ``channel`` answering one of ``asked`` within ``wait_s`` (a
            status only once the kernel is idle again), else None; other messages are passed over."""
            until = time.monotonic() + wait_s
            while True:
                try:
                    msg = await channel.get_msg(timeout=max(0.0, until - time.monotonic()))
                except Empty:
                    return None
                if (
                    msg["msg_type"] == msg_type
                    and msg["parent_header"].get("msg_id") in asked
                    and msg["content"].get("execution_state", "idle") == "idle"
                ):
                    return msg

    return ReadyClient


_server: kernel_server.KernelServer | None = None


@contextlib.contextmanager
def forked(modules: Sequence[str] = kernel_server.PRELOAD_NEXT) -> Iterator[None]:
    """Within: kernels are forks of one server that has imported the project and ``modules``, the code of
    the stages they will run (see :mod:`kernel_server`)."""
    global _server
    if not hasattr(os, "fork"):  # Windows: kernels start the usual way
        yield
        return
    _server = kernel_server.KernelServer(modules)
    import papermill  # noqa: F401  (1.4 s, while the server imports: every stage's notebook needs it)

    try:
        yield
    finally:
        server, _server = _server, None
        server.close()


def start(kernel_name: str, cwd: Path, module: str | None = None, *, warm_up: bool = True) -> Kernel:
    """Start a kernel and, without waiting for it, ask it to import the project (and ``module``, its
    stage's code; a fork of the kernel server has most of it already)."""
    from jupyter_client.utils import run_sync

    manager = kernel_manager_class()(kernel_name=kernel_name)
    manager.client_factory = ready_client_class()
    if _server is not None:
        manager.kernel_id = str(uuid.uuid4())
        manager.provisioner = kernel_server.provisioner_class()(
            kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager
        )
        manager.provisioner.server = _server
    run_sync(manager.start_kernel)(extra_arguments=KERNEL_ARGUMENTS, cwd=str(cwd))
    client = manager.client()
    # The shell channel only: no heartbeat thread, which could still be starting when a run that fails at
    # once (the database does not answer) shuts this kernel down.
    client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    if warm_up:
        imports = WARM_UP + (f", {module}" if module else "")
        client.execute(imports, silent=True, store_history=False)  # queued until the kernel is up
    return Kernel(manager, client)


def shutdown(kernel: Kernel) -> None:
    """Stop a kernel that no stage will use (the run failed or was stopped before its stage)."""
    from jupyter_client.utils import run_sync

    kernel.warm_up.stop_channels()
    if run_sync(kernel.manager.is_alive)():
        run_sync(kernel.manager.shutdown_kernel)(now=True)
    run_sync(kernel.manager.cleanup_resources)()


def measured() -> bool:
    """True when coverage measures this process tree (``pytest --cov``, ``coverage run``)."""
    return bool(os.environ.get("COVERAGE_PROCESS_CONFIG") or os.environ.get("COVERAGE_PROCESS_START"))


def execute_notebook(kernel: Kernel, notebook: Path, output: Path, **papermill_kwargs: Any) -> None:
    """Papermill's execute_notebook on ``kernel`` (from :func:`start`), which it shuts down at the end."""
    import papermill

    kernel.warm_up.stop_channels()
    papermill.execute_notebook(
        str(notebook),
        str(output),
        engine_name=_engine_name(),
        km=kernel.manager,
        # Every cell has finished and every output has arrived by then; the stages
        # close what they open inside their cells and register no exit hooks, so
        # the kernel need not be given time to exit (about 0.35 s a stage). Under
        # coverage it is: the kernel's measurements are saved by an exit hook.
        shutdown_kernel="graceful" if measured() else "immediate",
        **papermill_kwargs,
    )


_ENGINE = "ecom_pipeline"
# Papermill writes the executed notebook as each cell starts and ends, validating it every time: about 140
# writes and a second of the run's process a run, between cells. While a notebook runs, it is written at most
# this often (and still once at the end, as papermill does, whatever happens).
SAVE_EVERY_S = 1.0


def _at_most_every(seconds: float, save: Callable[..., None]) -> Callable[..., None]:
    """``save``, skipped when it last wrote less than ``seconds`` ago."""
    last = [float("-inf")]

    def throttled(**kwargs: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            save(**kwargs)

    return throttled


def _engine_name() -> str:
    """Papermill's nbclient engine, on a kernel started beforehand and shut down by it as if it had started it."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    if _ENGINE in papermill_engines._engines:
        return _ENGINE

    class Client(PapermillNotebookClient):
        def __init__(self, nb_man: Any, km: Any = None, **kw: Any) -> None:
            super().__init__(nb_man, km=km, **kw)
            self.owns_km = True  # so the kernel and its channels are cleaned up after the notebook

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            **kwargs: Any,
        ) -> Any:
            # As NBClientEngine.execute_managed_notebook, with the client above.
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout or kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            save = nb_man.save
            nb_man.save = _at_most_every(SAVE_EVERY_S, save)
            try:
                return Client(nb_man, **final_kwargs).execute()
            finally:
                nb_man.save = save  # the end's save (papermill's notebook_complete) is not held back

    papermill_engines.register(_ENGINE, Engine)
    return _ENGINE
