"""The delivery loop: sends due notifications, signed in the Standard Webhooks form, and logs each attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from email.utils import parsedate_to_datetime

import httpx
from fastapi import FastAPI

from gate.core import delivery, signatures, targets
from gate.settings import Settings
from gate.store import notifications
from gate.store.db import transaction

log = logging.getLogger("gate.sender")
TIMEOUT_S = 15.0


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


def send_one(settings: Settings, client: httpx.Client, url: str, webhook_id: str, body: bytes) -> dict:
    """One attempt. Returns what record_attempt needs; never raises for the receiver's faults."""
    try:
        host = targets.check_url(url, targets.allowed_hosts(settings.callback_allowed_hosts))
        resolved = [info[4][0] for info in socket.getaddrinfo(host, None)]
        targets.check_addresses(resolved, settings.callback_allow_private)  # again at send time: DNS may change
    except (targets.TargetRefused, OSError) as exc:
        return {
            "status_code": None,
            "latency_ms": None,
            "excerpt": None,
            "error": f"refused: {exc}",
            "retry_after": None,
            "final": True,
        }
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.standard_signature(outbound_secret(settings), webhook_id, timestamp, body),
    }
    started = time.perf_counter()
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return {
            "status_code": None,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "excerpt": None,
            "error": f"{type(exc).__name__}: {exc}",
            "retry_after": None,
            "final": False,
        }
    return {
        "status_code": response.status_code,
        "latency_ms": (time.perf_counter() - started) * 1000,
        "excerpt": response.text[: notifications.EXCERPT_CHARS],
        "error": None,
        "retry_after": _retry_after(response),
        "final": False,
    }


def send_due(app: FastAPI) -> int:
    settings: Settings = app.state.settings
    with transaction(app.state.sessions, write=True) as session:
        due = [(n.id, n.url, n.webhook_id, n.payload, n.attempts) for n in notifications.claim_due(session)]
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
        for notification_id, url, webhook_id, payload, attempts in due:
            body = json.dumps(
                {**payload, "report_url": settings.public_url.rstrip("/") + payload["report_path"]}, sort_keys=True
            ).encode()
            outcome = send_one(settings, client, url, webhook_id, body)
            next_delay = (
                None
                if outcome["final"]
                else delivery.next_delay(attempts + 1, outcome["retry_after"], _schedule(settings))
            )
            with transaction(app.state.sessions, write=True) as session:
                notifications.record_attempt(
                    session,
                    notification_id,
                    status_code=outcome["status_code"],
                    latency_ms=outcome["latency_ms"],
                    excerpt=outcome["excerpt"],
                    error=outcome["error"],
                    next_delay_s=next_delay,
                )
    return len(due)


async def delivery_loop(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    while True:
        try:
            await asyncio.to_thread(send_due, app)
        except Exception:  # the loop must outlive a database blip; it logs and tries again
            log.exception("delivery sweep failed")
        await asyncio.sleep(settings.delivery_poll_s)
