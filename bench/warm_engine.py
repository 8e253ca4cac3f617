"""A warm engine (issue 15): the wall time of a first and a second accuracy run of one model through a gate server
and `gate worker --backend vllm` on vLLM's CPU build, with and without `--warm-engine`, on SQLite.

    GATE_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python bench/warm_engine.py [--limit 4] [--max-gen-toks 16]

Each run is timed from its submission to its success (the worker idles in its claim long-poll, so a run starts
within a second). The two runs differ only in max_gen_toks (16, then 17), so lm-eval's response cache answers
neither.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import fresh_database, gate_server, token
from gate.worker.tiny_model import build

GSM8K = Path(os.environ.get("GATE_GSM8K_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run_body(model: Path, limit: int, max_gen_toks: int) -> dict:
    return {
        "model": str(model),
        "backend": "vllm",
        "tasks": ["gsm8k"],
        "options": {
            "limit": limit,
            "num_fewshot": 2,
            "gen_kwargs": {"max_gen_toks": max_gen_toks},
            "model_args": {"dtype": "float32", "max_model_len": 512, "enforce_eager": True},
        },
    }


def measure(python: str, model: Path, work: Path, warm: bool, limit: int, max_gen_toks: int) -> list[dict]:
    with fresh_database("sqlite", work) as url, gate_server(url, work / "server.log") as base:
        submit = {"Authorization": f"Bearer {token(url, 'bench-submit', 'submit')}"}
        admin = {"Authorization": f"Bearer {token(url, 'bench-admin', 'admin')}"}
        argv = [python, "-m", "gate.cli", "worker", "--server", base, "--token", token(url, "bench-w", "worker")]
        argv += ["--backend", "vllm", "--work-dir", str(work / "worker"), "--local-data", f"gsm8k={GSM8K}"]
        argv += ["--claim-wait-s", "2", "--heartbeat-s", "10", *(["--warm-engine"] if warm else [])]
        log = (work / "worker.log").open("ab")
        worker = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **VLLM_ENV})
        found = []
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                for toks in (max_gen_toks, max_gen_toks + 1):
                    started = time.monotonic()
                    created = http.post("/api/v1/runs", json=run_body(model, limit, toks), headers=submit)
                    run_id = created.json()["id"]
                    while (run := http.get(f"/api/v1/runs/{run_id}", headers=admin).json())["status"] not in (
                        "succeeded",
                        "failed",
                    ):
                        time.sleep(0.2)
                    assert run["status"] == "succeeded", run["failure_reason"]
                    engine = run["environment"].get("warm_engine", {})
                    found.append({"wall_s": time.monotonic() - started, "engine": engine})
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(120)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--max-gen-toks", type=int, default=16)
    args = parser.parse_args()
    python = os.environ.get("GATE_VLLM_PYTHON", ".venv-vllm/bin/python")
    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp) / "tiny", GSM8K)
        results = {}
        for warm in (False, True):
            work = Path(tmp) / ("warm" if warm else "cold")
            work.mkdir()
            results[warm] = measure(python, model, work, warm, args.limit, args.max_gen_toks)
    print(f"tiny Qwen3, GSM8K limit {args.limit}, max_gen_toks {args.max_gen_toks}+, {os.cpu_count()} cores")
    print("| worker | first run | second run | engine start (warm) |")
    print("|---|---|---|---|")
    for warm, (first, second) in results.items():
        start = f"{first['engine']['start_s']:.1f} s" if warm else "—"
        print(f"| {'--warm-engine' if warm else 'default'} | {first['wall_s']:.1f} s | {second['wall_s']:.1f} s "
              f"| {start} |")  # fmt: skip
    cold, hot = results[False], results[True]
    print(f"saving on the second run: {cold[1]['wall_s'] - hot[1]['wall_s']:.1f} s "
          f"({1 - hot[1]['wall_s'] / cold[1]['wall_s']:.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
