"""Every error answers in one shape: the API's JSON, the dashboard's HTML page. On SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gate.app import create_app
from gate.settings import Settings
from tests.conftest import make_token
from tests.test_api_runs import RUN

SHAPE = {"detail", "code", "field", "errors"}


def refusal(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == SHAPE and body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"] and "\n" not in body["detail"]
    assert all(set(e) == {"field", "message"} for e in body["errors"])
    return body


def test_domain_errors(client: TestClient, auth: dict) -> None:
    missing = refusal(client.get("/api/v1/runs/999", headers=auth["read"]), 404, "not_found")
    assert missing == {"detail": "run 999 does not exist", "code": "not_found", "field": None, "errors": []}
    unknown = refusal(
        client.post("/api/v1/runs", json={**RUN, "baseline": "nope"}, headers=auth["submit"]), 404, "not_found"
    )
    assert unknown["field"] == "baseline" and unknown["errors"] == [{"field": "baseline", "message": unknown["detail"]}]
    refusal(client.post("/api/v1/runs", json=RUN), 401, "unauthorized")
    refusal(client.post("/api/v1/runs", json=RUN, headers=auth["read"]), 403, "forbidden")


def test_request_validation(client: TestClient, auth: dict) -> None:
    body = {**RUN, "options": {"num_fewshot": -1, "limit": "many"}}
    invalid = refusal(client.post("/api/v1/runs", json=body, headers=auth["submit"]), 422, "invalid_input")
    assert [e["field"] for e in invalid["errors"]] == ["options.num_fewshot", "options.limit"]
    assert invalid["field"] == "options.num_fewshot" and invalid["detail"].startswith("options.num_fewshot: ")
    path = refusal(client.get("/api/v1/runs/abc", headers=auth["read"]), 422, "invalid_input")
    assert path["field"] == "run_id"
    query = refusal(client.get("/api/v1/runs", params={"limit": 0}, headers=auth["read"]), 422, "invalid_input")
    assert query["field"] == "limit"
    malformed = client.post(
        "/api/v1/runs", content=b"{not json", headers={**auth["submit"], "Content-Type": "application/json"}
    )
    refusal(malformed, 422, "invalid_input")


def test_unknown_routes_and_methods(client: TestClient, auth: dict) -> None:
    nowhere = refusal(client.get("/api/v1/nowhere", headers=auth["read"]), 404, "not_found")
    assert nowhere["detail"] == "there is nothing at /api/v1/nowhere"
    wrong = client.delete("/api/v1/runs", headers=auth["admin"])
    detail = refusal(wrong, 405, "method_not_allowed")["detail"]
    assert detail == f"DELETE is not allowed on /api/v1/runs (allowed: {wrong.headers['allow']})"


def test_oversized_bodies_declared_or_streamed(client: TestClient, auth: dict, settings: Settings) -> None:
    huge = b"x" * (settings.max_upload_bytes + 2 * 1024 * 1024)
    headers = {**auth["submit"], "Content-Type": "application/json"}
    declared = refusal(client.post("/api/v1/runs", content=huge, headers=headers), 413, "too_large")
    assert "byte limit" in declared["detail"]
    streamed = client.post("/api/v1/runs", content=iter([huge[:1_000_000]] * (len(huge) // 1_000_000)), headers=headers)
    assert "content-length" not in streamed.request.headers
    refusal(streamed, 413, "too_large")


def test_an_unexpected_error_keeps_the_shape(settings: Settings) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    app = create_app(settings)
    app.add_api_route("/api/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = refusal(client.get("/api/v1/boom"), 500, "internal_error")
    assert "a bug" not in body["detail"]


@pytest.fixture
def browser_client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "status", "sentence"),
    [
        ("/compare", 422, "name the two runs to compare"),
        ("/compare?a=1&b=1", 422, "pick two different runs"),
        ("/compare?a=x&b=2", 422, "a: Input should be a valid integer"),
        ("/runs/999", 404, "run 999 does not exist"),
        ("/runs?status=bogus", 422, "status must be one of"),
        ("/models/nosuch", 404, "no run of a model named &#39;nosuch&#39;"),
        ("/no/such/page", 404, "there is nothing at /no/such/page"),
        ("/static/nosuch.css", 404, "there is nothing at /static/nosuch.css"),
    ],
)
def test_pages_answer_errors_with_a_page(browser_client: TestClient, path: str, status: int, sentence: str) -> None:
    response = browser_client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<nav>" in page and 'href="/runs"' in page and f"({status})" in page
    assert f'<p class="alert nc error-detail">{sentence}' in page


def test_a_page_that_needs_a_token_links_to_sign_in(database_url: str) -> None:
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        response = client.get("/runs")
    assert response.status_code == 401 and response.headers["content-type"].startswith("text/html")
    assert 'href="/login"' in response.text and "A valid bearer token is required." in response.text


def test_model_page_exists_once_the_model_has_runs(browser_client: TestClient, database_url: str) -> None:
    submit = {"Authorization": f"Bearer {make_token(database_url, 's', 'submit')}"}
    assert browser_client.post("/api/v1/runs", json={**RUN, "model": "acme/queued"}, headers=submit).status_code == 202
    page = browser_client.get("/models/acme/queued")
    assert page.status_code == 200 and "No gsm8k score for this model yet" in page.text


def test_favicon(browser_client: TestClient) -> None:
    icon = browser_client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert '<link rel="icon" href="/favicon.ico">' in browser_client.get("/").text
