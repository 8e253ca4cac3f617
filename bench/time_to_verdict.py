"""Time to verdict on CPU (issue 15).

    .venv/bin/python bench/time_to_verdict.py            # the gold loopback server: answers cost nothing
    GATE_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python bench/time_to_verdict.py --vllm

Gold server: a broken port (0 % right) through the sharded driver with early stop, against one full `lm_eval` CLI
run of the same 1,319 questions; a healthy port (927 right) through the sharded driver, against one unsharded CLI
run. --vllm: the broken port is the tiny random model served by vLLM's CPU build (its answers cost what
generating 256 tokens costs), the server started once beforehand, as a warm engine keeps it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import free_port
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


@contextlib.contextmanager
def vllm_server(python: str, model: Path, log: Path) -> Iterator[str]:
    """vLLM's OpenAI server (CPU build) for the tiny random model, healthy before any timing starts."""
    port = free_port()
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name", "tiny"]
    argv += ["--dtype", "float32", "--max-model-len", "4096", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **OFFLINE_ENV, "VLLM_CPU_KVCACHE_SPACE": "1"}
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(1)
        else:
            raise TimeoutError("vLLM's server was not healthy after 600 s")
        # a warm engine has answered before: its first batch's one-off costs are not any run's
        warm_up = {"model": "tiny", "prompt": "Question: 1 + 1?\nAnswer:", "max_tokens": 256, "n": 8}
        httpx.post(f"{base}/v1/completions", json=warm_up, timeout=600).raise_for_status()
        yield f"{base}/v1/completions"
    finally:
        process.terminate()
        process.wait(60)


def broken_vllm(work: Path, tiny: Path, overrides: Path) -> None:
    """The tiny random model (0 % right) on vLLM: one full CLI run against the sharded driver's early stops."""
    python = os.environ.get("GATE_VLLM_PYTHON", str(Path(sys.executable).parents[2] / ".venv-vllm/bin/python"))
    with vllm_server(python, tiny, work / "vllm.log") as url:
        model_args = (
            f"model=tiny,base_url={url},tokenizer={tiny},tokenizer_backend=huggingface,"
            "num_concurrent=8,max_retries=1,tokenized_requests=False"
        )
        task = ["--include_path", str(overrides), "--tasks", "gsm8k", "--num_fewshot", "5"]

        def sharded(out: str, early_stop: dict | None) -> float:
            job = {"model": "local-completions", "model_args": model_args, "tasks": ["gsm8k"], "num_fewshot": 5}
            job["task_dirs"] = ["gsm8k"]  # as the worker writes it (command.build): only its folder is indexed
            job |= {"include_path": str(overrides), "rules": {**RULES, "early_stop": early_stop}}
            path = work / f"{out}.json"
            path.write_text(json.dumps(job))
            return timed([sys.executable, "-m", "gate.checks.accuracy.sharded", str(path), str(work / out)])

        early = sharded("vllm-cs", {"alpha": 0.05})
        certain = sharded("vllm-cert", None)
        lm_eval = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", model_args]
        full = timed([*lm_eval, *task, "--output_path", str(work / "vllm-cli"), "--log_samples"])
    score = json.loads(next((work / "vllm-cli").rglob("results_*.json")).read_text())["results"]["gsm8k"]
    print(f"tiny random model on vLLM (CPU), full CLI run: {full:7.1f} s (score {score[RULES['metric']]:.4f})")
    for name, seconds, out in (("early_stop alpha 0.05", early, "vllm-cs"), ("certainty only", certain, "vllm-cert")):
        stopped = json.loads(next((work / out).rglob("results_*.json")).read_text())["stopped"]
        print(
            f"tiny random model on vLLM (CPU), sharded, {name}: {seconds:7.1f} s, stopped at {stopped['at']} of "
            f"{stopped['of']} ({stopped['rule']}): {full / seconds:.1f}x sooner"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vllm", action="store_true", help="the tiny random model on vLLM's CPU build")
    vllm = parser.parse_args().vllm
    work = Path(tempfile.mkdtemp(prefix="ttv-"))
    tiny = build(work / "tiny", GSM8K)
    overrides = write_overrides({"gsm8k": GSM8K}, work / "tasks", work / "mirror").include_path
    if vllm:
        broken_vllm(work, tiny, overrides)
        return
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
            job["task_dirs"] = ["gsm8k"]  # as the worker writes it (command.build): only its folder is indexed
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
