"""`gate serve`: the API and dashboard; with --worker a local worker beside it, with --demo a first run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
import uvicorn

from gate import migrate
from gate.auth import tokens
from gate.cli.admin import fail
from gate.db import make_engine, make_session_factory, transaction
from gate.settings import get_settings
from gate.worker.process import parent_death_signal

if TYPE_CHECKING:
    from fastapi import FastAPI

# uvicorn's logging, and gate's own messages (the leader, the reaper, deliveries) beside its, in every process
LOGGING = {
    **uvicorn.config.LOGGING_CONFIG,
    "loggers": {**uvicorn.config.LOGGING_CONFIG["loggers"], "gate": {"handlers": ["default"], "level": "INFO"}},
}
SUPERVISOR_PID = "GATE_SUPERVISOR_PID"
WORKER_STOP_S = 15.0  # the worker's own cancel grace (10 s) plus its hand-back

DEMO_BANNER = """
================================================================================
 DEMO: the model is a tiny, RANDOMLY INITIALISED Qwen3 built on this machine.
 Its answers are noise. The run is a smoke run (limit 8), so its verdict is
 "not comparable" by design: it shows the flow, not a real score.
================================================================================"""


def _local_tokens() -> tuple[str, str]:
    """(worker token, admin token) for this machine's own worker and user, recreated at each start."""
    settings = get_settings()
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_s)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine), write=True) as session:
        worker = tokens.replace(session, "local-worker", ["worker"])
        admin = tokens.replace(session, "local-admin", ["admin"])
    engine.dispose()
    return worker, admin


