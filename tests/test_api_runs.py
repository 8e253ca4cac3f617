"""The REST API on SQLite and Postgres: queueing, auth, idempotency, history, export, bad input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from gate.checks.accuracy.judge import delta_pp
from gate.settings import Settings
from tests.conftest import make_token

RUN = {
    "model": "Qwen/Qwen3-4B-Thinking-2507",
    "baseline": "qwen3-4b-thinking-2507",
    "tasks": ["gsm8k"],
    "backend": "vllm-ascend",
    "labels": ["ascend910b"],
}


def count_runs(client: TestClient, auth: dict) -> int:
    return len(client.get("/api/v1/runs", params={"limit": 200}, headers=auth["read"]).json()["runs"])


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/import",
        "/api/v1/baselines",
        "/api/v1/models/{name}/history",
        "/api/v1/workers/claim",
    ):
        assert path in paths


def test_queue_a_run(client: TestClient, auth: dict) -> None:
    response = client.post("/api/v1/runs", json=RUN, headers=auth["submit"])
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued" and run["baseline"] == "qwen3-4b-thinking-2507"
    assert response.headers["Location"] == f"/api/v1/runs/{run['id']}"
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=auth["read"]).json()
    assert detail["submitted_by"] == "submit" and detail["labels"] == ["ascend910b"]
    assert (detail["scores"], detail["verdicts"], detail["files"]) == ([], [], [])


def test_a_run_reads_back_its_numbers_exactly(client: TestClient, auth: dict) -> None:
    """Scores and deltas come back bit for bit, whichever way the database hands a run's children over."""
    strict, stderr = 927 / 1319, 0.1 + 0.2  # 16 and 17 significant digits
    results = {
        "results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": strict,
                              "exact_match_stderr,strict-match": stderr}},
        "n-shot": {"gsm8k": 5}, "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
        "config": {"model": "vllm", "model_args": "pretrained=acme/port"}, "lm_eval_version": "0.4.13",
    }  # fmt: skip
    files = [("results", ("results_2026-12-07T10-00-00.json", json.dumps(results).encode(), "application/json"))]
    imported = client.post(
        "/api/v1/runs/import", files=files, data={"baseline": RUN["baseline"]}, headers=auth["submit"]
    )
    assert imported.status_code == 201, imported.text
    read = client.get(f"/api/v1/runs/{imported.json()['id']}", headers=auth["read"]).json()
    assert read == imported.json()
    (score,) = read["scores"]
    assert (score["value"], score["stderr"], score["n_samples"]) == (strict, stderr, 1319)
    (verdict,) = read["verdicts"]
    assert verdict["details"]["candidate"] == strict and verdict["delta_pp"] == float(delta_pp(strict, 0.703))
    assert read["files"] == ["results.json"]


