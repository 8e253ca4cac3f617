"""The edge: control characters in a path or query are a 422 before any query (Postgres cannot store NUL), and
download names cannot inject header parameters."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gate.api.edge import content_disposition


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
