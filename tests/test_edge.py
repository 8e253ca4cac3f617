"""The edge: control characters in a path or query are a 422 before any query (Postgres cannot store NUL), and
download names cannot inject header parameters."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from gate.edge import content_disposition


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/runs?model=%00",
        "/api/v1/runs?model=a%0Db",
        "/api/v1/models/a%00/history?task=gsm8k",
        "/api/v1/webhooks/ci?source=%00",
        "/api/v1/runs/export?task=%1b",
    ],
)
def test_control_characters_in_a_url_are_refused(client: TestClient, auth: dict, url: str) -> None:
    response = client.request("POST" if "webhooks" in url else "GET", url, headers=auth["admin"])
    assert response.status_code == 422, response.text
    assert "control character" in response.json()["detail"]


def test_download_names_are_quoted_per_rfc_6266() -> None:
    assert content_disposition("results.json") == "attachment; filename=\"results.json\"; filename*=UTF-8''results.json"
    header = content_disposition('samples_a"; filename="evil.html.jsonl')
    assert header.count("filename=") == 1 and header.count('"') == 2
    assert header.endswith("filename*=UTF-8''samples_a%22%3B%20filename%3D%22evil.html.jsonl")


@pytest.mark.parametrize(
    "body",
    [
        {"baseline": "qwen3\x00"},
        {"ci": {"repository": "acme/port", "branch": "main\x00"}},
        {"callback_url": "https://hooks.example/\r\nX: y"},
    ],
)
def test_control_characters_in_a_run_request_are_refused(client: TestClient, auth: dict, body: dict) -> None:
    run = {"model": "Qwen/Qwen3-4B-Thinking-2507", "tasks": ["gsm8k"], **body}
    response = client.post("/api/v1/runs", json=run, headers=auth["submit"])
    assert response.status_code == 422, response.text
    assert "control characters" in response.json()["detail"]
    assert client.get("/api/v1/runs", headers=auth["read"]).json()["runs"] == []


def test_nul_in_sample_text_is_stored_on_both_databases(client: TestClient, auth: dict) -> None:
    results = {
        "results": {"gsm8k": {"exact_match,strict-match": 0.5, "exact_match_stderr,strict-match": 0.35}},
        "n-shot": {"gsm8k": 5},
        "n-samples": {"gsm8k": {"original": 2, "effective": 2}},
    }
    lines = [
        {"doc_id": i, "filter": "strict-match", "exact_match": float(i), "filtered_resps": ["4\x002"],
         "target": "#### 42", "doc": {"question": "a\x00b"}, "doc_hash": f"h{i}",
         "resps": [["<think>six times seven</think> The answer is 4\x002."]]}
        for i in range(2)
    ]  # fmt: skip
    files = [
        ("results", ("results.json", json.dumps(results), "application/json")),
        ("samples", ("samples_gsm8k_2026-11-25T10-00-00.jsonl", "\n".join(map(json.dumps, lines)))),
    ]
    response = client.post("/api/v1/runs/import", files=files, data={"model": "acme/port"}, headers=auth["submit"])
    assert response.status_code == 201, response.text
    (sample, _) = client.get(f"/api/v1/runs/{response.json()['id']}/samples", headers=auth["read"]).json()
    assert (sample["filtered_answer"], sample["question"]) == ("4\ufffd2", "a\ufffdb")
    assert sample["raw_output"] == "<think>six times seven</think> The answer is 4\ufffd2."  # kept for the report
