"""HumanEval for real through a sandboxed worker: lm-eval's `local-completions` against a loopback server, every
program scored in gate.worker.sandbox, and the worker alive after hostile programs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.lmeval_runs import humaneval_data, humaneval_server
from tests.processes import Api, sandboxed_processes, server, worker_process
from tests.test_worker_e2e import stop

pytestmark = pytest.mark.lmeval


def humaneval_run(model: str, **options: object) -> dict:
    return {
        "model": model,
        "backend": "openai",
        "tasks": ["humaneval"],
        "baseline": "qwen3-4b-thinking-2507",
        "options": options,
    }


def test_canonical_solutions_pass_and_hostile_programs_are_cut(tmp_path: Path, tiny_model: Path) -> None:
    data = humaneval_data(tmp_path / "humaneval")
    with humaneval_server(data) as code, server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        api = Api(s)
        worker = worker_process(
            s.url,
            api.headers["worker"]["Authorization"].split()[1],
            tmp_path / "w1",
            backend="openai",
            labels=("sandboxed",),
            extra=(
                "--local-data",
                f"humaneval={data}",
                "--openai-base-url",
                code.base_url,
                "--openai-tokenizer",
                str(tiny_model),
            ),
        )
        try:
            runs = {}
            for model, options in (("canonical", {}), ("hostile", {"limit": 6})):
                queued = api.http.post(
                    "/api/v1/runs", json=humaneval_run(model, **options), headers=api.headers["admin"]
                )
                assert queued.status_code == 202, queued.text
                assert "sandboxed" in queued.json()["labels"]
                started = time.monotonic()
                runs[model] = api.wait(queued.json()["id"], timeout=600)
                print(f"{model}: {time.monotonic() - started:.0f} s")
            assert worker.poll() is None  # the worker survived every program
        finally:
            stop(worker)
    canonical, hostile = runs["canonical"], runs["hostile"]
    assert canonical["status"] == "succeeded", canonical
    assert {(x["metric"], x["value"], x["n_samples"]) for x in canonical["scores"]} == {
        ("pass@1,create_test", 1.0, 164)
    }
    assert hostile["status"] == "succeeded", hostile
    assert {(x["metric"], x["value"], x["n_samples"]) for x in hostile["scores"]} == {("pass@1,create_test", 0.0, 6)}
    assert "--confirm_run_unsafe_code" in json.dumps(hostile)  # the command it ran, as the run reports it
    assert not sandboxed_processes()  # nothing any program started is left
