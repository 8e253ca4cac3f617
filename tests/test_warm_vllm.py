"""A warm engine on vLLM's CPU build (marked vllm: GATE_VLLM_PYTHON): one `gate worker --backend vllm --warm-engine`
starts one vLLM server for two accuracy runs, a smoke run, an alignment probe and a serving run of the tiny Qwen3;
replaces it for other engine arguments (the old process group gone first), starts a killed one again, fails a run
whose engine cannot start as infrastructure, and stops it when drained."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from gate.worker.warm import group_members
from tests.processes import Api, server, worker_process

pytestmark = pytest.mark.vllm
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
SERVER = "vllm.entrypoints.openai.api_server"


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    return python


def accuracy(model: Path, max_gen_toks: int, max_model_len: int = 512) -> dict[str, Any]:
    """A small GSM8K run; max_gen_toks differs per run so that lm-eval's response cache answers none of it."""
    return {
        "model": str(model),
        "backend": "vllm",
        "tasks": ["gsm8k"],
        "options": {
            "limit": 4,
            "num_fewshot": 2,
            "gen_kwargs": {"max_gen_toks": max_gen_toks},
            "model_args": {"dtype": "float32", "max_model_len": max_model_len, "enforce_eager": True},
        },
    }


def timed(api: Api, body: dict[str, Any], timeout: float = 900) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    run = api.wait(api.submit(**body)["id"], timeout=timeout)
    return run, time.monotonic() - started


def servers(worker: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in worker.children(recursive=True):
        try:
            if SERVER in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def completions(work_dir: Path) -> int:
    """Requests the first warm server answered on /v1/completions (its access log)."""
    return (work_dir / "warm" / "engine-1.log").read_text().count("POST /v1/completions")


def test_one_engine_serves_a_models_runs_and_is_replaced_restarted_and_stopped(
    vllm_python: str, tiny_model: Path, tmp_path: Path
) -> None:
    # one attempt per run: the engine that cannot start fails once, not three times over (each a vLLM import)
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path, max_attempts="1") as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        process = worker_process(
            s.url, token, tmp_path / "warm", backend="vllm", name="warm", python=vllm_python, env=VLLM_ENV,
            extra=("--warm-engine", "--warm-idle-s", "600"),
        )  # fmt: skip
        worker = psutil.Process(process.pid)
        try:
            first, first_s = timed(api, accuracy(tiny_model, 16))
            assert first["status"] == "succeeded", first["failure_reason"]
            [engine] = servers(worker)
            second, second_s = timed(api, accuracy(tiny_model, 17))
            smoke = api.http.post(
                "/api/v1/smoke/runs",
                json={"model": str(tiny_model), "backend": "vllm", "dtype": "float32",
                      "engine_args": {"max_model_len": 512, "enforce_eager": True},
                      "sampling": {"temperature": 0, "max_tokens": 8}},
                headers=api.headers["submit"],
            )  # fmt: skip
            assert smoke.status_code == 201, smoke.text
            smoked = api.wait(smoke.json()["id"], timeout=600)
            assert servers(worker) == [engine]
            probe = api.http.post(
                "/api/v1/alignment/runs",
                json={"candidate": {"model": str(tiny_model), "backend": "vllm", "dtype": "float32",
                                    "engine_args": {"max_model_len": 512, "enforce_eager": True}},
                      "probes": {"set": "texts", "texts": ["Natalia sold clips to 48 of her friends.", "2 + 3 = 5"]}},
                headers=api.headers["submit"],
            )  # fmt: skip
            assert probe.status_code == 201, probe.text
            before = completions(tmp_path / "warm")
            aligned = api.wait(probe.json()["id"], timeout=600)
            asked = completions(tmp_path / "warm") - before
            assert servers(worker) == [engine]
            measured = api.http.post(
                "/api/v1/serving/runs",
                json={"model": str(tiny_model), "backend": "vllm", "rounds": 1, "num_prompts": 4,
                      "engine_args": {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}},
                headers=api.headers["submit"],
            )  # fmt: skip
            assert measured.status_code == 201, measured.text
            benched = api.wait(measured.json()["id"], timeout=600)
            assert servers(worker) == [engine]
            serving = api.http.get(f"/api/v1/runs/{benched['id']}/serving", headers=api.headers["admin"]).json()

            old_group = os.getpgid(engine.pid)
            other, _ = timed(api, accuracy(tiny_model, 16, max_model_len=384))
            assert other["status"] == "succeeded", other["failure_reason"]
            assert not group_members(old_group)
            [replaced] = servers(worker)
            assert replaced.pid != engine.pid

            os.kill(replaced.pid, signal.SIGKILL)
            restarted, _ = timed(api, accuracy(tiny_model, 18, max_model_len=384))
            assert restarted["status"] == "succeeded", restarted["failure_reason"]
            [again] = servers(worker)
            groups = [os.getpgid(replaced.pid) if replaced.is_running() else replaced.pid, os.getpgid(again.pid)]

            broken, _ = timed(api, accuracy(tiny_model, 16, max_model_len=100_000))  # beyond the model's 4096
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
    log = (tmp_path / "worker-warm.log").read_text()

    ran = (first, second, smoked, aligned, benched, other, restarted)
    for run in ran:
        assert run["status"] == "succeeded", run["failure_reason"]
    used = {run["id"]: run["environment"]["warm_engine"] for run in ran}
    print(f"first run {first_s:.1f} s, second {second_s:.1f} s; warm engines {used}")
    for run in (first, second, smoked, aligned, benched):
        assert used[run["id"]]["used"] and used[run["id"]]["started_for_run"] == first["id"]
    assert used[first["id"]]["up_s"] < used[second["id"]]["up_s"] < used[smoked["id"]]["up_s"]
    # the probe's vLLM side asked the warm server for prompt logprobs: float32 on both sides, so it passes
    assert aligned["verdict"] == "pass"
    assert asked >= 2  # the probe's texts went to the warm server (none would, were it an in-process engine)
    # a serving run on the warm engine reads the engine's start-up figures from the log it has kept since
    figures = serving["report"]["server"]
    assert figures["kv_cache_tokens"] and figures["kv_cache_tokens"] > 512 and figures["engine_init_s"] is not None
    start_s = used[first["id"]]["start_s"]
    assert start_s > 5
    assert second_s < first_s - 0.7 * start_s  # the second run did not pay for the engine's start
    assert used[other["id"]]["started_for_run"] == other["id"]
    assert used[restarted["id"]]["started_for_run"] == restarted["id"]
    commands = first["environment"]["commands"]
    assert any(SERVER in command["argv"] for command in commands)  # the server's command is the run's to reproduce

    # one start per engine, each old one stopped before the next started
    events = [line for line in log.splitlines() if "warm engine: starting" in line or "warm engine: stopped" in line]
    kinds = ["start" if "starting" in line else "stop" for line in events]
    assert kinds[:3] == ["start", "stop", "start"], events
    # the killed engine was noticed (as exited, or as not answering when a child outlived it) and started again
    assert f"starting it again for run {restarted['id']}" in log

    assert broken["status"] == "failed" and broken["failure_kind"] == "infrastructure", broken
    assert broken["failure_reason"].startswith("the warm vLLM server exited")
    # drained: no server of any engine is left
    assert process.returncode == 0
    assert not [pid for group in groups for pid in group_members(group)]
