"""vLLM for real, on its CPU build: `--model vllm` through a gate worker, and a worker against a running
vLLM OpenAI-compatible server. Runs in the environment `make test-vllm` builds (GATE_VLLM_PYTHON)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Api, free_port, server, worker_process

pytestmark = pytest.mark.vllm
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    return python


@pytest.fixture(scope="module")
def vllm_server(vllm_python: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM OpenAI-compatible server on loopback, serving the tiny model as `tiny`."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    process = subprocess.Popen(
        [
            vllm_python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(tiny_model),
            "--served-model-name",
            "tiny",
            "--dtype",
            "float32",
            "--max-model-len",
            "2048",
            "--enforce-eager",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **VLLM_ENV},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        else:
            raise TimeoutError(f"vLLM's server was not healthy after 240 s: {log.read_text()[-3000:]}")
        yield f"{base}/v1"
    finally:
        process.terminate()
        process.wait(60)


def vllm_worker(python: str, server_url: str, token: str, work: Path, backend: str, *extra: str) -> subprocess.Popen:
    return worker_process(
        server_url, token, work, backend=backend, name=backend, extra=extra, python=python, env=VLLM_ENV
    )


def run_body(model: Path, backend: str) -> dict:
    return {
        "model": str(model),
        "backend": backend,
        "tasks": ["gsm8k"],
        "options": {
            "limit": 4,
            "num_fewshot": 5,
            "gen_kwargs": {"max_gen_toks": 32},
            "model_args": {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True},
        },
    }


def test_vllm_in_process_and_openai_server_agree(
    vllm_python: str, vllm_server: str, tiny_model: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path) as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        engine = vllm_worker(vllm_python, s.url, token, tmp_path / "vllm", "vllm")
        remote = vllm_worker(
            vllm_python,
            s.url,
            token,
            tmp_path / "openai",
            "openai",
            "--openai-base-url",
            vllm_server,
            "--openai-model",
            "tiny",
            "--openai-tokenizer",
            str(tiny_model),
        )
        try:
            in_process = api.wait(api.submit(**run_body(tiny_model, "vllm"))["id"], timeout=900)
            served = api.wait(api.submit(**run_body(tiny_model, "openai"))["id"], timeout=900)
            samples = {
                run["id"]: api.http.get(f"/api/v1/runs/{run['id']}/samples", headers=api.headers["admin"]).json()
                for run in (in_process, served)
            }
        finally:
            for worker in (engine, remote):
                worker.terminate()
                worker.wait(60)
    assert in_process["status"] == "succeeded", in_process["failure_reason"]
    assert served["status"] == "succeeded", served["failure_reason"]
    assert in_process["eval_profile"]["gsm8k"]["model"] == "vllm"
    assert served["eval_profile"]["gsm8k"]["model"] == "local-completions"
    assert in_process["environment"]["versions"]["vllm"].startswith("0.32.0")
    scores = {run["id"]: {s["metric"]: s["value"] for s in run["scores"]} for run in (in_process, served)}
    assert scores[in_process["id"]] == scores[served["id"]]
    assert [s["filtered_answer"] for s in samples[in_process["id"]]] == [
        s["filtered_answer"] for s in samples[served["id"]]
    ]
