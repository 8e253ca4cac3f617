"""CI webhooks in and notifications out, against real local HTTP peers, on SQLite and Postgres."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from gate.app import create_app
from gate.db import transaction, utcnow
from gate.notifications import inbound as webhooks
from gate.notifications import notifiers, sender, signatures
from gate.notifications.models import InboundDelivery
from gate.settings import Settings
from tests.conftest import WEBHOOK_KEY as KEY
from tests.conftest import WEBHOOK_RUN as RUN
from tests.conftest import add_source, finish, make_token, wait_until, webhook_settings
from tests.peers import Receiver, serving


@pytest.fixture
def receiver_factory() -> Iterator:
    with ExitStack() as stack:
        secret = signatures.standard_secret_text(signatures.derive_secret(KEY, "outbound", "notifications"))
        yield lambda script, **behaviour: stack.enter_context(serving(Receiver(secret, script, **behaviour)))


def count(client: TestClient, headers: dict) -> int:
    return len(client.get("/api/v1/runs", headers=headers["read"]).json()["runs"])


def test_github_webhook(app_client) -> None:
    client, headers = app_client
    secret_text = signatures.standard_secret_text(add_source(client, "github-acme", "github")).encode()
    body = json.dumps(RUN).encode()

    def post(data: bytes, signature: str | None, delivery: str = "d-1", source: str = "github-acme"):
        h = {"Content-Type": "application/json", "X-GitHub-Delivery": delivery}
        if signature is not None:
            h["X-Hub-Signature-256"] = signature
        return client.post(f"/api/v1/webhooks/ci?source={source}", content=data, headers=h)

    good = "sha256=" + hmac.new(secret_text, body, hashlib.sha256).hexdigest()
    created = post(body, good)
    assert created.status_code == 201, created.text
    run = client.get(f"/api/v1/runs/{created.json()['id']}", headers=headers["read"]).json()
    assert (
        run["origin"] == "webhook"
        and run["ci"]["commit"] == RUN["ci"]["commit"]
        and run["submitted_by"] == "webhook:github-acme"
    )
    replay = post(body, good)
    assert replay.status_code == 200 and replay.json()["id"] == created.json()["id"]

    refused = [
        (post(body, "sha256=" + "0" * 64, "d-2"), 401),
        (post(body, None, "d-3"), 401),
        (post(body + b" ", good, "d-4"), 401),
        (post(body, good, "d-5", source="nope"), 401),
        (post(b"{not json", "sha256=" + hmac.new(secret_text, b"{not json", hashlib.sha256).hexdigest(), "d-6"), 422),
        (post(b"x" * (2 * 1024 * 1024), good, "d-7"), 413),
    ]
    bad_fields = json.dumps({**RUN, "backend": "tpu"}).encode()
    refused.append(
        (post(bad_fields, "sha256=" + hmac.new(secret_text, bad_fields, hashlib.sha256).hexdigest(), "d-8"), 422)
    )
    for response, status in refused:
        assert response.status_code == status, response.text
    assert count(client, headers) == 1


def test_standard_and_gitlab_webhooks(app_client) -> None:
    client, headers = app_client
    standard = Webhook(signatures.standard_secret_text(add_source(client, "buildkite", "standard")))
    body = json.dumps(RUN)
    now = datetime.now(timezone.utc)
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standard.sign("msg_1", now, body),
        "Content-Type": "application/json",
    }
    assert client.post("/api/v1/webhooks/ci?source=buildkite", content=body, headers=signed).status_code == 201
    assert client.post("/api/v1/webhooks/ci?source=buildkite", content=body, headers=signed).status_code == 200
    old = datetime.fromtimestamp(now.timestamp() - 600, timezone.utc)
    stale = {
        **signed,
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": standard.sign("msg_2", old, body),
    }
    response = client.post("/api/v1/webhooks/ci?source=buildkite", content=body, headers=stale)
    assert response.status_code == 401 and "5 minutes" in response.json()["detail"]

    token = signatures.standard_secret_text(add_source(client, "gitlab-acme", "gitlab"))
    gitlab = {"X-Gitlab-Token": token, "X-Gitlab-Event-UUID": "uuid-1", "Content-Type": "application/json"}
    assert client.post("/api/v1/webhooks/ci?source=gitlab-acme", content=body, headers=gitlab).status_code == 201
    wrong = {**gitlab, "X-Gitlab-Token": token[:-2] + "xx", "X-Gitlab-Event-UUID": "uuid-2"}
    assert client.post("/api/v1/webhooks/ci?source=gitlab-acme", content=body, headers=wrong).status_code == 401
    assert count(client, headers) == 2


@pytest.mark.lmeval
def test_notification_retries_until_delivered_and_can_be_redelivered(
    app_client, receiver_factory, tiny_smoke_run
) -> None:
    client, headers = app_client
    receiver = receiver_factory([(503, {}), (429, {"Retry-After": "1"}), (302, {"Location": "http://10.0.0.1/"})])
    run = client.post("/api/v1/runs", json={**RUN, "callback_url": receiver.url}, headers=headers["submit"]).json()
    finish(client, headers, run["id"], tiny_smoke_run)
    wait_until(lambda: len(receiver.received) >= 4)
    assert len({r["id"] for r in receiver.received}) == 1, "one webhook-id across attempts"
    assert all(r["verified"] for r in receiver.received)
    payload = receiver.received[-1]["payload"]
    assert payload["run"]["verdict"] == "not_comparable" and payload["report_url"].endswith(f"/runs/{run['id']}")
    assert payload["run"]["ci"]["commit"] == RUN["ci"]["commit"] and payload["run"]["verdicts"][0]["task"] == "gsm8k"
    (delivery,) = wait_until(
        lambda: [
            d
            for d in client.get(f"/api/v1/runs/{run['id']}/deliveries", headers=headers["read"]).json()
            if d["status"] == "delivered"
        ]
    )
    assert [a["status_code"] for a in delivery["log"]] == [503, 429, 302, 200]
    assert all(a["latency_ms"] is not None for a in delivery["log"]) and delivery["log"][-1]["response_excerpt"] == "ok"
    assert client.post(f"/api/v1/deliveries/{delivery['id']}/redeliver", headers=headers["submit"]).status_code == 403
    assert client.post(f"/api/v1/deliveries/{delivery['id']}/redeliver", headers=headers["admin"]).status_code == 202
    wait_until(lambda: len(receiver.received) == 5)
    assert receiver.received[-1]["id"] == receiver.received[0]["id"]


def test_failed_runs_notify_and_410_disables_the_endpoint(app_client, receiver_factory) -> None:
    client, headers = app_client
    receiver = receiver_factory([(410, {})])
    body = {**RUN, "callback_url": receiver.url}
    first = client.post("/api/v1/runs", json=body, headers=headers["submit"]).json()
    lease = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=headers["worker"]
    ).json()
    client.post(
        f"/api/v1/workers/runs/{first['id']}/fail",
        headers=headers["worker"],
        json={"lease": lease["lease"], "reason": "model not found", "kind": "user"},
    )
    wait_until(lambda: receiver.received)
    assert receiver.received[0]["verified"]
    disabled = wait_until(
        lambda: [
            d
            for d in client.get(f"/api/v1/runs/{first['id']}/deliveries", headers=headers["read"]).json()
            if d["status"] == "disabled"
        ]
    )
    assert disabled[0]["log"][0]["status_code"] == 410
    second = client.post("/api/v1/runs", json=body, headers=headers["submit"]).json()
    cancelled = client.post(f"/api/v1/runs/{second['id']}/cancel", headers=headers["submit"])
    assert cancelled.status_code == 200, cancelled.text  # a run that ended: one the endpoint would hear of
    time.sleep(0.5)
    assert client.get(f"/api/v1/runs/{second['id']}/deliveries", headers=headers["read"]).json() == []
    assert len(receiver.received) == 1


def test_callback_targets_are_allow_listed(database_url: str, receiver_factory) -> None:
    settings = webhook_settings(
        database_url, callback_allowed_hosts="localhost", callback_allow_private=False, delivery_schedule_s="0.2"
    )
    with TestClient(create_app(settings)) as client:
        submit = {"Authorization": f"Bearer {make_token(database_url, 'submit', 'submit')}"}
        outside = client.post(
            "/api/v1/runs", json={**RUN, "callback_url": "http://169.254.169.254/latest"}, headers=submit
        )
        assert outside.status_code == 422 and "allow-list" in outside.json()["detail"]
        creds = client.post("/api/v1/runs", json={**RUN, "callback_url": "http://u:p@localhost/x"}, headers=submit)
        assert creds.status_code == 422
        receiver = receiver_factory([])
        url = receiver.url.replace("127.0.0.1", "localhost")
        run = client.post("/api/v1/runs", json={**RUN, "callback_url": url}, headers=submit).json()
        client.post(f"/api/v1/runs/{run['id']}/cancel", headers=submit)
        read = {"Authorization": f"Bearer {make_token(database_url, 'reader', 'read')}"}
        (delivery,) = wait_until(
            lambda: [
                d
                for d in client.get(f"/api/v1/runs/{run['id']}/deliveries", headers=read).json()
                if d["status"] == "failed"
            ]
        )
        assert "non-public address" in delivery["log"][0]["error"]  # localhost resolves to loopback: refused at send
        assert receiver.received == []


def test_delivery_ids_are_kept_a_week_at_least(app_client) -> None:
    client, _ = app_client
    secret_text = signatures.standard_secret_text(add_source(client, "github-acme", "github")).encode()
    body = json.dumps(RUN).encode()
    signed = {
        "Content-Type": "application/json",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret_text, body, hashlib.sha256).hexdigest(),
    }
    first = client.post("/api/v1/webhooks/ci?source=github-acme", content=body, headers=signed).json()

    def age_and_prune(days: float, keep_days: float) -> int:
        with transaction(client.app.state.sessions, write=True) as session:
            session.execute(update(InboundDelivery).values(received_at=utcnow() - timedelta(days=days)))
            return webhooks.prune_deliveries(session, keep_days)

    assert age_and_prune(6.9, 7) == 0
    replay = client.post("/api/v1/webhooks/ci?source=github-acme", content=body, headers=signed)
    assert replay.status_code == 200 and replay.json()["id"] == first["id"]
    assert age_and_prune(31, 30) == 1
    with pytest.raises(ValidationError, match="greater than or equal to 7"):
        Settings(inbound_delivery_keep_days=3)


def test_the_server_key_is_long_enough_or_unset() -> None:
    assert Settings(secret_key="").secret_key is None  # e.g. `GATE_SECRET_KEY: ${GATE_SECRET_KEY:-}` in compose
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(secret_key="hunter2")


def test_callbacks_go_to_the_address_that_was_checked(app_client, receiver_factory) -> None:
    """The sender connects to the address it vetted (no second lookup to rebind) and keeps the callback's Host."""
    client, headers = app_client
    receiver = receiver_factory([])
    url = receiver.url.replace("127.0.0.1", "localhost")
    run = client.post("/api/v1/runs", json={**RUN, "callback_url": url}, headers=headers["submit"]).json()
    client.post(f"/api/v1/runs/{run['id']}/cancel", headers=headers["submit"])
    (received,) = wait_until(lambda: receiver.received)
    assert received["verified"] and received["host"] == f"localhost:{receiver.server_address[1]}"
    routes = sender._pinned_callback(client.app.state.settings, url)
    for target, extra_headers, extensions in routes:
        assert ipaddress.ip_address(urlsplit(target).hostname).is_loopback  # an address literal: no second lookup
        assert extra_headers == {"host": f"localhost:{receiver.server_address[1]}"}
        assert extensions == {"sni_hostname": "localhost"}  # TLS still verifies the name


