"""The largest upload the server allows: a results file and a samples file near GATE_MAX_UPLOAD_BYTES (64 MiB), sent
to `POST /runs/import` of a real `gate serve`, beside a 1 MiB upload of the same shape (the baseline, same run).
Prints the time of each, the server's peak memory growth, and /healthz latency while the large one is parsed.

.venv/bin/python bench/upload_size.py [--db sqlite|postgres] [--mib 60]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import fresh_database, gate_server, percentile, token

PADDING = "x" * 4000  # lm-eval logs each prompt and response: most of a samples file's bytes


def files(mib: float) -> tuple[bytes, bytes]:
    """An lm-eval-shaped GSM8K results file and its samples, about `mib` MiB of samples."""
    line_bytes = len(PADDING) + 300
    n = max(int(mib * 2**20 / line_bytes), 10)
    right = [i % 10 < 7 for i in range(n)]
    rows = [
        json.dumps({
            "doc_id": i, "doc": {"question": f"question {i}"}, "target": f"#### {i}", "arguments": [[PADDING]],
            "resps": [["..."]], "filtered_resps": [str(i if ok else -1)], "filter": "strict-match",
            "exact_match": 1.0 if ok else 0.0, "doc_hash": hashlib.sha256(str(i).encode()).hexdigest(),
        })
        for i, ok in enumerate(right)
    ]  # fmt: skip
    score = sum(right) / n
    results = {
        "results": {"gsm8k": {"exact_match,strict-match": score, "exact_match_stderr,strict-match": 0.01}},
        "n-shot": {"gsm8k": 5},
        "n-samples": {"gsm8k": {"original": n, "effective": n}},
        "config": {"model": "hf", "model_args": "pretrained=acme/port"},
    }
    return json.dumps(results).encode(), ("\n".join(rows) + "\n").encode()


def upload(base: str, headers: dict[str, str], results: bytes, samples: bytes) -> float:
    started = time.monotonic()
    response = httpx.post(
        f"{base}/api/v1/runs/import",
        files=[
            ("results", ("results.json", results)),
            ("samples", ("samples_gsm8k_2026-11-25T10-00-00.jsonl", samples)),
        ],
        data={"baseline": "qwen3-4b-thinking-2507"},
        headers=headers,
        timeout=600,
    )
    response.raise_for_status()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--mib", type=float, default=60)
    args = parser.parse_args()
    small, large = files(1), files(args.mib)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.db, Path(tmp)) as url:
        headers = {"Authorization": f"Bearer {token(url, 'bench', 'submit')}"}
        with gate_server(url, Path(tmp) / "server.log") as base:
            server = next(
                p
                for p in psutil.process_iter(["cmdline"])
                if base.rsplit(":", 1)[1] in " ".join(p.info["cmdline"] or [])
            )
            baseline = upload(base, headers, *small)
            before = server.memory_info().rss
            peak, health, done = before, [], threading.Event()

            def watch() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, server.memory_info().rss)
                    started = time.monotonic()
                    httpx.get(f"{base}/healthz", timeout=60)
                    health.append(time.monotonic() - started)
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            took = upload(base, headers, *large)
            done.set()
            watcher.join()
    print(f"{args.db}: baseline upload of {len(small[1]) / 2**20:.1f} MiB samples: {baseline:.2f} s")
    print(
        f"{args.db}: {len(large[1]) / 2**20:.1f} MiB samples: {took:.2f} s ({took / baseline:.1f}x the baseline), "
        f"server memory +{(peak - before) / 2**20:.0f} MiB at peak ({(peak - before) / len(large[1]):.1f}x the file), "
        f"/healthz during it p50 {percentile(health, 50) * 1000:.0f} ms, max {max(health) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
