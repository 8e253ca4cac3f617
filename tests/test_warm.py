"""The warm engine's keying and lifecycle, without vLLM: the manager starts `config.python -m
vllm.entrypoints.openai.api_server ...`, here a tiny HTTP server answering /health on the given port (the seam;
test_warm_vllm.py runs the real engine)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from gate.checks.accuracy import command
from gate.runs.options import ModelArgs
from gate.worker import warm
from gate.worker.config import WorkerConfig

FAKE = """#!{python}
import http.server, os, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
if os.environ.get("FAKE_FAIL"):
    sys.exit("ValueError: cannot start")
time.sleep(float(os.environ.get("FAKE_DELAY", "0.3")))
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.fixture
def config(tmp_path: Path) -> WorkerConfig:
    fake = tmp_path / "python"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    return WorkerConfig(backend="vllm", work_dir=tmp_path / "work", python=str(fake), warm_engine=True)


def wanted(**args: object) -> warm.Wanted:
    return warm.Wanted("/models/m", "f" * 64, dict(args), {"VLLM_CPU_KVCACHE_SPACE": "1"})


def never() -> None:
    return None


def test_spelled_out_defaults_are_the_same_engine_and_other_arguments_another() -> None:
    config = WorkerConfig(backend="vllm")
    same = [wanted(), wanted(dtype="auto", tensor_parallel_size=1), wanted(gpu_memory_utilization=0.9, revision=None)]
    assert len({w.key("vllm", config) for w in same}) == 1
    assert wanted(dtype="float32").key("vllm", config) != wanted().key("vllm", config)
    assert wanted(max_model_len=512).key("vllm", config) != wanted(max_model_len=384).key("vllm", config)
    other_weights = warm.Wanted("/models/m", "e" * 64, {}, {"VLLM_CPU_KVCACHE_SPACE": "1"})
    assert other_weights.key("vllm", config) != wanted().key("vllm", config)
    # an accuracy run's model_args and a smoke run's dtype + engine_args name the same engine
    accuracy = command.engine_args("vllm", ModelArgs(dtype="float32", max_model_len=512, enforce_eager=True), config)
    smoke = {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}
    assert wanted(**accuracy).key("vllm", config) == wanted(**smoke).key("vllm", config)


def test_a_warm_engine_is_reused_and_lm_eval_asks_its_server(config: WorkerConfig) -> None:
    engines = warm.WarmEngines(config, idle_s=600)
    try:
        first = engines.ensure(wanted(max_model_len=512), 1, never)
        engines.release()
        second = engines.ensure(wanted(max_model_len=512), 2, never)
        engines.release()
        assert first is second and engines.starts == 1 and second.started_for_run == 1
        assert "--max-model-len" in first.invocation.argv and "--served-model-name" in first.invocation.argv
        on_it = WorkerConfig(backend="vllm", warm_base_url=first.base_url)
        model, args = command.model_args("vllm", "/models/m", ModelArgs(max_model_len=512), on_it)
        assert model == "local-completions"
        assert f"base_url={first.base_url}/v1/completions" in args and "tokenizer=/models/m" in args
        assert "model=gate-served" in args and "max_length=512" in args
        chat, _ = command.model_args("vllm", "/models/m", ModelArgs(), on_it, chat=True)
        assert chat == "local-chat-completions"
    finally:
        engines.stop()
    assert not warm.group_members(first.evaluation.process.pid)


def test_other_arguments_replace_the_engine_after_its_group_is_gone(config: WorkerConfig) -> None:
    engines = warm.WarmEngines(config, idle_s=600)
    try:
        old = engines.ensure(wanted(max_model_len=512), 1, never)
        engines.release()
        new = engines.ensure(wanted(max_model_len=384), 2, never)
        engines.release()
        assert new is not old and engines.starts == 2 and new.started_for_run == 2
        assert old.evaluation.poll() is not None and not warm.group_members(old.evaluation.process.pid)
    finally:
        engines.stop()


def test_an_idle_engine_is_stopped_and_a_busy_one_is_not(config: WorkerConfig) -> None:
    engines = warm.WarmEngines(config, idle_s=1.0)
    try:
        engine = engines.ensure(wanted(), 1, never)
        time.sleep(2.5)  # busy: the run holds it
        assert engines.engine is engine
        engines.release()
        deadline = time.monotonic() + 10
        while engines.engine is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engines.engine is None and not warm.group_members(engine.evaluation.process.pid)
    finally:
        engines.stop()


def test_a_dead_engine_is_started_again_and_one_that_cannot_start_fails(config: WorkerConfig) -> None:
    engines = warm.WarmEngines(config, idle_s=600)
    try:
        dead = engines.ensure(wanted(), 1, never)
        engines.release()
        os.kill(dead.evaluation.process.pid, 9)
        dead.evaluation.wait()
        again = engines.ensure(wanted(), 2, never)
        engines.release()
        assert again is not dead and again.started_for_run == 2
        broken = WorkerConfig(**{**config.__dict__, "extra_env": {"FAKE_FAIL": "1"}})
        failing = warm.WarmEngines(broken, idle_s=600)
        with pytest.raises(warm.EngineFailed) as failed:
            failing.ensure(wanted(dtype="float32"), 3, never)
        assert "cannot start" in failed.value.tail
        failing.stop()
    finally:
        engines.stop()


def test_a_drain_interrupts_a_start(config: WorkerConfig) -> None:
    slow = WorkerConfig(**{**config.__dict__, "extra_env": {"FAKE_DELAY": "30"}})
    engines = warm.WarmEngines(slow, idle_s=600)
    started = time.monotonic()
    with pytest.raises(warm.Interrupted, match="drained"):
        engines.ensure(wanted(), 1, lambda: "drained" if time.monotonic() - started > 1 else None)
    assert time.monotonic() - started < 10 and engines.engine is None
    engines.stop()
