"""Queue latency with several API processes (issue 17): POST /runs to the worker's lm-eval process, the worker idle
in its long-poll claim, `gate serve --workers 4`. Postgres with LISTEN/NOTIFY against the same deployment polling
(GATE_LISTEN_NOTIFY=false), and SQLite (polling), interleaved in rounds on one machine.

    .venv/bin/python bench/queue_latency.py [--rounds 3] [--starts 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import describe, fresh_database, gate_server, token
from bench.worker_overhead import GSM8K, queue_latency, start_worker
from gate.worker.tiny_model import build

MODES = {  # name: (database, server settings)
    "postgres, LISTEN/NOTIFY": ("postgres", {}),
    "postgres, polling": ("postgres", {"listen_notify": "false"}),
    "sqlite, polling": ("sqlite", {}),
}


def measure(database: str, settings: dict[str, str], work: Path, model: Path, workers: int, starts: int) -> list[float]:
    with fresh_database(database, work) as url:
        headers = {"Authorization": f"Bearer {token(url, 'bench', 'admin')}"}
        log = work / f"server-{url.rsplit('=', 1)[-1][-12:]}.log"  # one per database (SQLite file, Postgres schema)
        with (
            gate_server(url, log, workers=workers, **settings) as base,
            # idle connections dropped before uvicorn's 5 s keep-alive ends them, which races a new request
            httpx.Client(base_url=base, headers=headers, limits=httpx.Limits(keepalive_expiry=2)) as client,
        ):
            worker = start_worker(base, token(url, "bench-worker", "worker"), work / "worker")
            try:
                time.sleep(3)
                return queue_latency(client, psutil.Process(worker.pid), model, starts)
            except httpx.TransportError:
                print(f"the server's log ends:\n{log.read_text()[-6000:]}", file=sys.stderr)
                raise
            finally:
                worker.terminate()
                worker.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build(work / "tiny", GSM8K)
        for round_ in range(args.rounds):  # interleaved: the machine's drift hits every mode alike
            for mode, (database, settings) in MODES.items():
                found = measure(database, settings, work, model, args.workers, args.starts)
                latencies[mode] += found
                print(f"round {round_ + 1}, {mode:26s} {describe(found)}")
    baseline = statistics.median(latencies["postgres, polling"])
    for mode, values in latencies.items():
        ratio = statistics.median(values) / baseline
        print(f"{mode:26s} {describe(values)}   median / postgres polling = {ratio:.2f}")


if __name__ == "__main__":
    main()
