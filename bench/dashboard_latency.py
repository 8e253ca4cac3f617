"""Dashboard pages rendered server-side with 10,000 runs stored (SQLite), measured over loopback.

.venv/bin/python bench/dashboard_latency.py [--runs 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_latency import seed
from bench.support import describe, fresh_database, gate_server

PAGES = {"/": "/", "/runs": "/runs", "/models/{name}": "/models/acme/model-7"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, Path(tmp)) as url:
        seed(url, args.runs)
        print(f"{args.db}: {args.runs} runs")
        with (
            gate_server(url, Path(tmp) / "server.log", anonymous_read="true") as base,
            httpx.Client(base_url=base) as c,
        ):
            for name, path in PAGES.items():
                for _ in range(10):
                    assert c.get(path).status_code == 200
                timings = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = c.get(path)
                    timings.append(time.perf_counter() - started)
                    assert response.status_code == 200
                print(f"  GET {name:16s} {describe(timings)}  ({len(response.content) // 1024} KiB)")


if __name__ == "__main__":
    main()
