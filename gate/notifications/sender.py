"""The delivery loop: sends due notifications and logs each attempt.

Webhooks (a run's callback, a CI source's webhook) are signed in the Standard Webhooks form; commit statuses go to
the GitHub or GitLab API with the notifier's token, unsealed only here, only for the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi import FastAPI

from gate import db
from gate.db import transaction
from gate.notifications import commit_status, delivery, notifiers, sealing, signatures, targets
from gate.notifications import outbox as notifications
from gate.notifications.models import Notification
from gate.settings import Settings

log = logging.getLogger("gate.sender")
# Of a receiver's answer, only what the attempt log keeps is read (4 bytes per character at most, in UTF-8).
EXCERPT_BYTES = notifications.EXCERPT_CHARS * 4


class Unsendable(Exception):
    """The message cannot be sent as it stands: retrying will not help."""


@dataclass(frozen=True)
class Outgoing:
    """A claimed notification, detached from its session while the request is in flight."""

    id: int
    kind: str
    url: str
    webhook_id: str
    payload: dict[str, Any]
    attempts: int
    is_callback: bool  # a URL from the run's submitter, not from the admin: allow-listed, checked at send time
    sealed_token: str | None
    bound_to: str | None

    @classmethod
    def of(cls, n: Notification) -> Outgoing:
        return cls(
            id=n.id,
            kind=n.kind,
            url=n.url,
            webhook_id=n.webhook_id,
            payload=n.payload,
            attempts=n.attempts,
            is_callback=n.notifier is None,
            sealed_token=n.notifier.sealed_token if n.notifier else None,
            bound_to=notifiers.bound_to(n.notifier.source.name, n.kind) if n.notifier else None,
        )


def outbound_secret(settings: Settings) -> bytes:
    assert settings.secret_key is not None
    return signatures.derive_secret(settings.secret_key, "outbound", "notifications")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _schedule(settings: Settings) -> tuple[float, ...]:
    if settings.delivery_schedule_s:
        return tuple(float(part) for part in settings.delivery_schedule_s.split(","))
    return delivery.SCHEDULE_S


Route = tuple[str, dict[str, str], dict[str, str]]  # URL, extra headers, httpx request extensions


def _pinned_callback(settings: Settings, url: str) -> list[Route]:
    """The callback URL with its host replaced by each address just checked, with the Host header and TLS name.

    Checked again at send time because DNS may have changed since the run was submitted; pinned because a second
    lookup by the HTTP client could answer differently (DNS rebinding)."""
    try:
        host = targets.check_url(url, targets.allowed_hosts(settings.callback_allowed_hosts))
        resolved = [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]
        targets.check_addresses(resolved, settings.callback_allow_private)
    except (targets.TargetRefused, OSError) as exc:
        raise Unsendable(f"refused: {exc}") from None
    parts = urlsplit(url)
    routes = []
    for address in dict.fromkeys(resolved):
        netloc = (f"[{address}]" if ":" in address else address) + (f":{parts.port}" if parts.port else "")
        routes.append((urlunsplit(parts._replace(netloc=netloc)), {"host": parts.netloc}, {"sni_hostname": host}))
    return routes


def _request(settings: Settings, message: Outgoing) -> tuple[dict[str, str], bytes]:
    """Headers and body of the message's request."""
    if not settings.secret_key:
        raise Unsendable("GATE_SECRET_KEY is not set: gate can neither sign webhooks nor open tokens")
    report_url = settings.public_url.rstrip("/") + message.payload["report_path"]
    if message.kind == notifiers.WEBHOOK:
        body = json.dumps({**message.payload, "report_url": report_url}, sort_keys=True).encode()
        timestamp = int(time.time())
        signature = signatures.standard_signature(outbound_secret(settings), message.webhook_id, timestamp, body)
        return {
            "content-type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }, body
    if not (message.sealed_token and message.bound_to):
        raise Unsendable("the notifier has no token")
    try:
        token = sealing.unseal(settings.secret_key, message.sealed_token, message.bound_to)
    except sealing.SealBroken as exc:
        raise Unsendable(str(exc)) from None
    fields = {k: message.payload[k] for k in ("outcome", "description", "context")}
    body = json.dumps(commit_status.body(message.kind, commit_status.Status(**fields), report_url)).encode()
    return {"content-type": "application/json", **commit_status.headers(message.kind, token)}, body


def send_one(settings: Settings, client: httpx.Client, message: Outgoing) -> dict[str, Any]:
    """One attempt. Returns what record_attempt needs; never raises for the receiver's faults."""
    failure = {"status_code": None, "latency_ms": None, "excerpt": None, "retry_after": None}
    routes: list[Route] = [(message.url, {}, {})]
    try:
        if message.is_callback:
            routes = _pinned_callback(settings, message.url)
        headers, body = _request(settings, message)
    except Unsendable as exc:
        return {**failure, "error": str(exc), "final": True}
    started = time.perf_counter()
    try:
        response, excerpt = _post(client, routes, headers, body, settings.delivery_timeout_s)
    except httpx.HTTPError as exc:
        latency = (time.perf_counter() - started) * 1000
        return {**failure, "latency_ms": latency, "error": f"{type(exc).__name__}: {exc}", "final": False}
    retry_after = _retry_after(response)
    refused_for_good = (
        message.kind in commit_status.KINDS
        and not response.is_success
        and not delivery.retryable(response.status_code, retry_after)
    )
    return {
        "status_code": response.status_code,
        "latency_ms": (time.perf_counter() - started) * 1000,
        "excerpt": excerpt,
        "error": None,
        "retry_after": retry_after,
        "final": refused_for_good,
    }


def _post(
    client: httpx.Client, routes: list[Route], headers: dict[str, str], body: bytes, timeout_s: float
) -> tuple[httpx.Response, str]:
    """POST to the first address that takes the connection, as a resolver would; of the answer, read only an
    excerpt, and only until timeout_s (a receiver trickling an endless body must not hold the sender)."""
    deadline = time.monotonic() + timeout_s

    def attempt(route: Route) -> tuple[httpx.Response, str]:
        url, pin_headers, extensions = route
        request = client.build_request(
            "POST", url, content=body, headers={**headers, **pin_headers}, extensions=extensions
        )
        response = client.send(request, stream=True)
        try:
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= EXCERPT_BYTES or time.monotonic() > deadline:
                    break
        finally:
            response.close()
        return response, received[:EXCERPT_BYTES].decode("utf-8", "replace")

    *fallbacks, last = routes
    for route in fallbacks:
        try:
            return attempt(route)
        except httpx.ConnectError:
            continue
    return attempt(last)


def send_due(app: FastAPI) -> tuple[int, float | None]:
    """(how many were sent, seconds until the next pending one is due: None when none is pending)."""
    settings: Settings = app.state.settings
    with transaction(app.state.sessions) as session:
        due_in_s = notifications.due_in_s(session)
        if due_in_s is None or due_in_s > 0:
            return 0, due_in_s
    # httpx's timeout bounds each phase of a request, not its whole: the window leaves room for slow receivers.
    in_flight_s = notifications.BATCH * settings.delivery_timeout_s * 4
    with transaction(app.state.sessions, write=True) as session:
        due = [Outgoing.of(n) for n in notifications.claim_due(session, in_flight_s)]
    schedule = _schedule(settings)
    with httpx.Client(timeout=settings.delivery_timeout_s, follow_redirects=False) as client:
        for message in due:
            outcome = send_one(settings, client, message)
            next_delay = (
                None
                if outcome["final"]
                else delivery.next_delay(message.attempts + 1, outcome["retry_after"], schedule)
            )
            with transaction(app.state.sessions, write=True) as session:
                notifications.record_attempt(
                    session,
                    message.id,
                    status_code=outcome["status_code"],
                    latency_ms=outcome["latency_ms"],
                    excerpt=outcome["excerpt"],
                    error=outcome["error"],
                    next_delay_s=next_delay,
                )
    return len(due), 0.0


async def delivery_loop(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    wakeups = app.state.wakeups
    away = False  # an outage is logged once, not at every poll
    while True:
        ticket = wakeups.ticket(db.OUTBOX)
        wait_s = db.WOKEN_LOOK_S
        try:
            sent, due_in_s = await asyncio.to_thread(send_due, app)
            away = False
            if sent == notifications.BATCH:
                continue  # a full batch: more may be waiting
            if due_in_s is not None:
                wait_s = min(max(due_in_s, 0.0), wait_s)  # a retry falls due: no notification says so
        except Exception as error:  # the loop must outlive a database blip; it logs and tries again
            if not db.unavailable(error):
                log.exception("delivery sweep failed")
            elif not away:
                away = True
                log.warning("delivery: the database is unavailable: %s", str(error).splitlines()[0])
        await wakeups.wait(ticket, wait_s, settings.delivery_poll_s)
