"""Each API process remembers a live token for GATE_TOKEN_CACHE_S: a revoked token stops working within it."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from gate.app import create_app
from gate.auth import tokens
from gate.db import make_engine, make_session_factory, transaction
from gate.settings import Settings
from tests.conftest import make_token


def revoke(database_url: str, name: str) -> None:
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine), write=True) as session:
        tokens.revoke(session, name)
    engine.dispose()


def test_a_revoked_token_stops_working_once_the_cache_has_let_it_go(settings: Settings) -> None:
    settings = settings.model_copy(update={"token_cache_s": 1.0})
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {make_token(settings.database_url, 'ci', 'read')}"}
        assert client.get("/api/v1/runs", headers=headers).status_code == 200
        revoked_at = time.monotonic()
        revoke(settings.database_url, "ci")
        # within the second, this process still honours what it checked: the documented price of the cache
        assert client.get("/api/v1/runs", headers=headers).status_code == 200
        assert time.monotonic() - revoked_at < settings.token_cache_s
        time.sleep(settings.token_cache_s)
        refused = client.get("/api/v1/runs", headers=headers)
        assert refused.status_code == 401 and refused.json()["detail"] == "unknown or revoked token"


def test_without_the_cache_a_revoked_token_is_refused_at_once(settings: Settings) -> None:
    settings = settings.model_copy(update={"token_cache_s": 0.0})
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {make_token(settings.database_url, 'ci', 'read')}"}
        assert client.get("/api/v1/runs", headers=headers).status_code == 200
        revoke(settings.database_url, "ci")
        assert client.get("/api/v1/runs", headers=headers).status_code == 401


def test_a_cached_token_keeps_its_scopes(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        reader = {"Authorization": f"Bearer {make_token(settings.database_url, 'reader', 'read')}"}
        assert client.get("/api/v1/runs", headers=reader).status_code == 200
        assert client.post("/api/v1/runs", json={}, headers=reader).status_code == 403
        assert client.get("/api/v1/runs", headers={"Authorization": reader["Authorization"] + "x"}).status_code == 401
