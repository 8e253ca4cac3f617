"""The whole path for real: a gate server, `gate worker` processes, lm-eval `hf` on the tiny Qwen3."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest

from tests.processes import Api, server, worker_process

pytestmark = pytest.mark.lmeval
BASELINE = "qwen3-4b-thinking-2507"


def smoke_run(model: Path, limit: int = 4, max_gen_toks: int = 16, **extra: object) -> dict:
    return {
        "model": str(model),
        "backend": "hf",
        "tasks": ["gsm8k"],
        "baseline": BASELINE,
        "options": {
            "limit": limit,
            "num_fewshot": 5,
            "batch_size": 4,
            "gen_kwargs": {"max_gen_toks": max_gen_toks},
            "model_args": {"dtype": "float32"},
        },
        **extra,
    }


def lm_eval_children(worker: psutil.Process) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and "lm_eval" in p.info["cmdline"] and p.pid != worker.pid and _descends(p, worker.pid)
    ]


def _descends(process: psutil.Process, ancestor: int) -> bool:
    try:
        return any(parent.pid == ancestor for parent in process.parents())
    except psutil.NoSuchProcess:
        return False


def stop(*processes) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except Exception:
            p.kill()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; the store: API tests, both
def test_worker_runs_a_real_evaluation(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], tmp_path / "w1")
        try:
            queued = api.submit(**smoke_run(tiny_model))
            run = api.wait(queued["id"])
            samples = api.http.get(f"/api/v1/runs/{run['id']}/samples", headers=api.headers["admin"]).json()
        finally:
            stop(worker)
    assert run["status"] == "succeeded", run
    assert run["verdict"] == "not_comparable" and run["attempts"] == 1
    assert any("limit=4" in r for r in run["verdicts"][0]["details"]["reasons"])
    assert {s["metric"] for s in run["scores"]} == {"exact_match,strict-match", "exact_match,flexible-extract"}
    assert all(s["n_samples"] == 4 for s in run["scores"])
    profile = run["eval_profile"]["gsm8k"]
    assert profile["num_fewshot"] == 5 and profile["limit"] == 4 and profile["generation_kwargs"]["max_gen_toks"] == 16
    assert profile["model"] == "hf" and profile["task_hash"]
    env = run["environment"]
    assert env["device"]["kind"] == "cpu" and env["versions"]["lm_eval"] == "0.4.13" and env["python"]
    assert run["generation"]["gsm8k"]["answers"] == 4 and run["generation"]["gsm8k"]["max_gen_toks"] == 16
    tail = run["log_tail"].splitlines()  # lm-eval's log up to its end: the results table, strict-match last
    assert "Running generate_until requests" in run["log_tail"]
    assert tail[-2].startswith("|gsm8k|") and tail[-1].startswith("|     |       |strict-match")
    assert run["progress"] == {"done": 4, "total": 4}
    assert len(samples) == 8 and all(s["question"] for s in samples)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; the store: API tests, both
def test_user_errors_are_not_retried(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], tmp_path / "w1")
        try:
            missing = api.wait(api.submit(**smoke_run(tmp_path / "no-such-model"))["id"])
        finally:
            stop(worker)
    assert missing["status"] == "failed" and missing["attempts"] == 1
    assert missing["failure_kind"] == "user" and "does not exist" in missing["failure_reason"]
    assert missing["verdict"] is None
