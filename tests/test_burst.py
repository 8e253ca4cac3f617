"""A burst of 200 concurrent `POST /runs` with one Idempotency-Key against a real `gate serve`: every request is
answered (200 or 202, never 500), exactly one run exists, and nobody waits anywhere near a timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.processes import Api, server

BURST = 200
RUN = {"model": "Qwen/Qwen3-4B-Thinking-2507", "baseline": "qwen3-4b-thinking-2507", "tasks": ["gsm8k"]}


async def burst(url: str, headers: dict[str, str]) -> list[tuple[int, float]]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one() -> tuple[int, float]:
            started = time.monotonic()
            response = await client.post("/api/v1/runs", json=RUN, headers={**headers, "Idempotency-Key": "pipeline-1"})
            return response.status_code, time.monotonic() - started

        return await asyncio.gather(*(one() for _ in range(BURST)))


def test_a_burst_with_one_idempotency_key_makes_one_run(database_url: str, tmp_path: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        answers = asyncio.run(burst(s.url, api.headers["submit"]))
        codes = sorted(code for code, _ in answers)
        assert codes == [200] * (BURST - 1) + [202], {c: codes.count(c) for c in set(codes)}
        runs = api.http.get("/api/v1/runs", headers=api.headers["admin"]).json()["runs"]
        assert len(runs) == 1
        latencies = sorted(seconds for _, seconds in answers)
        p99 = latencies[int(0.99 * BURST) - 1]
        print(f"{database_url.split(':')[0]}: {BURST} requests, p50 {latencies[BURST // 2]:.2f} s, p99 {p99:.2f} s")
        assert p99 < 30, "a request waited as long as a lock timeout"
