"""Inbound CI webhooks (signed, never a token in the URL) and redelivery of outbound notifications."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from gate.auth.deps import Admin, Reader
from gate.db import MAX_ID, transaction
from gate.deps import RunId, SessionDep, SettingsDep, write_turn
from gate.errors import InvalidInput, TooLarge, Unauthorized, Unavailable
from gate.notifications import inbound as webhooks
from gate.notifications import outbox as notifications
from gate.notifications import signatures
from gate.qualifications import service as qualifications
from gate.qualifications.schemas import QualificationCreate, QualificationOut
from gate.runs.endpoints import run_request
from gate.runs.schemas import RunCreate, RunOut

router = APIRouter(tags=["webhooks"])


async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"webhook body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _verify(kind: str, secret: bytes, request: Request, body: bytes) -> str:
    """Check the signature for the source's kind; returns the delivery id."""
    headers = request.headers
    try:
        if kind == "github":
            signatures.verify_github(
                signatures.standard_secret_text(secret).encode(), body, headers.get("x-hub-signature-256")
            )
            delivery = headers.get("x-github-delivery")
        elif kind == "gitlab":
            signatures.verify_gitlab(secret, headers.get("x-gitlab-token"))
            delivery = headers.get("x-gitlab-event-uuid") or headers.get("idempotency-key")
        else:
            signatures.verify_standard(
                secret,
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
                body,
                time.time(),
            )
            delivery = headers.get("webhook-id")
    except signatures.BadSignature as exc:
        raise Unauthorized(str(exc)) from None
    if not delivery or len(delivery) > 200:
        raise InvalidInput("the delivery id header is missing (X-GitHub-Delivery, X-Gitlab-Event-UUID, webhook-id)")
    return delivery


Payload = TypeVar("Payload", bound=BaseModel)


def _payload(shape: type[Payload], body: bytes) -> Payload:
    try:
        return shape.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("the webhook body is not valid JSON") from None
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(detail) from None


class WebhookRun(RunCreate):
    """The payload of a CI webhook: a run request (callback_url included) with its CI context."""


@router.post(
    "/webhooks/ci",
    status_code=status.HTTP_201_CREATED,
    response_model=RunOut,
    responses={200: {"description": "a delivery seen before: its run"}},
)
async def ci_webhook(
    request: Request,
    response: Response,
    settings: SettingsDep,
    source: Annotated[str, Query(min_length=1, max_length=100, description="the CI source's name")],
) -> Any:
    """Start a run from a CI event, authenticated by the source's signature. Redeliveries create nothing."""
    if settings.secret_key is None:
        raise Unavailable("webhooks need GATE_SECRET_KEY on the server")
    key = settings.secret_key
    body = await _body(request, settings.webhook_max_bytes)

    def handle() -> tuple[RunOut, bool]:
        with transaction(request.app.state.sessions, write=True) as session:
            row = webhooks.source(session, source)
            delivery = _verify(row.kind, signatures.derive_secret(key, row.name, row.nonce), request, body)
            payload = _payload(WebhookRun, body)
            run, created = webhooks.receive(
                session, row, delivery, run_request(payload, settings), settings.max_attempts
            )
            return RunOut.of(run), created

    async with write_turn(request.app):
        run, created = await run_in_threadpool(handle)
    if not created:
        response.status_code = status.HTTP_200_OK
    return run


@router.post(
    "/webhooks/ci/qualifications",
    status_code=status.HTTP_201_CREATED,
    response_model=QualificationOut,
    responses={200: {"description": "a delivery seen before: its qualification"}},
)
async def ci_qualification_webhook(
    request: Request,
    response: Response,
    settings: SettingsDep,
    source: Annotated[str, Query(min_length=1, max_length=100, description="the CI source's name")],
) -> Any:
    """Start a qualification (the body of `POST /qualifications`) from a CI event, authenticated by the source's
    signature. Redeliveries create nothing."""
    if settings.secret_key is None:
        raise Unavailable("webhooks need GATE_SECRET_KEY on the server")
    key = settings.secret_key
    body = await _body(request, settings.webhook_max_bytes)

    def handle() -> tuple[QualificationOut, bool]:
        with transaction(request.app.state.sessions, write=True) as session:
            row = webhooks.source(session, source)
            delivery = _verify(row.kind, signatures.derive_secret(key, row.name, row.nonce), request, body)
            payload = _payload(QualificationCreate, body)
            q, created = webhooks.receive_qualification(
                session, row, delivery, payload.plan, payload.request(), settings.max_attempts
            )
            return QualificationOut.of(q, qualifications.states(session, q, settings.worker_offline_after_s)), created

    async with write_turn(request.app):
        found, created = await run_in_threadpool(handle)
    if not created:
        response.status_code = status.HTTP_200_OK
    return found


@router.get("/runs/{run_id}/deliveries", tags=["runs"])
def run_deliveries(run_id: RunId, session: SessionDep, _: Reader) -> list[dict[str, Any]]:
    """Outbound notifications of a run, with every attempt (status, latency, response excerpt)."""
    return [
        {
            "id": n.id,
            "kind": n.kind,
            "url": n.url,
            "webhook_id": n.webhook_id,
            "status": n.status,
            "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at,
            "log": [
                {
                    "at": a.at,
                    "status_code": a.status_code,
                    "latency_ms": a.latency_ms,
                    "response_excerpt": a.response_excerpt,
                    "error": a.error,
                }
                for a in n.attempt_log
            ],
        }
        for n in notifications.for_run(session, run_id)
    ]


@router.post("/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED)
def redeliver(delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, _: Admin) -> dict:
    """Send a notification again, now, with the same webhook-id."""
    n = notifications.redeliver(session, delivery_id)
    return {"id": n.id, "status": n.status}
