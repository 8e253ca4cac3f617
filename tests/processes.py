"""Real processes for end-to-end tests: a gate server (uvicorn) and gate workers, on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from gate.worker import sandbox
from tests.conftest import GSM8K_DIR, make_token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self, database_url: str, log_dir: Path, port: int | None = None, workers: int = 1, **settings: str
    ) -> None:
        self.database_url, self.log_dir = database_url, log_dir
        self.port = port or free_port()
        self.workers, self.settings = workers, settings
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {
            **os.environ,
            "GATE_DATABASE_URL": self.database_url,
            "GATE_LEASE_S": "30",
            "GATE_REAPER_INTERVAL_S": "0.5",
            **{f"GATE_{k.upper()}": v for k, v in self.settings.items()},
        }
        log = (self.log_dir / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gate.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, (self.log_dir / f"server-{self.port}.log").read_text()[-3000:]
            time.sleep(0.2)
        raise TimeoutError("gate server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


@contextmanager
def server(database_url: str, log_dir: Path, workers: int = 1, **settings: str) -> Iterator[Server]:
    s = Server(database_url, log_dir, workers=workers, **settings).start()
    try:
        yield s
    finally:
        s.stop()


def worker_process(
    server_url: str,
    token: str,
    work_dir: Path,
    *,
    backend: str = "hf",
    name: str = "w1",
    labels: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    data: tuple[str, ...] = ("--local-data", f"gsm8k={GSM8K_DIR}"),
) -> subprocess.Popen:
    """A `gate worker` process; `python` may be another environment's interpreter (the vLLM one)."""
    argv = [
        python,
        "-m",
        "gate.cli",
        "worker",
        "--server",
        server_url,
        "--token",
        token,
        "--backend",
        backend,
        "--name",
        name,
        "--work-dir",
        str(work_dir),
        *data,
        "--claim-wait-s",
        "2",
        "--heartbeat-s",  # a third of the servers' 30 s lease: the worker's 30 s default would let it lapse
        "10",
        *extra,
    ]
    for label in labels:
        argv += ["--label", label]
    log = (work_dir.parent / f"worker-{name}.log").open("ab")
    work_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    )


def sandboxed_processes() -> list[psutil.Process]:
    """Live processes left by gate.worker.sandbox: its uids (as root), or its starter's command line."""
    found = []
    for proc in psutil.process_iter(["uids", "cmdline", "status"]):
        uid = proc.info["uids"].real if proc.info["uids"] else 0
        started = uid >= sandbox.SANDBOX_UID_BASE or "gate.worker.sandbox" in " ".join(proc.info["cmdline"] or ())
        if started and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


class Api:
    """A small client for tests: tokens for each scope and polling helpers."""

    def __init__(self, s: Server) -> None:
        self.url = s.url
        self.headers = {
            scope: {"Authorization": f"Bearer {make_token(s.database_url, f'{scope}-{s.port}', scope)}"}
            for scope in ("submit", "worker", "admin")
        }
        self.http = httpx.Client(base_url=s.url, timeout=30)

    def submit(self, **body: object) -> dict:
        response = self.http.post("/api/v1/runs", json=body, headers=self.headers["submit"])
        assert response.status_code == 202, response.text
        return response.json()

    def run(self, run_id: int) -> dict:
        return self.http.get(f"/api/v1/runs/{run_id}", headers=self.headers["admin"]).json()

    def wait(
        self,
        run_id: int,
        until: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
        timeout: float = 600,  # a bound on failure only: CI runs three test groups on two cores
        predicate=None,
    ) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if predicate(run) if predicate else run["status"] in until:
                return run
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} still {self.run(run_id)['status']} after {timeout} s")
