"""Queue latency (POST /runs to the worker's lm-eval process start, idle worker waiting) and gate's overhead
(the same tiny model, task and limit end to end through gate versus bare `lm_eval`), on SQLite.

    .venv/bin/python bench/worker_overhead.py [--starts 15] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import describe, fresh_database, gate_server, token
from gate.checks.accuracy import command, datasets
from gate.worker.tiny_model import build

GSM8K = Path(os.environ.get("GATE_GSM8K_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))


def smoke(model: Path, limit: int, max_gen_toks: int) -> dict:
    return {
        "model": str(model),
        "backend": "hf",
        "tasks": ["gsm8k"],
        "options": {
            "limit": limit,
            "num_fewshot": 5,
            "batch_size": 8,
            "gen_kwargs": {"max_gen_toks": max_gen_toks},
            "model_args": {"dtype": "float32"},
        },
    }


def start_worker(base: str, secret: str, work: Path) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "gate.cli",
        "worker",
        "--server",
        base,
        "--token",
        secret,
        "--backend",
        "hf",
        "--work-dir",
        str(work),
        "--local-data",
        f"gsm8k={GSM8K}",
    ]
    return subprocess.Popen(argv, stdout=(work.parent / "worker.log").open("ab"), stderr=subprocess.STDOUT)


def lm_eval_child(worker: psutil.Process) -> psutil.Process | None:
    for child in worker.children(recursive=True):
        try:
            if "lm_eval" in child.cmdline():
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def queue_latency(client: httpx.Client, worker: psutil.Process, model: Path, starts: int) -> list[float]:
    latencies = []
    for _ in range(starts):
        time.sleep(1.0)  # the worker is idle in its long-poll claim
        started = time.perf_counter()
        run_id = client.post("/api/v1/runs", json=smoke(model, 1, 8)).json()["id"]
        while (child := lm_eval_child(worker)) is None:
            time.sleep(0.002)
        latencies.append(time.perf_counter() - started)
        client.post(f"/api/v1/runs/{run_id}/cancel")
        psutil.wait_procs([child], timeout=30)
    return latencies


def through_gate(client: httpx.Client, model: Path) -> float:
    started = time.perf_counter()
    run_id = client.post("/api/v1/runs", json=smoke(model, 8, 64)).json()["id"]
    while (run := client.get(f"/api/v1/runs/{run_id}").json())["status"] not in ("succeeded", "failed"):
        time.sleep(0.05)
    assert run["status"] == "succeeded", run["failure_reason"]
    return time.perf_counter() - started


def bare(model: Path, work: Path, n: int) -> float:
    """The command a user runs by hand: the very argument list the worker builds, without gate around it."""
    include = datasets.write_overrides({"gsm8k": GSM8K}, work / "tasks", work / "mirror").include_path
    config = command.WorkerConfig(backend="hf", work_dir=work / "bare", include_path=include)
    invocation = command.build({"run_id": n, "attempt": 1, **smoke(model, 8, 64)}, str(model), config)
    started = time.perf_counter()
    subprocess.run(invocation.argv, env={**os.environ, **invocation.env}, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp, fresh_database("sqlite", Path(tmp)) as url:
        work = Path(tmp)
        model = build(work / "tiny", GSM8K)
        headers = {"Authorization": f"Bearer {token(url, 'bench', 'admin')}"}
        with gate_server(url, work / "server.log") as base, httpx.Client(base_url=base, headers=headers) as client:
            worker = start_worker(base, token(url, "bench-worker", "worker"), work / "worker")
            try:
                time.sleep(3)
                latencies = queue_latency(client, psutil.Process(worker.pid), model, args.starts)
                print(f"queue latency, POST /runs -> lm_eval process started: {describe(latencies)}")
                gate_times, bare_times = [], []
                for n in range(args.pairs):  # alternate so drift hits both sides alike
                    bare_times.append(bare(model, work, n))
                    gate_times.append(through_gate(client, model))
                ratio = statistics.median(gate_times) / statistics.median(bare_times)
                print(
                    f"bare lm_eval: median {statistics.median(bare_times):6.1f} s  {[round(t, 1) for t in bare_times]}"
                )
                print(
                    f"through gate: median {statistics.median(gate_times):6.1f} s  {[round(t, 1) for t in gate_times]}"
                )
                print(f"overhead ratio (gate / bare, medians): {ratio:.3f}")
            finally:
                worker.terminate()
                worker.wait(60)


if __name__ == "__main__":
    main()