def test_slow_receivers_cannot_hold_the_sender(database_url: str, receiver_factory) -> None:
    """A receiver that does not answer in time is tried again; one that answers with an endless body is cut off
    at the timeout (its status counts) and its answer is read only as far as the excerpt."""
    settings = webhook_settings(
        database_url, callback_allowed_hosts="127.0.0.1", delivery_schedule_s="0.2,0.2", delivery_timeout_s=0.5
    )
    silent = receiver_factory([], delays_s=[3.0])
    endless = receiver_factory([], trickle_s=0.01)
    with TestClient(create_app(settings)) as client:
        submit = {"Authorization": f"Bearer {make_token(database_url, 'submit', 'submit')}"}

        def delivered(receiver) -> dict:
            run = client.post("/api/v1/runs", json={**RUN, "callback_url": receiver.url}, headers=submit).json()
            client.post(f"/api/v1/runs/{run['id']}/cancel", headers=submit)
            (delivery,) = wait_until(
                lambda: [
                    d
                    for d in client.get(f"/api/v1/runs/{run['id']}/deliveries", headers=submit).json()
                    if d["status"] == "delivered"
                ]
            )
            return delivery

        timed_out, answered = delivered(silent)["log"]
        (cut_off,) = delivered(endless)["log"]
    assert timed_out["status_code"] is None and timed_out["error"].startswith("ReadTimeout")
    assert 500 <= timed_out["latency_ms"] < 3000 and answered["status_code"] == 200
    assert len(silent.received) == 2 and silent.received[0]["id"] == silent.received[1]["id"]
    assert cut_off["status_code"] == 200 and 500 <= cut_off["latency_ms"] < 2000
    assert set(cut_off["response_excerpt"]) == {"z"}


