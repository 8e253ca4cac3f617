"""Serving routes: submit a benchmark, read its report, and the worker's upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from gate.auth.deps import Reader, Submitter, WorkerAuth
from gate.baselines import service as baselines
from gate.checks.serving import recording, spec
from gate.checks.serving.schemas import ServingCreate, ServingOut
from gate.deps import RunId, SessionDep, SettingsDep
from gate.errors import Forbidden, InvalidInput
from gate.runs.endpoints import queue
from gate.runs.schemas import ReportUpload, RunDetail, RunOut

router = APIRouter(tags=["serving"])


@router.post("/serving/runs", status_code=status.HTTP_201_CREATED, response_model=RunDetail)
def submit(
    body: ServingCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunDetail:
    """Queue a serving benchmark. A repeated idempotency key (in the body or the `Idempotency-Key` header) returns
    the run it created (200)."""
    try:
        checked = spec.check(body.spec())
    except ValueError as exc:
        raise InvalidInput(str(exc), field="spec") from None
    if not principal.admin and checked["engine_args"].get("trust_remote_code"):
        raise Forbidden("trust_remote_code needs an admin token")
    # what cannot judge refuses the run now, not when its report arrives: bad settings, a reference that is none
    limits = recording.thresholds(baselines.get(session, body.baseline) if body.baseline is not None else None)
    ref_id = recording.reference_run(checked, limits)
    if ref_id is not None:
        recording.reference(session, ref_id)
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


@router.get("/runs/{run_id}/serving", response_model=ServingOut)
def get_serving(run_id: RunId, session: SessionDep, _: Reader) -> ServingOut:
    """The benchmark's figures per level and round, the server's log figures, and the verdict against the reference."""
    return ServingOut.of(recording.stored(session, run_id))


@router.post("/workers/runs/{run_id}/serving", response_model=RunOut)
def upload(run_id: RunId, body: ReportUpload, session: SessionDep, _: WorkerAuth) -> RunOut:
    """A worker's benchmark report for its lease: checked, judged on the server, stored. Idempotent on replay."""
    run = recording.record(
        session, run_id, body.lease, body.report, body.environment, body.log_tail, body.model_fingerprint
    )
    return RunOut.of(run)