def _wait_healthy(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gate did not answer on {url}")


def _start_worker(url: str, token: str, local_data: list[str], work_dir: Path) -> subprocess.Popen[bytes]:
    """The local worker: its token in the environment (argv is visible to every user in `ps`), its own session
    (a terminal's Ctrl+C reaches the server only, which then drains the worker once), and SIGTERM when its starting
    thread dies, so it drains even when the server is killed."""
    argv = [sys.executable, "-m", "gate.cli", "worker", "--server", url, "--backend", "hf", "--name", "local"]
    argv += ["--work-dir", str(work_dir), "--heartbeat-s", "5"]
    for item in local_data:
        argv += ["--local-data", item]
    return subprocess.Popen(
        argv,
        env={**os.environ, "GATE_TOKEN": token, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )


def _queue_demo(url: str, admin_token: str, work_dir: Path, local_data: list[str]) -> None:
    from gate.worker.tiny_model import build

    gsm8k = next((Path(item.split("=", 1)[1]) for item in local_data if item.startswith("gsm8k=")), None)
    model_dir = build(work_dir / "demo-model", gsm8k)
    body = {
        "model": str(model_dir),
        "backend": "hf",
        "tasks": ["gsm8k"],
        "baseline": "qwen3-4b-thinking-2507",
        "options": {
            "limit": 8,
            "num_fewshot": 5,
            "batch_size": 8,
            "gen_kwargs": {"max_gen_toks": 64},
            "model_args": {"dtype": "float32"},
        },
    }
    headers = {"Authorization": f"Bearer {admin_token}"}
    response = httpx.post(f"{url}/api/v1/runs", json=body, headers=headers)
    response.raise_for_status()
    # then a qualification of the same model (the hf worker has no server for the serving check): the report page
    qualification = {
        "model": str(model_dir),
        "backend": "hf",
        "baseline": "qwen3-4b-thinking-2507",
        "checks": ["accuracy", "alignment", "smoke"],
        "dtype": "float32",
        "accuracy": body["options"],
        "smoke": {"sampling": {"max_tokens": 64}},
    }
    qualified = httpx.post(f"{url}/api/v1/qualifications", json=qualification, headers=headers)
    qualified.raise_for_status()
    typer.echo(
        f"{DEMO_BANNER}\n demo run {response.json()['id']} queued: {url}/runs/{response.json()['id']}\n"
        f" demo qualification {qualified.json()['id']} queued: {url}{qualified.json()['report_url']}\n",
        err=True,
    )


class _Server(uvicorn.Server):
    """uvicorn that drains the local worker before it stops serving, and exits 0 on SIGINT and SIGTERM (uvicorn
    re-raises the signal after shutting down, which turns a requested stop into a traceback or exit code 143)."""

    def __init__(self, config: uvicorn.Config, before_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_exit = before_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.before_exit()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handlers = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


class _Processes:
    """uvicorn's supervisor of several API processes on one socket (it restarts one that dies); SIGINT and SIGTERM
    drain the local worker first, as with one process."""

    def __init__(self, config: uvicorn.Config, before_exit: Callable[[], None]) -> None:
        self.config, self.before_exit = config, before_exit
        self.should_exit = False  # set by the local worker's thread when the worker ends on its own

    def run(self) -> None:
        from uvicorn.supervisors import Multiprocess

        stopping = self

        class Supervisor(Multiprocess):
            def handle_int(self) -> None:
                stopping.before_exit()
                super().handle_int()

            def handle_term(self) -> None:
                stopping.before_exit()
                super().handle_term()

            def keep_subprocess_alive(self) -> None:
                if stopping.should_exit:
                    self.should_exit.set()
                super().keep_subprocess_alive()

        Supervisor(self.config, sockets=[self.config.bind_socket()]).run()


def api_process() -> FastAPI:
    """The app of each API process under --workers N: it ends with its supervisor, kill -9 included, instead of
    serving on as an orphan."""
    parent_death_signal(signal.SIGTERM)()
    if str(os.getppid()) != os.environ.get(SUPERVISOR_PID):  # the supervisor died before the signal was armed
        raise SystemExit(1)
    from gate.app import create_app

    return create_app()


def _migrate() -> None:
    settings = get_settings()
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_s)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


class _LocalWorker:
    """The side-car worker of `gate serve --worker`: started once the API answers, drained on stop; if it ends on
    its own (a bad --local-data, a crash), the server stops too rather than queue runs nobody will take."""

    def __init__(self, url: str, token: str, local_data: list[str], work_dir: Path) -> None:
        self.url, self.token, self.local_data, self.work_dir = url, token, local_data, work_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.failed = False

    def run(self, server: uvicorn.Server | _Processes, then: Callable[[], None] | None) -> None:
        """In a thread that lives as long as the worker (its parent-death signal is bound to this thread)."""
        _wait_healthy(self.url)
        if self.stopping.is_set():
            return
        self.process = _start_worker(self.url, self.token, self.local_data, self.work_dir)
        if then is not None:
            then()
        code = self.process.wait()
        if not self.stopping.is_set():
            typer.echo(f"error: the local worker stopped (exit {code}); stopping gate", err=True)
            self.failed = True
            server.should_exit = True

    def stop(self) -> None:
        self.stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="also start a local worker (hf backend, CPU or GPU)")] = False,
    demo: Annotated[bool, typer.Option(help="queue a smoke run of a tiny random model (implies --worker)")] = False,
    local_data: Annotated[
        list[str] | None,
        typer.Option(help="TASK=DIR for the local worker, e.g. gsm8k=../shared/data/gsm8k", metavar="LOCAL_DATA"),
    ] = None,
    work_dir: Annotated[Path, typer.Option(metavar="WORK_DIR", help="the local worker's outputs and caches")] = Path(
        ".gate"
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="API processes (default: this machine's cores); one of them runs the reaper and delivery sender",
        ),
    ] = None,
    access_log: Annotated[
        bool,
        # off by default, as gunicorn's: formatting a line costs about a seventh of a run read (bench/mlflow_peer.py)
        typer.Option(help="log every request, as uvicorn does"),
    ] = False,
) -> None:
    """Run the gate server: REST API under /api/v1 and the dashboard. SIGINT or SIGTERM stops it (and its local
    worker, which hands back a run in progress) within seconds."""
    from gate.app import create_app

    worker = worker or demo
    for item in local_data or []:
        folder = item.partition("=")[2]
        if not folder or not Path(folder).expanduser().is_dir():
            raise fail(f"--local-data takes TASK=DIR with an existing folder, got {item!r}")
    url = f"http://{host}:{port}"
    side_car: _LocalWorker | None = None
    if worker:
        worker_token, admin_token = _local_tokens()
        typer.echo(f"local admin token (for gate submit / the API):\n{admin_token}", err=True)
        side_car = _LocalWorker(url, worker_token, local_data or [], work_dir.resolve() / "worker")
    processes = workers or len(os.sched_getaffinity(0))  # the cores this process may run on (a container's cpuset)
    stop_side_car = side_car.stop if side_car else lambda: None
    if processes == 1:
        config = uvicorn.Config(
            create_app(),
            host=host,
            port=port,
            log_config=LOGGING,
            log_level="info",
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
        server: uvicorn.Server | _Processes = _Server(config, before_exit=stop_side_car)
    else:
        # each process builds its own app (the factory), after this one has migrated the database once
        _migrate()
        os.environ[SUPERVISOR_PID] = str(os.getpid())  # the API processes inherit it
        config = uvicorn.Config(
            "gate.cli.serve:api_process",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            log_config=LOGGING,
            log_level="info",
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
        server = _Processes(config, before_exit=stop_side_car)
    if side_car is not None:
        demo_run = (lambda: _queue_demo(url, admin_token, work_dir.resolve(), local_data or [])) if demo else None
        threading.Thread(target=side_car.run, args=(server, demo_run), daemon=True, name="local-worker").start()
    try:
        server.run()
    finally:
        if side_car is not None:
            side_car.stop()
            side_car.wait(WORKER_STOP_S)
    if side_car is not None and side_car.failed:
        raise typer.Exit(1)
