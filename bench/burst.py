"""Bursts: N concurrent `POST /runs` with one Idempotency-Key, then N with distinct keys, against a real
`gate serve`, beside the same requests sent one at a time (the baseline, measured in the same run).

.venv/bin/python bench/burst.py [--db sqlite|postgres] [--burst 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import fresh_database, gate_server, percentile, token

RUN = {"model": "Qwen/Qwen3-4B-Thinking-2507", "baseline": "qwen3-4b-thinking-2507", "tasks": ["gsm8k"]}


async def send(base: str, headers: dict[str, str], keys: list[str], concurrent: bool) -> list[tuple[int, float]]:
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=httpx.Limits(max_connections=len(keys))) as http:

        async def one(key: str) -> tuple[int, float]:
            started = time.monotonic()
            response = await http.post("/api/v1/runs", json=RUN, headers={**headers, "Idempotency-Key": key})
            return response.status_code, time.monotonic() - started

        if concurrent:
            return list(await asyncio.gather(*(one(k) for k in keys)))
        return [await one(k) for k in keys]


def line(name: str, answers: list[tuple[int, float]], baseline_p50_s: float) -> str:
    errors = sum(1 for code, _ in answers if code >= 500)
    seconds = [s for _, s in answers]
    p50, p99 = percentile(seconds, 50), percentile(seconds, 99)
    return (
        f"{name:<34} {len(answers):>4} requests  {errors:>3} errors  p50 {p50 * 1000:7.1f} ms  "
        f"p99 {p99 * 1000:7.1f} ms  ({p99 / baseline_p50_s:5.1f}x the sequential p50)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, Path(tmp)) as url:
        headers = {"Authorization": f"Bearer {token(url, 'bench', 'submit')}"}
        with gate_server(url, Path(tmp) / "server.log") as base:
            sequential = asyncio.run(send(base, headers, [f"seq-{i}" for i in range(args.burst)], False))
            baseline = percentile([s for _, s in sequential], 50)
            same = asyncio.run(send(base, headers, ["one-key"] * args.burst, True))
            distinct = asyncio.run(send(base, headers, [f"key-{i}" for i in range(args.burst)], True))
    print(f"{args.db}: sequential p50 {baseline * 1000:.1f} ms (baseline)")
    print(line("burst, one Idempotency-Key", same, baseline))
    print(line("burst, distinct keys", distinct, baseline))


if __name__ == "__main__":
    main()
