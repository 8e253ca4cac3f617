"""Smoke routes: submit sample outputs, read them back, and the worker's upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from gate.auth.deps import Reader, Submitter, WorkerAuth
from gate.checks.smoke import recording, spec
from gate.checks.smoke.schemas import SmokeCreate, SmokeOut
from gate.deps import RunId, SessionDep, SettingsDep
from gate.errors import Forbidden, InvalidInput
from gate.runs.endpoints import queue
from gate.runs.schemas import ReportUpload, RunDetail, RunOut

router = APIRouter(tags=["smoke"])


@router.post("/smoke/runs", status_code=status.HTTP_201_CREATED, response_model=RunDetail)
def submit(
    body: SmokeCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunDetail:
    """Queue sample outputs of a model: each prompt through its chat template, recorded verbatim. A repeated
    idempotency key (in the body or the `Idempotency-Key` header) returns the run it created (200)."""
    try:
        checked = spec.check(body.spec())
    except ValueError as exc:
        raise InvalidInput(str(exc), field="spec") from None
    if not principal.admin and checked["engine_args"].get("trust_remote_code"):
        raise Forbidden("trust_remote_code needs an admin token")
    return queue(
        session,
        settings,
        principal,
        response,
        body,
        idempotency_key,
        kind=recording.KIND,
        model=checked["model"],
        backend=checked["backend"],
        options=checked,
    )


@router.get("/runs/{run_id}/smoke", response_model=SmokeOut)
def get_smoke(run_id: RunId, session: SessionDep, _: Reader) -> SmokeOut:
    """Each prompt's output verbatim (with its reasoning and answer apart), the sampling used, the model's
    configuration, and the verdict."""
    return SmokeOut.of(recording.stored(session, run_id))


@router.post("/workers/runs/{run_id}/smoke", response_model=RunOut)
def upload(run_id: RunId, body: ReportUpload, session: SessionDep, _: WorkerAuth) -> RunOut:
    """A worker's smoke report for its lease: checked, judged on the server, stored. Idempotent on replay."""
    run = recording.record(
        session, run_id, body.lease, body.report, body.environment, body.log_tail, body.model_fingerprint
    )
    return RunOut.of(run)
