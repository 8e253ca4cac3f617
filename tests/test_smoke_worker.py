"""Smoke runs for real: a gate server, a `gate worker` process, the hf backend generating with the tiny Qwen3 in a
process of its own; and a cancel that stops that process."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from gate.checks.smoke import spec
from tests import smoke_models
from tests.conftest import wait_until
from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import stop

GENERATE = "gate.checks.smoke.generate"


def smoke_run(api: Api, model: str, **sampling: object) -> dict:
    created = api.http.post(
        "/api/v1/smoke/runs", json={"model": model, "sampling": sampling}, headers=api.headers["submit"]
    )
    assert created.status_code == 201, created.text
    return created.json()


def generating(worker: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in worker.children(recursive=True):
        try:
            if GENERATE in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; the store: API tests, both
def test_a_worker_generates_the_cards_prompts_and_the_server_judges(
    database_url: str, tmp_path: Path, tiny_model: Path
) -> None:
    silent = smoke_models.silent(tiny_model, tmp_path / "silent")
    work = tmp_path / "w1"
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], work)
        try:
            passed = api.wait(smoke_run(api, str(tiny_model), max_tokens=16, seed=11)["id"])
            failed = api.wait(smoke_run(api, str(silent), max_tokens=16, temperature=0)["id"])
            got = api.http.get(f"/api/v1/runs/{passed['id']}/smoke", headers=api.headers["admin"]).json()
            silence = api.http.get(f"/api/v1/runs/{failed['id']}/smoke", headers=api.headers["admin"]).json()
        finally:
            stop(worker)

    assert passed["status"] == "succeeded" and passed["verdict"] == "pass", passed
    assert passed["kind"] == "smoke" and passed["attempts"] == 1 and passed["files"] == ["smoke.json"]
    assert passed["model_fingerprint"] and passed["environment"]["device"]["kind"] == "cpu"
    assert got["outcome"] == "pass" and got["reasons"] == ["all 4 prompt(s) produced output."]
    report = got["report"]
    # what the server stored is what the generating process wrote, byte for byte of every text
    written = json.loads((work / "smoke" / str(passed["id"]) / "report.json").read_text())
    assert report == written
    assert [o["prompt"] for o in report["outputs"]] == list(spec.CARD_PROMPTS)
    assert all(o["text"] and o["completion_tokens"] >= 1 for o in report["outputs"])
    assert all(o["prompt_tokens"] > 10 for o in report["outputs"])  # the chat template's markers and the prompt
    assert report["backend"] == "hf" and report["device_kind"] == "cpu"
    assert report["sampling"] == {
        "temperature": 0.7,
        "max_tokens": 16,
        "top_p": 1.0,  # the tiny model's generation_config.json sets no sampling: the neutral values
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "seed": 11,
    }
    config = report["model_config"]["config"]
    assert config["architectures"] == ["Qwen3ForCausalLM"] and config["dtype"] == "float32"
    assert (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]) == (64, 128, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["vocab_size"]) == (4, 2, 2048)
    assert config["rope_theta"] == 10000.0  # transformers 5 writes it under rope_parameters
    assert config["rms_norm_eps"] == 1e-6 and config["tie_word_embeddings"] is False
    assert report["model_config"]["generation_config"] == json.loads(
        (tiny_model / "generation_config.json").read_text()
    )
    assert report["versions"]["torch"] and report["versions"]["transformers"]

    assert failed["status"] == "succeeded" and failed["verdict"] == "fail", failed
    assert silence["reasons"][1] == 'prompt 2 ("2+2等于多少?只需给出数字。") produced no output.'
    assert failed["verdict_reason"] == " ".join(silence["reasons"])
    assert [o["completion_tokens"] for o in silence["report"]["outputs"]] == [1, 1, 1, 1]  # the stop token alone


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cancel_stops_the_generating_process(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], tmp_path / "w1")
        try:
            run = smoke_run(api, str(tiny_model), max_tokens=4000)
            running = wait_until(lambda: generating(psutil.Process(worker.pid)), timeout=120)
            cancelled = api.http.post(f"/api/v1/runs/{run['id']}/cancel", headers=api.headers["submit"])
            assert cancelled.status_code == 200, cancelled.text
            wait_until(lambda: not any(p.is_running() and p.status() != "zombie" for p in running), 15)
            assert generating(psutil.Process(worker.pid)) == []
            final = api.run(run["id"])
        finally:
            stop(worker)
    assert final["status"] == "cancelled" and final["verdict"] is None and final["files"] == []