def test_idempotency_key(client: TestClient, auth: dict) -> None:
    headers = {**auth["submit"], "Idempotency-Key": "pipeline-42"}
    first = client.post("/api/v1/runs", json=RUN, headers=headers)
    again = client.post("/api/v1/runs", json=RUN, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/api/v1/runs", json={**RUN, "tasks": ["mmlu"]}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert count_runs(client, auth) == 1


def test_auth(client: TestClient, auth: dict, settings: Settings) -> None:
    assert client.get("/api/v1/runs").status_code == 401
    assert client.post("/api/v1/runs", json=RUN).status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": "Basic abc"}).status_code == 401
    forbidden = client.post("/api/v1/runs", json=RUN, headers=auth["read"])
    assert forbidden.status_code == 403 and "'submit'" in forbidden.json()["detail"]
    assert (
        client.post(
            "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=auth["submit"]
        ).status_code
        == 403
    )
    assert count_runs(client, auth) == 0


def test_anonymous_reads_when_enabled(database_url: str) -> None:
    from gate.app import create_app

    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        assert client.get("/api/v1/runs").status_code == 200
        assert client.get("/api/v1/baselines").status_code == 200
        assert client.post("/api/v1/runs", json=RUN).status_code == 401


def test_code_executing_tasks_need_admin_and_a_sandbox(client: TestClient, auth: dict) -> None:
    body = {**RUN, "tasks": ["humaneval"]}
    refused = client.post("/api/v1/runs", json=body, headers=auth["submit"])
    assert refused.status_code == 403 and "humaneval" in refused.json()["detail"]
    accepted = client.post("/api/v1/runs", json=body, headers=auth["admin"])
    assert accepted.status_code == 202 and "sandboxed" in accepted.json()["labels"]
    trc = {**RUN, "options": {"model_args": {"trust_remote_code": True}}}
    assert client.post("/api/v1/runs", json=trc, headers=auth["submit"]).status_code == 403


def test_a_run_without_num_fewshot_runs_at_the_baselines_n_shot(client: TestClient, auth: dict) -> None:
    """lm-eval gives every task of a run one --num_fewshot, and MMLU's own default (0) is not the gated 5."""

    def submitted(**body: object):
        return client.post("/api/v1/runs", json={**RUN, **body}, headers=auth["admin"])

    def options(**body: object) -> dict:
        run_id = submitted(**body).json()["id"]
        return client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()["options"]

    assert options(tasks=["gsm8k", "mmlu"])["num_fewshot"] == 5
    assert options(tasks=["minerva_math"])["num_fewshot"] == 4
    assert options(tasks=["mmlu"], options={"num_fewshot": 0})["num_fewshot"] == 0  # asked for: kept
    assert "num_fewshot" not in options(tasks=["mmlu"], baseline=None)  # no baseline: lm-eval's own default
    before = count_runs(client, auth)
    mixed = submitted(tasks=["gsm8k", "humaneval", "minerva_math"])
    assert mixed.status_code == 422
    assert mixed.json()["detail"] == (
        "baseline 'qwen3-4b-thinking-2507' gates gsm8k 5-shot, humaneval 0-shot, minerva_math 4-shot, and lm-eval "
        "runs every task of a run at one num_fewshot: submit one run per n-shot, or a qualification, which runs "
        "each benchmark at its baseline's"
    )
    assert count_runs(client, auth) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**RUN, "baseline": "no-such-baseline"}, "baseline"),
        ({**RUN, "tasks": ["wikitext"]}, "tasks"),
        ({**RUN, "tasks": ["gsm8k; rm -rf /"]}, "tasks"),
        ({**RUN, "model": "Qwen/x,trust_remote_code=True"}, "model"),
        ({**RUN, "backend": "tpu"}, "backend"),
        (
            {**RUN, "options": {"model_args": {"revision": "main,trust_remote_code=True"}}},
            "options.model_args.revision",
        ),
        ({**RUN, "options": {"num_fewshot": -1}}, "options.num_fewshot"),
        ({**RUN, "options": {"profile": "nope"}}, "options.profile"),
        ({**RUN, "options": {"unknown_option": 1}}, "options.unknown_option"),
        # a run never names an address a worker would connect to: the openai server is the worker's own
        ({**RUN, "options": {"model_args": {"base_url": "http://10.0.0.1:8000/v1"}}}, "options.model_args.base_url"),
        ({**RUN, "labels": ["a b"]}, "labels"),
    ],
)
def test_bad_runs_are_refused_with_the_field(client: TestClient, auth: dict, body: dict, field: str) -> None:
    response = client.post("/api/v1/runs", json=body, headers=auth["submit"])
    assert 400 <= response.status_code < 500
    payload = response.json()
    assert field in (payload.get("field") or payload["detail"])
    assert count_runs(client, auth) == 0