def test_only_a_web_pipeline_url_becomes_a_link(app_client) -> None:
    client, headers = app_client
    for url, linked in (("https://ci.example/p/1", True), ("javascript:alert(1)", False)):
        body = {**RUN, "ci": {**RUN["ci"], "pipeline_url": url}}
        run = client.post("/api/v1/runs", json=body, headers=headers["submit"]).json()
        page = client.get(f"/runs/{run['id']}", headers=headers["read"]).text
        assert (f'<a href="{url}"' in page) is linked and url in page


def test_a_source_webhook_and_a_run_callback_both_hear_the_end(app_client, receiver_factory) -> None:
    client, headers = app_client
    source_hook, run_hook = receiver_factory([]), receiver_factory([])
    secret = signatures.standard_secret_text(add_source(client, "buildkite", "standard"))
    with transaction(client.app.state.sessions, write=True) as session:
        notifiers.put(session, "buildkite", "webhook", source_hook.url, None)
    body = json.dumps({**RUN, "callback_url": run_hook.url})
    now = datetime.now(timezone.utc)
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, body),
        "Content-Type": "application/json",
    }
    run = client.post("/api/v1/webhooks/ci?source=buildkite", content=body, headers=signed).json()
    assert client.post(f"/api/v1/runs/{run['id']}/cancel", headers=headers["admin"]).status_code == 200
    for receiver in (source_hook, run_hook):
        (received,) = wait_until(lambda receiver=receiver: receiver.received)
        assert received["verified"] and received["payload"]["run"]["id"] == run["id"]
        assert received["payload"]["run"]["status"] == "cancelled"
