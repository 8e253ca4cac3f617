"""How fast a verdict reaches CI: run end -> signed notification at a loopback receiver, one at a time and in a burst.

.venv/bin/python bench/delivery_latency.py [--db sqlite|postgres] [--runs 30] [--burst 300]

A run's end queues its notification in the outbox; the server's delivery loop (polling every
GATE_DELIVERY_POLL_S, 1 s by default) sends it. Runs are ended by cancelling them, which takes the same path as a
verdict (runs.finish -> notifications.on_run_end).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import describe, fresh_database, gate_server, token


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}  # run id -> perf_counter at arrival
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.arrived[body["run"]["id"]] = time.perf_counter()
        self.send_response(204)
        self.end_headers()


def end_run(c: httpx.Client, headers: dict, callback: str) -> tuple[int, float]:
    body = {"model": "acme/port", "baseline": "qwen3-4b-thinking-2507", "callback_url": callback}
    run = c.post("/api/v1/runs", json=body, headers=headers).json()
    ended_at = time.perf_counter()
    assert c.post(f"/api/v1/runs/{run['id']}/cancel", headers=headers).status_code == 200
    return run["id"], ended_at


def wait_for(receiver: Receiver, run_ids: list[int], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(r in receiver.arrived for r in run_ids):
        assert time.monotonic() < deadline, "notifications did not arrive"
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--burst", type=int, default=300)
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    settings = {
        "secret_key": "bench-server-key-0123456789",
        "callback_allowed_hosts": "127.0.0.1",
        "callback_allow_private": "true",
    }
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, Path(tmp)) as url:
        headers = {"Authorization": f"Bearer {token(url, 'bench', 'admin')}"}
        with gate_server(url, Path(tmp) / "server.log", **settings) as base, httpx.Client(base_url=base) as c:
            latencies = []
            for _ in range(args.runs):
                run_id, ended_at = end_run(c, headers, callback)
                wait_for(receiver, [run_id])
                latencies.append(receiver.arrived[run_id] - ended_at)
            print(f"  {args.db}: run end -> receiver, one at a time: {describe(latencies)}")

            burst = [end_run(c, headers, callback) for _ in range(args.burst)]
            last_end = burst[-1][1]
            wait_for(receiver, [run_id for run_id, _ in burst])
            drained_s = max(receiver.arrived[run_id] for run_id, _ in burst) - last_end
            first_s = min(receiver.arrived[run_id] for run_id, _ in burst) - burst[0][1]
            span_s = max(receiver.arrived[r] for r, _ in burst) - min(receiver.arrived[r] for r, _ in burst)
            print(
                f"  {args.db}: burst of {args.burst}: all delivered {drained_s:.2f} s after the last run ended; "
                f"first after {first_s:.2f} s; {args.burst / span_s:.0f} notifications/s while sending"
            )
    receiver.shutdown()


if __name__ == "__main__":
    main()
