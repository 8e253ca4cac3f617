"""Qualifications over REST on SQLite and Postgres: queue a plan's runs, wait and say why, derive the verdict from
real lm-eval uploads, and the report and its Markdown carry the API's figures."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from gate.notifications import signatures
from tests.conftest import add_source, finish

MMLU_RESULTS = Path(__file__).parent / "fixtures/lmeval/v0.4.7-mmlu-0shot-llama-3.2-3b.json"

BASELINE = "qwen3-4b-thinking-2507"
NO_SERVING = "the serving check needs backend vllm, vllm-ascend, openai, not 'hf': leave it out with \"checks\"."
TOP_K = "top_k must be an integer from 20 to 1000, got 5."
REMOTE_CODE = {"trust_remote_code": True}
UNKNOWN_TASK = f"unknown task(s) mmlu_fake: not in baseline '{BASELINE}'"
TOO_LONG = f"accuracy task {'x' * 56} is longer than 55 characters, the most a check name holds."
ACCURACY_ONLY = {"model": "acme/port", "backend": "hf", "baseline": BASELINE, "checks": ["accuracy"]}


def qualify(client: TestClient, auth: dict, body: dict, **headers: str):
    return client.post("/api/v1/qualifications", json=body, headers={**auth["submit"], **headers})


def read(client: TestClient, auth: dict, qid: int) -> dict:
    answer = client.get(f"/api/v1/qualifications/{qid}", headers=auth["read"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_qualification_queues_its_checks_and_says_what_it_waits_for(client: TestClient, auth: dict) -> None:
    body = {**ACCURACY_ONLY, "labels": ["ascend910b"], "accuracy": {"limit": 8}}
    created = qualify(client, auth, body)
    assert created.status_code == 201, created.text
    q = created.json()
    assert created.headers["location"] == f"/api/v1/qualifications/{q['id']}"
    [check] = q["checks"]
    assert check["name"] == "accuracy" and check["gated"]
    run = client.get(f"/api/v1/runs/{check['run']['id']}", headers=auth["read"]).json()
    assert (run["kind"], run["backend"], run["tasks"], run["labels"]) == ("accuracy", "hf", ["gsm8k"], ["ascend910b"])
    assert run["options"]["num_fewshot"] == 5 and run["options"]["limit"] == 8
    assert (q["status"], q["verdict"]) == ("waiting", None)
    assert check["waiting"] == "no worker with backend hf and labels ascend910b is connected"
    assert q["reasons"] == [f"accuracy (run {run['id']}) is waiting: {check['waiting']}"]
    # a worker of another backend is no taker; one with the backend and the label is
    for backend, labels in (("vllm", ["ascend910b"]), ("hf", [])):
        polled = client.post(
            "/api/v1/workers/claim",
            json={"name": f"w-{backend}", "backend": backend, "labels": labels, "wait_s": 0},
            headers=auth["worker"],
        )
        assert polled.status_code == 204
        assert read(client, auth, q["id"])["status"] == "waiting"
    client.post(
        "/api/v1/workers/claim",
        json={"name": "npu", "backend": "hf", "labels": ["ascend910b", "x"], "wait_s": 0},
        headers=auth["worker"],
    )
    now = read(client, auth, q["id"])
    assert now["status"] == "running" and now["checks"][0]["waiting"] is None


def test_repeating_the_idempotency_key_returns_the_first(client: TestClient, auth: dict) -> None:
    first = qualify(client, auth, ACCURACY_ONLY, **{"Idempotency-Key": "pipeline-7"})
    again = qualify(client, auth, ACCURACY_ONLY, **{"Idempotency-Key": "pipeline-7"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/api/v1/runs", headers=auth["read"]).json()["runs"]) == 1
    other = qualify(client, auth, {**ACCURACY_ONLY, "model": "acme/other"}, **{"Idempotency-Key": "pipeline-7"})
    assert other.status_code == 422
    assert other.json()["detail"] == "Idempotency-Key was used before with a different request"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"checks": ["speed"]}, 422, "plan 'card' has no check speed; it has accuracy, alignment, serving, smoke."),
        ({"checks": None}, 422, NO_SERVING),
        ({"plan": "nightly"}, 422, "unknown plan 'nightly'; known: card."),
        ({"baseline": "nope"}, 404, "unknown baseline 'nope'"),
        ({"accuracy": {"tasks": ["mmlu_fake"]}}, 422, UNKNOWN_TASK),
        ({"accuracy": {"tasks": ["gsm8k", "mmlu_fake"]}}, 422, UNKNOWN_TASK),
        ({"accuracy": {"tasks": ["gsm8k", "mmlu", "gsm8k"]}}, 422, "accuracy names task gsm8k twice."),
        ({"accuracy": {"tasks": ["gsm8k", "x" * 56]}}, 422, TOO_LONG),
        ({"checks": ["alignment"], "alignment": {"top_k": 5}}, 422, f"alignment: {TOP_K}"),
        ({"checks": ["alignment"], "engine_args": REMOTE_CODE}, 403, "trust_remote_code needs an admin token"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_sentence_and_create_nothing(
    client: TestClient, auth: dict, body: dict, status: int, detail: str
) -> None:
    answer = qualify(client, auth, {**ACCURACY_ONLY, **body})
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"] == detail
    assert client.get("/api/v1/qualifications", headers=auth["read"]).json() == []
    assert client.get("/api/v1/runs", headers=auth["read"]).json()["runs"] == []


def test_a_check_whose_run_fails_makes_it_run_failed_not_fail(client: TestClient, auth: dict) -> None:
    q = qualify(client, auth, ACCURACY_ONLY).json()
    lease = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=auth["worker"]
    ).json()
    failed = client.post(
        f"/api/v1/workers/runs/{lease['run_id']}/fail",
        json={"lease": lease["lease"], "reason": "CUDA out of memory", "kind": "user"},
        headers=auth["worker"],
    )
    assert failed.status_code == 200, failed.text
    now = read(client, auth, q["id"])
    assert (now["status"], now["verdict"]) == ("finished", "run_failed")
    assert now["reasons"] == [f"accuracy (run {lease['run_id']}) failed: it was not judged"]


@pytest.mark.lmeval
def test_verdicts_come_from_the_runs_and_the_markdown_carries_the_api_figures(
    client: TestClient, auth: dict, gold_run_927, gold_run_880
) -> None:
    passing, failing = qualify(client, auth, ACCURACY_ONLY).json(), qualify(client, auth, ACCURACY_ONLY).json()
    finish(client, auth, passing["checks"][0]["run"]["id"], gold_run_927)
    finish(client, auth, failing["checks"][0]["run"]["id"], gold_run_880)
    assert read(client, auth, passing["id"])["verdict"] == "pass"
    failed = read(client, auth, failing["id"])
    assert failed["verdict"] == "fail"
    assert failed["reasons"] == [f"accuracy (run {failing['checks'][0]['run']['id']}) failed its gate"]

    report = client.get(f"/api/v1/qualifications/{passing['id']}/report", headers=auth["read"]).json()
    [verdict] = report["accuracy"]["verdicts"]
    assert verdict["candidate"] == pytest.approx(927 / 1319)
    for lang, heading in (("en", "## Accuracy gate"), ("zh", "## 精度门禁")):
        md = client.get(f"/api/v1/qualifications/{passing['id']}/report.md?lang={lang}", headers=auth["read"])
        assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
        text = md.text
        assert heading in text
        tables = markdown_tables(text)
        accuracy = next(t for t in tables if "gsm8k" in t[1][0])
        assert float(accuracy[1][2]) == round(verdict["candidate"], 4)
        assert float(accuracy[1][3]) == round(verdict["baseline"], 4)
        assert float(accuracy[1][4]) == round(verdict["delta_pp"], 2)
        official = next(t for t in tables if len(t) == 5 and t[1][1] == "gsm8k")
        assert [float(r[3]) for r in official[1:]] == [0.703, 0.723, 0.695, 0.758]
    page = client.get(f"/qualifications/{passing['id']}", headers=auth["read"])
    assert page.status_code == 200 and "0.7028" in page.text
    side = client.get(f"/qualifications/compare?a={passing['id']}&b={failing['id']}", headers=auth["read"])
    assert side.status_code == 200 and "0.7028" in side.text and "0.6672" in side.text


FOUR = ["gsm8k", "mmlu", "minerva_math", "humaneval"]


def test_several_benchmarks_run_one_each_at_their_baseline_entry_n_shot(client: TestClient, auth: dict) -> None:
    four = {**ACCURACY_ONLY, "accuracy": {"tasks": FOUR, "limit": 8}}
    refused = qualify(client, auth, four)
    assert (refused.status_code, refused.json()["detail"]) == (
        403,
        "code-executing task(s) humaneval need an admin token",
    )
    q = qualify(client, auth, four, **auth["admin"]).json()  # HumanEval runs model-written code: an admin's grant
    assert [c["name"] for c in q["checks"]] == [f"accuracy:{task}" for task in FOUR]
    assert all(c["gated"] for c in q["checks"])
    runs = [client.get(c["run"]["url"], headers=auth["read"]).json() for c in q["checks"]]
    assert [r["tasks"] for r in runs] == [[task] for task in FOUR]
    assert [(r["options"]["num_fewshot"], r["options"]["limit"]) for r in runs] == [(5, 8), (5, 8), (4, 8), (0, 8)]
    assert [r["labels"] for r in runs] == [[], [], [], ["sandboxed"]]  # HumanEval runs model-written code

    no_baseline = {
        "model": "acme/port",
        "backend": "hf",
        "checks": ["accuracy"],
        "accuracy": {"tasks": ["gsm8k", "mmlu"]},  # no baseline: any baseline's tasks
    }
    q = qualify(client, auth, no_baseline).json()
    runs = [client.get(c["run"]["url"], headers=auth["read"]).json() for c in q["checks"]]
    assert [r["options"].get("num_fewshot") for r in runs] == [None, None]  # lm-eval's own default

    named = {**ACCURACY_ONLY, "accuracy": {"tasks": ["gsm8k", "mmlu"], "num_fewshot": 3}}
    q = qualify(client, auth, named).json()
    runs = [client.get(c["run"]["url"], headers=auth["read"]).json() for c in q["checks"]]
    assert [r["options"]["num_fewshot"] for r in runs] == [3, 3]  # the request's n-shot applies to each


@pytest.mark.lmeval
def test_one_failing_benchmark_fails_the_qualification_and_the_report_shows_each(
    client: TestClient, auth: dict, gold_run_880
) -> None:
    q = qualify(client, auth, {**ACCURACY_ONLY, "accuracy": {"tasks": ["gsm8k", "mmlu"]}}).json()
    gsm8k, mmlu = (c["run"]["id"] for c in q["checks"])
    finish(client, auth, gsm8k, gold_run_880)
    finish(client, auth, mmlu, (MMLU_RESULTS, []))
    now = read(client, auth, q["id"])
    assert (now["status"], now["verdict"]) == ("finished", "fail")
    assert f"accuracy:gsm8k (run {gsm8k}) failed its gate" in now["reasons"]
    assert all("accuracy:mmlu" not in reason or "failed its gate" not in reason for reason in now["reasons"])

    report = client.get(f"/api/v1/qualifications/{q['id']}/report", headers=auth["read"]).json()
    accuracy = report["accuracy"]
    assert [(b["check"], b["run_id"]) for b in accuracy["benchmarks"]] == [
        ("accuracy:gsm8k", gsm8k),
        ("accuracy:mmlu", mmlu),
    ]
    by_task = {v["task"]: v for v in accuracy["verdicts"]}
    assert (by_task["gsm8k"]["run_id"], by_task["gsm8k"]["outcome"], by_task["gsm8k"]["baseline"]) == (
        gsm8k,
        "fail",
        0.703,
    )
    assert (by_task["mmlu"]["run_id"], by_task["mmlu"]["baseline"]) == (mmlu, 0.723)
    assert by_task["gsm8k"]["candidate"] == pytest.approx(880 / 1319)
    assert [(c["name"], c["verdict"]) for c in report["checks"]] == [
        ("accuracy:gsm8k", "fail"),
        ("accuracy:mmlu", by_task["mmlu"]["outcome"]),
    ]
    for lang in ("en", "zh"):
        text = client.get(f"/api/v1/qualifications/{q['id']}/report.md?lang={lang}", headers=auth["read"]).text
        table = next(t for t in markdown_tables(text) if t[1][0] == "gsm8k")
        assert [(row[0], float(row[3])) for row in table[1:]] == [("gsm8k", 0.703), ("mmlu", 0.723)]
        assert f"/runs/{gsm8k})" in text and f"/runs/{mmlu})" in text
    page = client.get(f"/qualifications/{q['id']}", headers=auth["read"])
    assert page.status_code == 200 and "0.6672" in page.text and f"/runs/{mmlu}" in page.text
    single = qualify(client, auth, ACCURACY_ONLY).json()
    side = client.get(f"/qualifications/compare?a={q['id']}&b={single['id']}", headers=auth["read"])
    assert side.status_code == 200 and "accuracy:mmlu" in side.text and "mmlu acc,none" in side.text


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Each table of a Markdown text as rows of cells (the header first); a malformed row fails the test."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if current and set("".join(cells)) <= {"-"}:
                continue
            assert not current or len(cells) == len(current[0]), f"a row of {len(cells)} cells: {line}"
            current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_a_signed_ci_webhook_starts_one_qualification(app_client) -> None:
    client, headers = app_client
    standard = Webhook(signatures.standard_secret_text(add_source(client, "buildkite", "standard")))
    body = json.dumps({**ACCURACY_ONLY, "ci": {"repository": "acme/port", "commit": "0123abc" * 5 + "01234"}})
    now = datetime.now(timezone.utc)
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standard.sign("msg_1", now, body),
        "Content-Type": "application/json",
    }
    url = "/api/v1/webhooks/ci/qualifications?source=buildkite"
    first = client.post(url, content=body, headers=signed)
    assert first.status_code == 201, first.text
    q = first.json()
    assert (q["origin"], q["submitted_by"], q["checks"][0]["run"]["origin"]) == (
        "webhook",
        "webhook:buildkite",
        "webhook",
    )
    again = client.post(url, content=body, headers=signed)
    assert (again.status_code, again.json()["id"]) == (200, q["id"])
    # the same delivery id cannot also start a run
    as_run = json.dumps({"model": "acme/port", "baseline": BASELINE, "backend": "hf"})
    resigned = {**signed, "webhook-signature": standard.sign("msg_1", now, as_run)}
    run = client.post("/api/v1/webhooks/ci?source=buildkite", content=as_run, headers=resigned)
    assert run.status_code == 409
    assert run.json()["detail"] == f"delivery msg_1 started qualification {q['id']}, not a run"
    forged = {**signed, "webhook-id": "msg_2"}
    assert client.post(url, content=body, headers=forged).status_code == 401
    assert len(client.get("/api/v1/qualifications", headers=headers["read"]).json()) == 1


def test_cancelling_stops_the_runs_still_going_and_the_verdict_is_run_failed(client: TestClient, auth: dict) -> None:
    body = {**ACCURACY_ONLY, "backend": "vllm", "checks": ["accuracy", "smoke"]}
    q = qualify(client, auth, body).json()
    lease = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "vllm", "wait_s": 0}, headers=auth["worker"]
    ).json()
    assert lease["run_id"] == q["checks"][0]["run"]["id"]
    reader = client.post(f"/api/v1/qualifications/{q['id']}/cancel", headers=auth["read"])
    assert reader.status_code == 403
    cancelled = client.post(f"/api/v1/qualifications/{q['id']}/cancel", headers=auth["submit"])
    assert cancelled.status_code == 200, cancelled.text
    after = cancelled.json()
    assert [c["run"]["status"] for c in after["checks"]] == ["cancelled", "cancelled"]
    assert (after["status"], after["verdict"]) == ("finished", "run_failed")
    again = client.post(f"/api/v1/qualifications/{q['id']}/cancel", headers=auth["admin"])
    assert again.status_code == 200 and again.json()["verdict"] == "run_failed"
    # the worker's next write hears that its run was cancelled
    beat = client.post(
        f"/api/v1/workers/runs/{lease['run_id']}/heartbeat", json={"lease": lease["lease"]}, headers=auth["worker"]
    )
    assert beat.status_code == 409
