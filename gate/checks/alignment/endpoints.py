"""Alignment routes: submit a probe, read its report and one text's positions, and the worker's upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from gate.auth.deps import Reader, Submitter, WorkerAuth
from gate.baselines import service as baselines
from gate.checks.alignment import recording, spec
from gate.checks.alignment.schemas import AlignmentCreate, AlignmentOut, PositionsOut
from gate.deps import RunId, SessionDep, SettingsDep
from gate.errors import Forbidden, InvalidInput, NotFound
from gate.runs.endpoints import queue
from gate.runs.schemas import ReportUpload, RunDetail, RunOut

router = APIRouter(tags=["alignment"])


@router.post("/alignment/runs", status_code=status.HTTP_201_CREATED, response_model=RunDetail)
def submit(
    body: AlignmentCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunDetail:
    """Queue an alignment probe of the candidate against the reference. A repeated idempotency key (in the body or
    the `Idempotency-Key` header) returns the run it created (200)."""
    try:
        checked = spec.check(body.spec())
    except ValueError as exc:
        raise InvalidInput(str(exc), field="spec") from None
    if not principal.admin and any(
        side["engine_args"].get("trust_remote_code") for side in (checked["candidate"], checked["reference"])
    ):
        raise Forbidden("trust_remote_code needs an admin token")
    if body.baseline is not None:  # thresholds that cannot judge refuse the run now, not when its report arrives
        recording.thresholds(baselines.get(session, body.baseline))
    return queue(
        session,
        settings,
        principal,
        response,
        body,
        idempotency_key,
        kind=recording.KIND,
        model=checked["candidate"]["model"],
        backend=checked["candidate"]["backend"],
        options=checked,
    )


@router.get("/runs/{run_id}/alignment", response_model=AlignmentOut)
def get_alignment(run_id: RunId, session: SessionDep, _: Reader) -> AlignmentOut:
    """The probe's verdict, thresholds, sides, the card's tables and per-text figures (positions: see below)."""
    return AlignmentOut.of(recording.stored(session, run_id))


@router.get("/runs/{run_id}/alignment/positions", response_model=PositionsOut)
def get_positions(
    run_id: RunId,
    session: SessionDep,
    _: Reader,
    comparison: Annotated[str, Query(max_length=200)],
    text: Annotated[str, Query(max_length=200)],
) -> PositionsOut:
    """One text of one comparison, position by position: where the two sides diverge."""
    report = recording.stored(session, run_id).report
    compared = report["comparisons"].get(comparison)
    if compared is None:
        raise NotFound(f"run {run_id} has no comparison {comparison!r}", field="comparison")
    figures = next((t for t in compared["texts"] if t["name"] == text), None)
    probe = next((p for p in report["probe"] if p["name"] == text), None)
    if figures is None or probe is None:
        raise NotFound(f"comparison {comparison!r} has no text {text!r}", field="text")
    decoded = report.get("tokens", {})
    return PositionsOut(
        comparison=comparison,
        text=text,
        tokens=[decoded.get(str(token), "") for token in probe.get("token_ids", [])],
        positions=figures["positions"],
    )


@router.post("/workers/runs/{run_id}/alignment", response_model=RunOut)
def upload(run_id: RunId, body: ReportUpload, session: SessionDep, _: WorkerAuth) -> RunOut:
    """A worker's probe report for its lease: checked, judged on the server, stored. Idempotent on replay."""
    run = recording.record(
        session, run_id, body.lease, body.report, body.environment, body.log_tail, body.model_fingerprint
    )
    return RunOut.of(run)
