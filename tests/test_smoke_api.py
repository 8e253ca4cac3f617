"""Smoke runs through the API: submission, the worker's upload checked and judged on the server, reading back.
Reports are what the hf backend really generated for the tiny Qwen3 and its silent variant (tests/smoke_models.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gate.checks.smoke import spec
from tests import smoke_models

SAMPLING = {"max_tokens": 16, "temperature": 0.7, "seed": 7}  # smoke_models.real_report's


@pytest.fixture(scope="module")
def silent_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(smoke_models.silent(tiny_model, tmp_path_factory.mktemp("smoke-silent") / "silent"))


def submit_and_claim(client: TestClient, auth: dict, model: str, **extra: Any) -> tuple[dict, dict]:
    body = {"model": model, "sampling": SAMPLING, **extra}
    created = client.post("/api/v1/smoke/runs", json=body, headers=auth["submit"])
    assert created.status_code == 201, created.text
    claimed = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=auth["worker"]
    )
    assert claimed.status_code == 200, claimed.text
    return created.json(), claimed.json()


def upload(client: TestClient, auth: dict, run_id: int, lease: str, report: dict) -> Any:
    body = {"lease": lease, "report": report, "environment": {"python": "3.11"}}
    return client.post(f"/api/v1/workers/runs/{run_id}/smoke", json=body, headers=auth["worker"])


def test_a_smoke_run_is_queued_claimed_judged_and_served(client: TestClient, auth: dict, tiny_model: Path) -> None:
    run, claimed = submit_and_claim(client, auth, str(tiny_model), priority=3)
    assert run["kind"] == "smoke" and run["tasks"] == [] and run["backend"] == "hf" and run["status"] == "queued"
    assert run["options"] == spec.check({"model": str(tiny_model), "sampling": SAMPLING})
    assert claimed["kind"] == "smoke" and claimed["options"] == run["options"] and claimed["run_id"] == run["id"]

    generated = smoke_models.real_report(str(tiny_model))
    done = upload(client, auth, run["id"], claimed["lease"], generated)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "succeeded" and done.json()["verdict"] == "pass"

    got = client.get(f"/api/v1/runs/{run['id']}/smoke", headers=auth["read"])
    assert got.status_code == 200
    assert got.json() == {
        "run_id": run["id"],
        "outcome": "pass",
        "reasons": ["all 4 prompt(s) produced output."],
        "report": generated,
    }
    first = got.json()["report"]["outputs"][0]
    assert first["prompt"] == "What is the capital of France?" and first["text"] and first["completion_tokens"] == 16
    assert got.json()["report"]["model_config"]["config"]["hidden_size"] == 64
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=auth["read"]).json()
    assert detail["files"] == ["smoke.json"] and detail["verdict_reason"] is None
    artifact = client.get(f"/api/v1/runs/{run['id']}/files/smoke.json", headers=auth["read"])
    assert artifact.status_code == 200 and artifact.json() == generated


def test_a_model_that_says_nothing_fails_and_the_reasons_name_each_prompt(
    client: TestClient, auth: dict, silent_model: str
) -> None:
    run, claimed = submit_and_claim(client, auth, silent_model, sampling={**SAMPLING, "temperature": 0})
    generated = smoke_models.real_report(silent_model, temperature=0.0)
    done = upload(client, auth, run["id"], claimed["lease"], generated)
    assert done.status_code == 200, done.text
    assert done.json()["verdict"] == "fail"
    got = client.get(f"/api/v1/runs/{run['id']}/smoke", headers=auth["read"]).json()
    assert got["outcome"] == "fail" and len(got["reasons"]) == 4
    assert got["reasons"][0] == 'prompt 1 ("What is the capital of France?") produced no output.'
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=auth["read"]).json()
    assert detail["status"] == "succeeded" and detail["verdict_reason"] == " ".join(got["reasons"])


def test_a_bad_upload_is_one_sentence_and_the_lease_is_checked_first(
    client: TestClient, auth: dict, tiny_model: Path
) -> None:
    run, claimed = submit_and_claim(client, auth, str(tiny_model))
    generated = smoke_models.real_report(str(tiny_model))
    negative = {
        **generated,
        "outputs": [{**generated["outputs"][0], "completion_tokens": -1}, *generated["outputs"][1:]],
    }
    refused = upload(client, auth, run["id"], claimed["lease"], negative)
    assert refused.status_code == 422
    assert refused.json()["detail"] == "outputs[0].completion_tokens must be a non-negative integer, got -1."
    assert refused.json()["field"] == "report"
    short = {**generated, "outputs": generated["outputs"][:3]}
    refused = upload(client, auth, run["id"], claimed["lease"], short)
    assert refused.json()["detail"] == "outputs must be a list of 4 entries, one per prompt of the spec."
    stale = upload(client, auth, run["id"], "not-the-lease", negative)  # a bad report too: the lease speaks first
    assert stale.status_code == 409

    assert upload(client, auth, run["id"], claimed["lease"], generated).json()["status"] == "succeeded"
    replay = upload(client, auth, run["id"], claimed["lease"], generated)
    assert replay.status_code == 200 and replay.json()["status"] == "succeeded"
    other = {**generated, "outputs": [{**o, "prompt_tokens": o["prompt_tokens"] + 1} for o in generated["outputs"]]}
    assert upload(client, auth, run["id"], claimed["lease"], other).status_code == 409


def test_an_upload_for_another_kind_of_run_is_refused(client: TestClient, auth: dict, tiny_model: Path) -> None:
    created = client.post(
        "/api/v1/alignment/runs", json={"candidate": {"model": str(tiny_model)}}, headers=auth["submit"]
    )
    assert created.status_code == 201, created.text
    claimed = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=auth["worker"]
    )
    run_id = claimed.json()["run_id"]
    refused = upload(client, auth, run_id, claimed.json()["lease"], smoke_models.real_report(str(tiny_model)))
    assert refused.status_code == 422
    assert refused.json()["detail"] == f"run {run_id} is an alignment run, not a smoke run"
    missing = client.get(f"/api/v1/runs/{run_id}/smoke", headers=auth["read"])
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"run {run_id} has no smoke report (an alignment run, running)"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"backend": "tgi"}, "backend must be one of hf, vllm, vllm-ascend, openai, not 'tgi'."),
        ({"prompts": []}, "prompts must be a list of 1 to 32 strings."),
        ({"sampling": {"temperature": 3}}, "sampling.temperature must be a number from 0 to 2, got 3."),
        ({"engine_args": {"base_url": "http://10.0.0.1:8000"}}, "engine_args.base_url is not allowed"),
        ({"backend": "openai", "base_url": "http://10.0.0.1:8000"}, "base_url"),  # only the worker names a server
    ],
)
def test_a_bad_submission_is_one_sentence(client: TestClient, auth: dict, body: dict, said: str) -> None:
    answer = client.post("/api/v1/smoke/runs", json={"model": "/models/tiny", **body}, headers=auth["submit"])
    assert answer.status_code == 422, answer.text
    assert said in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_trust_remote_code_needs_an_admin(client: TestClient, auth: dict) -> None:
    body = {"model": "/models/tiny", "engine_args": {"trust_remote_code": True}}
    refused = client.post("/api/v1/smoke/runs", json=body, headers=auth["submit"])
    assert refused.status_code == 403 and refused.json()["detail"] == "trust_remote_code needs an admin token"
    assert client.post("/api/v1/smoke/runs", json=body, headers=auth["admin"]).status_code == 201
