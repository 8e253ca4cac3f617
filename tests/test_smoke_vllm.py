"""Smoke outputs on vLLM's CPU build (marked vllm: GATE_VLLM_PYTHON): a gate worker with the in-process engine and
one against a real vLLM OpenAI-compatible server generate the card's prompts greedily from the tiny Qwen3, and give
transformers' own greedy text."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import smoke_models
from tests.processes import Api, free_port, server, worker_process
from tests.test_worker_e2e import stop

pytestmark = pytest.mark.vllm
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
GREEDY = {"temperature": 0, "max_tokens": 16}


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    return python


@pytest.fixture(scope="module")
def vllm_server(vllm_python: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI-compatible server on loopback, serving the tiny model as `tiny`."""
    port = free_port()
    log = tmp_path_factory.mktemp("smoke-vllm-server") / "server.log"
    argv = [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model)]
    argv += ["--served-model-name", "tiny", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, env={**os.environ, **VLLM_ENV}, stdout=log.open("wb"), stderr=subprocess.STDOUT)
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


def smoke_run(api: Api, body: dict) -> dict:
    created = api.http.post("/api/v1/smoke/runs", json=body, headers=api.headers["submit"])
    assert created.status_code == 201, created.text
    return created.json()


def test_the_engine_and_the_server_give_transformers_greedy_text(
    vllm_python: str, vllm_server: str, tiny_model: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path) as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        engine = worker_process(
            s.url, token, tmp_path / "vllm", backend="vllm", name="vllm", python=vllm_python, env=VLLM_ENV
        )
        remote_flags = (
            "--openai-base-url",
            vllm_server,
            "--openai-model",
            "tiny",
            "--openai-tokenizer",
            str(tiny_model),
        )
        remote = worker_process(
            s.url, token, tmp_path / "openai", backend="openai", name="openai", extra=remote_flags,
            python=vllm_python, env=VLLM_ENV,
        )  # fmt: skip
        try:
            engine_args = {"max_model_len": 512, "enforce_eager": True}
            in_process = smoke_run(
                api,
                {
                    "model": str(tiny_model),
                    "backend": "vllm",
                    "dtype": "float32",
                    "engine_args": engine_args,
                    "sampling": GREEDY,
                },
            )
            served = smoke_run(api, {"model": "tiny", "backend": "openai", "sampling": GREEDY})
            runs = [api.wait(run["id"], timeout=900) for run in (in_process, served)]
            reports = [
                api.http.get(f"/api/v1/runs/{run['id']}/smoke", headers=api.headers["admin"]).json() for run in runs
            ]
        finally:
            stop(engine, remote)
    for run in runs:
        assert run["status"] == "succeeded" and run["verdict"] == "pass", run
    engine_report, server_report = (found["report"] for found in reports)
    reference = smoke_models.real_report(str(tiny_model), temperature=0.0, seed=None)  # transformers, greedy

    texts = [o["text"] for o in reference["outputs"]]
    assert [o["text"] for o in engine_report["outputs"]] == texts
    assert [o["text"] for o in server_report["outputs"]] == texts
    for found in (engine_report, server_report):
        assert [o["prompt_tokens"] for o in found["outputs"]] == [o["prompt_tokens"] for o in reference["outputs"]]
        assert [o["completion_tokens"] for o in found["outputs"]] == [16] * 4
        assert [o["finish_reason"] for o in found["outputs"]] == ["length"] * 4
    assert engine_report["versions"]["vllm"].startswith("0.32.0")
    assert server_report["versions"]["server"].startswith("0.32.0")  # the server's GET /version
    # the openai worker read the model's files from its --openai-tokenizer folder
    assert engine_report["model_config"] == server_report["model_config"] == reference["model_config"]
    assert engine_report["sampling"] == server_report["sampling"] == reference["sampling"]
    assert runs[0]["model_fingerprint"] and runs[1]["model_fingerprint"] is None
    assert json.dumps(engine_report["spec"]["engine_args"]) == json.dumps(engine_args)