def test_malformed_json_and_oversized_bodies(client: TestClient, auth: dict, settings: Settings) -> None:
    bad = client.post(
        "/api/v1/runs", content=b"{not json", headers={**auth["submit"], "Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    huge = b"x" * (settings.max_upload_bytes + 2 * 1024 * 1024)
    too_big = client.post("/api/v1/runs", content=huge, headers={**auth["submit"], "Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert count_runs(client, auth) == 0


def test_history_filters_and_cursor(client: TestClient, auth: dict) -> None:
    ids = [
        client.post("/api/v1/runs", json={**RUN, "model": f"m{i % 2}"}, headers=auth["submit"]).json()["id"]
        for i in range(5)
    ]
    unjudged = {k: v for k, v in RUN.items() if k != "baseline"}
    other = client.post("/api/v1/runs", json=unjudged, headers=auth["submit"]).json()["id"]
    named = client.get("/api/v1/runs", params={"baseline": RUN["baseline"]}, headers=auth["read"]).json()["runs"]
    assert [r["id"] for r in named] == ids[::-1] and {r["baseline"] for r in named} == {RUN["baseline"]}
    assert client.get("/api/v1/runs", params={"baseline": "none-such"}, headers=auth["read"]).json()["runs"] == []
    client.post(f"/api/v1/runs/{other}/cancel", headers=auth["submit"])
    page = client.get("/api/v1/runs", params={"limit": 2, "until": "2100-01-01T00:00:00Z"}, headers=auth["read"])
    assert [r["id"] for r in page.json()["runs"]] == [other, ids[4]]
    page = client.get("/api/v1/runs", params={"limit": 2, "status": "queued"}, headers=auth["read"]).json()
    assert [r["id"] for r in page["runs"]] == ids[::-1][:2]
    rest = client.get("/api/v1/runs", params={"limit": 10, "cursor": page["next_cursor"]}, headers=auth["read"]).json()
    assert [r["id"] for r in rest["runs"]] == ids[::-1][2:] and rest["next_cursor"] is None
    m0 = client.get("/api/v1/runs", params={"model": "m0", "task": "gsm8k"}, headers=auth["read"]).json()["runs"]
    assert [r["id"] for r in m0] == [ids[4], ids[2], ids[0]]
    assert client.get("/api/v1/runs", params={"task": "mmlu"}, headers=auth["read"]).json()["runs"] == []
    assert client.get("/api/v1/runs", params={"status": "succeeded"}, headers=auth["read"]).json()["runs"] == []
    for params in (
        {"status": "done"},
        {"verdict": "maybe"},
        {"cursor": "garbage"},
        {"limit": 0},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
    ):
        response = client.get("/api/v1/runs", params=params, headers=auth["read"])
        assert response.status_code == 422, params


def test_cancel(client: TestClient, auth: dict) -> None:
    run = client.post("/api/v1/runs", json=RUN, headers=auth["submit"]).json()
    cancelled = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth["submit"])
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth["submit"]).status_code == 409
    assert client.post("/api/v1/runs/999999/cancel", headers=auth["submit"]).status_code == 404


def test_only_the_submitter_or_an_admin_cancels(client: TestClient, auth: dict, settings: Settings) -> None:
    other = {"Authorization": f"Bearer {make_token(settings.database_url, 'other-team', 'submit')}"}
    first, second = (client.post("/api/v1/runs", json=RUN, headers=auth["submit"]).json() for _ in range(2))
    refused = client.post(f"/api/v1/runs/{first['id']}/cancel", headers=other)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        f"run {first['id']} was submitted by another token: only it or an admin may cancel the run"
    )
    assert client.get(f"/api/v1/runs/{first['id']}", headers=auth["read"]).json()["status"] == "queued"
    assert client.post(f"/api/v1/runs/{first['id']}/cancel", headers=auth["submit"]).json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{second['id']}/cancel", headers=auth["admin"]).json()["status"] == "cancelled"


def test_baselines_are_loaded(client: TestClient, auth: dict) -> None:
    (baseline,) = client.get("/api/v1/baselines", headers=auth["read"]).json()
    scores = {s["benchmark"]: s for s in baseline["scores"]}
    assert {k: v["score"] for k, v in scores.items()} == {
        "GSM8K": 0.703,
        "MMLU": 0.723,
        "MATH": 0.695,
        "HumanEval": 0.758,
    }
    gsm8k = scores["GSM8K"]
    assert (gsm8k["task"], gsm8k["metric"], gsm8k["num_fewshot"]) == ("gsm8k", "exact_match,strict-match", 5)
    assert gsm8k["protocol"] == "published, protocol unknown" and gsm8k["tolerance_pp"] == 2.0
    assert baseline["source"] == "Qwen3 official release, as cited in the Mem-Agent model card"


def test_token_scopes_are_stored_hashed(settings: Settings, sessions) -> None:
    import hashlib

    from sqlalchemy import select

    from gate.auth.models import ApiToken

    secret = make_token(settings.database_url, "someone", "read")
    with sessions() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.name == "someone"))
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest() and stored.scopes == ["read"]
