"""API latency with 100,000 runs stored, on SQLite and Postgres, measured by a client over loopback.

.venv/bin/python bench/api_latency.py [--runs 100000] [--requests 300] [--db sqlite --db postgres]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import describe, fresh_database, gate_server, token
from gate.db import make_engine
from gate.runs.models import Run, RunTask, Score

MODELS = 200
BATCH = 5000


@dataclass(frozen=True)
class SeedRun:
    id: int
    model: str
    verdict: str
    created_at: datetime
    finished_at: datetime
    strict: float
    flexible: float


def seed_runs(count: int) -> list[SeedRun]:
    """Finished gsm8k runs over MODELS models, a minute apart (bench/mlflow_peer.py stores the same in MLflow)."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rng = random.Random(0)
    return [
        SeedRun(
            id=i,
            model=f"acme/model-{i % MODELS}",
            verdict=rng.choice(["pass", "fail", "not_comparable"]),
            created_at=start + timedelta(minutes=i),
            finished_at=start + timedelta(minutes=i, seconds=600),
            strict=rng.uniform(0.6, 0.75),
            flexible=rng.uniform(0.6, 0.75),
        )
        for i in range(1, count + 1)
    ]


def seed(url: str, runs: int | list[SeedRun]) -> None:
    """Bulk-insert finished runs, each with its gsm8k task row and two scores."""
    records = seed_runs(runs) if isinstance(runs, int) else runs
    engine = make_engine(url)
    with engine.begin() as conn:
        for first in range(0, len(records), BATCH):
            batch = records[first : first + BATCH]
            conn.execute(
                insert(Run),
                [
                    {
                        "id": r.id,
                        "model": r.model,
                        "backend": "vllm-ascend",
                        "tasks": ["gsm8k"],
                        "options": {},
                        "labels": [],
                        "priority": 0,
                        "origin": "queue",
                        "status": "succeeded",
                        "verdict": r.verdict,
                        "attempts": 1,
                        "max_attempts": 3,
                        "cancel_requested": False,
                        "created_at": r.created_at,
                        "finished_at": r.finished_at,
                    }
                    for r in batch
                ],
            )
            conn.execute(insert(RunTask), [{"run_id": r.id, "task": "gsm8k"} for r in batch])
            conn.execute(
                insert(Score),
                [
                    {
                        "run_id": r.id,
                        "task": "gsm8k",
                        "metric": metric,
                        "value": value,
                        "stderr": 0.0126,
                        "n_samples": 1319,
                    }
                    for r in batch
                    for metric, value in (
                        ("exact_match,strict-match", r.strict),
                        ("exact_match,flexible-extract", r.flexible),
                    )
                ],
            )
        if engine.dialect.name == "postgresql":  # explicit ids leave the sequence behind
            conn.execute(text("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))"))
    engine.dispose()


def measure(base: str, headers: dict, requests: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"GET /runs?model&task": [], "GET /models/M/history": [], "POST /runs": []}
    body = {
        "model": "acme/model-7",
        "backend": "vllm-ascend",
        "tasks": ["gsm8k"],
        "baseline": "qwen3-4b-thinking-2507",
        "labels": ["ascend910b"],
    }
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(20):  # warm-up: connections, caches
            client.get("/api/v1/runs", params={"model": "acme/model-1", "task": "gsm8k"})
        for i in range(requests):
            model = f"acme/model-{i % MODELS}"
            for name, call in (
                (
                    "GET /runs?model&task",
                    lambda m=model: client.get("/api/v1/runs", params={"model": m, "task": "gsm8k"}),
                ),
                (
                    "GET /models/M/history",
                    lambda m=model: client.get(f"/api/v1/models/{m}/history", params={"task": "gsm8k"}),
                ),
                ("POST /runs", lambda: client.post("/api/v1/runs", json=body)),
            ):
                started = time.perf_counter()
                response = call()
                timings[name].append(time.perf_counter() - started)
                assert response.status_code in (200, 202), response.text
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db or ["sqlite", "postgres"]:
            with fresh_database(kind, Path(tmp)) as url:
                started = time.perf_counter()
                seed(url, args.runs)
                print(f"\n{kind}: {args.runs} runs seeded in {time.perf_counter() - started:.0f} s")
                headers = {"Authorization": f"Bearer {token(url, 'bench', 'admin')}"}
                with gate_server(url, Path(tmp) / f"{kind}.log") as base:
                    for name, values in measure(base, headers, args.requests).items():
                        print(f"  {name:24s} {describe(values)}")


if __name__ == "__main__":
    main()
