"""Time to verdict on CPU with the gold loopback server (issue 15): `.venv/bin/python bench/time_to_verdict.py`.

A broken port (0 % right) through the sharded driver with early stop, against one full `lm_eval` CLI run of the
same 1,319 questions; a healthy port (927 right) through the sharded driver, against one unsharded CLI run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.checks.accuracy.datasets import write_overrides
from gate.worker.tiny_model import build
from tests.lmeval_runs import OFFLINE_ENV, gold_server

GSM8K = Path(os.environ.get("GATE_GSM8K_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
RULES = {"metric": "exact_match,strict-match", "baseline": 0.703, "tolerance_pp": 2.0, "two_sided": True}


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ttv-"))
    tiny = build(work / "tiny", GSM8K)
    overrides = write_overrides({"gsm8k": GSM8K}, work / "tasks")
    with gold_server(GSM8K, 927) as server:

        def args(model: str) -> str:
            return (
                f"model={model},base_url={server.url},tokenizer={tiny},tokenizer_backend=huggingface,"
                "num_concurrent=8,max_retries=1,tokenized_requests=False"
            )

        def cli(model: str, out: str) -> float:
            lm_eval = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", args(model)]
            task = ["--include_path", str(overrides), "--tasks", "gsm8k", "--num_fewshot", "5"]
            return timed([*lm_eval, *task, "--output_path", str(work / out), "--log_samples"])

        def sharded(model: str, out: str, early_stop: dict | None) -> float:
            job = {"model": "local-completions", "model_args": args(model), "tasks": ["gsm8k"], "num_fewshot": 5}
            job |= {"include_path": str(overrides), "rules": {**RULES, "early_stop": early_stop}}
            path = work / f"{out}.json"
            path.write_text(json.dumps(job))
            return timed([sys.executable, "-m", "gate.checks.accuracy.sharded", str(path), str(work / out)])

        rows = [
            ("broken port (0 %), full CLI run", cli("gold-0", "broken-cli")),
            ("broken port (0 %), sharded, certainty only", sharded("gold-0", "broken-cert", None)),
            ("broken port (0 %), sharded, early_stop alpha 0.05", sharded("gold-0", "broken-cs", {"alpha": 0.05})),
            ("healthy port (927/1319), full CLI run", cli("gold", "healthy-cli")),
            ("healthy port (927/1319), sharded, early_stop alpha 0.05", sharded("gold", "healthy", {"alpha": 0.05})),
        ]
    for name, seconds in rows:
        print(f"{name:60s} {seconds:7.1f} s")
    for out in ("broken-cert", "broken-cs"):
        stopped = json.loads(next((work / out).rglob("results_*.json")).read_text())["stopped"]
        print(f"{out}: stopped at {stopped['at']} of {stopped['of']} ({stopped['rule']})")
    speedup, slowdown = rows[0][1] / rows[2][1], rows[4][1] / rows[3][1]
    print(f"broken: full / early stop = {speedup:.1f}x; healthy: sharded / CLI = {slowdown:.3f}")


if __name__ == "__main__":
    main()
