"""`gate serve`: the API and dashboard; with --worker a local worker beside it, with --demo a first run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from gate.settings import get_settings
from gate.store import migrate, tokens
from gate.store.db import make_engine, make_session_factory, transaction

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


def _start_worker(url: str, token: str, local_data: list[str], work_dir: Path) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "gate.cli",
        "worker",
        "--server",
        url,
        "--token",
        token,
        "--backend",
        "hf",
        "--name",
        "local",
        "--work-dir",
        str(work_dir),
        "--heartbeat-s",
        "5",
    ]
    for item in local_data:
        argv += ["--local-data", item]
    return subprocess.Popen(argv, env={**os.environ, "OMP_NUM_THREADS": "1"})


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
    response = httpx.post(f"{url}/api/v1/runs", json=body, headers={"Authorization": f"Bearer {admin_token}"})
    response.raise_for_status()
    typer.echo(
        f"{DEMO_BANNER}\n demo run {response.json()['id']} queued: {url}/runs/{response.json()['id']}\n", err=True
    )


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="also start a local worker (hf backend, CPU or GPU)")] = False,
    demo: Annotated[bool, typer.Option(help="queue a smoke run of a tiny random model (implies --worker)")] = False,
    local_data: Annotated[
        list[str] | None, typer.Option(help="TASK=DIR for the local worker, e.g. gsm8k=../shared/data/gsm8k")
    ] = None,
    work_dir: Annotated[Path, typer.Option(help="the local worker's outputs and caches")] = Path(".gate"),
) -> None:
    """Run the gate server: REST API under /api/v1 and the dashboard."""
    import uvicorn

    from gate.app import create_app

    worker = worker or demo
    url = f"http://{host}:{port}"
    children: list[subprocess.Popen] = []
    if worker:
        worker_token, admin_token = _local_tokens()
        typer.echo(f"local admin token (for gate submit / the API):\n{admin_token}", err=True)

        def side_car() -> None:
            _wait_healthy(url)
            children.append(_start_worker(url, worker_token, local_data or [], work_dir.resolve() / "worker"))
            if demo:
                _queue_demo(url, admin_token, work_dir.resolve(), local_data or [])

        threading.Thread(target=side_car, daemon=True).start()
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        for child in children:
            child.terminate()
            child.wait(30)
