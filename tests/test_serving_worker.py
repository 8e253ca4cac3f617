"""The serving worker's parts that need no vLLM: the server's command line and environment per device, the
readiness wait against a real HTTP server, and a running server's version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gate.checks.serving import launch, ready, spec
from gate.checks.serving.worker import served_version
from gate.worker.config import WorkerConfig

VLLM_PYTHON = "/opt/vllm/bin/python"


class Answers(BaseHTTPRequestHandler):
    """/health answers 200; /version says 0.32.0; anything else is 404."""

    def do_GET(self) -> None:
        body = {"/health": b"", "/version": json.dumps({"version": "0.32.0"}).encode()}.get(self.path)
        self.send_response(404 if body is None else 200)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_server_is_vllms_openai_server_with_the_specs_engine_arguments(tmp_path: Path) -> None:
    checked = spec.check({"model": "/m", "engine_args": {"max_model_len": 512, "enforce_eager": True}})
    config = WorkerConfig(backend="vllm", python=VLLM_PYTHON, extra_env={"OMP_NUM_THREADS": "1"})
    invocation = launch.server(checked, "/models/m", config, 8123, tmp_path)
    assert invocation.argv == [
        VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/m",
        "--served-model-name", "gate-served", "--host", "127.0.0.1", "--port", "8123",
        "--max-model-len", "512", "--enforce-eager",
    ]  # fmt: skip
    assert invocation.env["VLLM_CPU_KVCACHE_SPACE"] == "1"  # or vLLM's CPU build refuses to start on a small host
    assert invocation.env["HF_HUB_OFFLINE"] == "1" and invocation.env["OMP_NUM_THREADS"] == "1"


def test_the_workers_own_settings_win_over_the_defaults(tmp_path: Path) -> None:
    config = WorkerConfig(backend="vllm", extra_env={"VLLM_CPU_KVCACHE_SPACE": "8"})
    invocation = launch.server(spec.check({"model": "/m"}), "/m", config, 1, tmp_path)
    assert invocation.env["VLLM_CPU_KVCACHE_SPACE"] == "8"


def test_the_npu_is_selected_as_the_model_card_serves_it() -> None:
    checked = spec.check({"model": "/m", "backend": "vllm-ascend", "device": "npu:0,1"})
    assert launch.device_env(checked, WorkerConfig(backend="vllm-ascend")) == {
        "VLLM_ASCEND_RT_DEVICES": "0,1",
        "ASCEND_RT_VISIBLE_DEVICES": "0,1",
        "TASK_QUEUE_ENABLE": "1",
        "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True",
    }
    # without ids in the spec, the worker's own devices
    default = launch.device_env(spec.check({"model": "/m", "backend": "vllm-ascend"}), WorkerConfig("x", devices=(3,)))
    assert default["VLLM_ASCEND_RT_DEVICES"] == "3"


def test_cuda_devices_are_the_specs_ids() -> None:
    checked = spec.check({"model": "/m", "device": "cuda:1"})
    assert launch.device_env(checked, WorkerConfig(backend="vllm", devices=(0,))) == {"CUDA_VISIBLE_DEVICES": "1"}


def test_a_bench_round_writes_its_json_where_the_worker_reads_it(tmp_path: Path) -> None:
    checked = spec.check({"model": "/m", "profile": "sweep", "concurrencies": [1, 2]})
    config = WorkerConfig(backend="vllm", python=VLLM_PYTHON)
    result = tmp_path / "results" / "c2-r1.json"
    invocation = launch.bench(checked, 2, "http://127.0.0.1:9", "gate-served", "/m", config, result)
    assert invocation.argv[:5] == [VLLM_PYTHON, "-m", "vllm.entrypoints.cli.main", "bench", "serve"]
    args = invocation.argv[5:]
    assert args[args.index("--result-dir") + 1] == str(tmp_path / "results")
    assert args[args.index("--result-filename") + 1] == "c2-r1.json"
    assert invocation.output_dir != result.parent  # the process's own folder is emptied at its start


def test_the_wait_ends_when_the_server_answers_health(http: str) -> None:
    assert ready.wait(f"{http}/health", os.getpid(), 30.0) == ready.READY


def test_the_wait_ends_when_the_servers_process_has_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    done = subprocess.run(
        [sys.executable, "-m", "gate.checks.serving.ready", "http://127.0.0.1:9/health", str(gone.pid), "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (ready.SERVER_GONE, "the server exited")


def test_a_running_servers_version_is_asked_of_it(http: str) -> None:
    assert served_version(http) == "0.32.0"
    assert served_version(f"{http}/elsewhere") is None
