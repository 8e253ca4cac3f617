"""Stopping: `gate serve --worker` and `gate worker` end on SIGINT and SIGTERM within seconds, exit 0, and leave no
process behind; a worker whose server is away still drains; start-up mistakes are one sentence and exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import free_port, server

STOP_WITHIN_S = 15.0


def gate(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gate.cli", *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def local_worker(url: str, deadline_s: float = 120) -> dict:
    """The side-car worker, once it has registered with the server (its first claim)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            workers = httpx.get(f"{url}/api/v1/workers", timeout=2).json()
            if workers:
                return workers[0]
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"no local worker registered at {url} within {deadline_s} s")


def alive_of(pids: list[int]) -> list[psutil.Process]:
    alive = []
    for pid in pids:
        try:
            alive.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_with_worker_stops_everything(signum: int, tmp_path: Path) -> None:
    port = free_port()
    serve = gate("serve", "--worker", "--port", str(port), cwd=tmp_path, GATE_ANONYMOUS_READ="true")
    try:
        assert local_worker(f"http://127.0.0.1:{port}")["name"] == "local"
        tree = [serve.pid] + [p.pid for p in psutil.Process(serve.pid).children(recursive=True)]
        assert len(tree) >= 2, "the worker is a child of gate serve"
        worker = psutil.Process(tree[1])
        assert not any("--token" in arg for arg in worker.cmdline()), "the token must not be on a command line"
        started = time.monotonic()
        serve.send_signal(signum)
        _, stderr = serve.communicate(timeout=STOP_WITHIN_S)
        took = time.monotonic() - started
    finally:
        if serve.poll() is None:
            serve.kill()
    # every process of the tree gone within the promise (uvicorn's supervisor leaves multiprocessing's resource
    # tracker, which ends as soon as its parent has)
    _, alive = psutil.wait_procs(alive_of(tree), timeout=max(STOP_WITHIN_S - took, 0))
    left = [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"still running after {signal.Signals(signum).name}: {left}"
    assert serve.returncode == 0, stderr[-2000:]
    assert took < STOP_WITHIN_S
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr[-2000:]
    assert " 500 " not in stderr, stderr[-2000:]


def test_the_worker_and_the_api_processes_die_with_a_killed_server(tmp_path: Path) -> None:
    port = free_port()
    serve = gate("serve", "--worker", "--workers", "2", "--port", str(port), cwd=tmp_path, GATE_ANONYMOUS_READ="true")
    local_worker(f"http://127.0.0.1:{port}")
    children = psutil.Process(serve.pid).children()
    assert any("worker" in child.cmdline() for child in children)
    assert sum("spawn_main" in " ".join(child.cmdline()) for child in children) == 2  # API processes
    serve.kill()
    serve.wait()
    _, alive = psutil.wait_procs(children, timeout=STOP_WITHIN_S)
    assert alive == [], f"outlived their server (kill -9): {[p.cmdline() for p in alive]}"


def test_a_worker_whose_server_is_away_still_drains(tmp_path: Path) -> None:
    """Retrying a server that does not answer must not make SIGTERM wait for the retry budget (10 minutes)."""
    worker = gate(
        "worker", "--server", f"http://127.0.0.1:{free_port()}", "--backend", "hf", "--work-dir", str(tmp_path),
        cwd=tmp_path, GATE_TOKEN="any",
    )  # fmt: skip
    time.sleep(8)  # past start-up, into the claim retries
    assert worker.poll() is None
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=STOP_WITHIN_S)
    assert worker.returncode == 0, stderr[-2000:]
    assert time.monotonic() - started < 5, "drained worker kept retrying"
    assert "Traceback" not in stderr


def test_serve_refuses_a_missing_local_data_folder(tmp_path: Path) -> None:
    serve = gate("serve", "--worker", "--port", str(free_port()), "--local-data", "gsm8k=/no/such", cwd=tmp_path)
    _, stderr = serve.communicate(timeout=60)
    assert serve.returncode == 2
    assert stderr.strip().splitlines() == [
        "error: --local-data takes TASK=DIR with an existing folder, got 'gsm8k=/no/such'"
    ]


def test_a_worker_with_a_wrong_token_says_so(tmp_path: Path) -> None:
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        worker = gate(
            "worker", "--server", s.url, "--backend", "hf", "--work-dir", str(tmp_path), cwd=tmp_path,
            GATE_TOKEN="wrong",
        )  # fmt: skip
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 2
    (line,) = stderr.strip().splitlines()[-1:]
    assert line.startswith("error: the server refused this worker: ") and "401" in line, stderr
    assert "Traceback" not in stderr
