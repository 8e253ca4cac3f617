"""Shared pieces of the benchmarks: fresh databases, a gate server process, tokens, percentiles."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

from gate import migrate
from gate.auth import tokens
from gate.db import make_engine, make_session_factory, transaction

POSTGRES_URL = os.environ.get("GATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """An empty, migrated database: an SQLite file, or a Postgres schema of its own (dropped afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        migrate.upgrade(make_engine(url))
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    migrate.upgrade(make_engine(url))
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def token(url: str, name: str, scope: str) -> str:
    with transaction(make_session_factory(make_engine(url)), write=True) as session:
        return tokens.replace(session, name, [scope])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gate_server(url: str, log: Path, workers: int = 1, tree: Path | None = None, **settings: str) -> Iterator[str]:
    """`gate serve` on a free port until it answers; from another source tree's `gate` package if given."""
    port = free_port()
    env = {**os.environ, "GATE_DATABASE_URL": url, **{f"GATE_{k.upper()}": v for k, v in settings.items()}}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    process = subprocess.Popen(
        [sys.executable, "-m", "gate.cli", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=tree,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError(f"gate server did not start: see {log}")
        yield base
    finally:
        process.terminate()
        process.wait(30)


def port_of(base: str) -> int:
    """The port of a server's base URL (gate_server's)."""
    return int(base.rsplit(":", 1)[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return f"p50 {percentile(ms, 50):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   n={len(ms)}"
