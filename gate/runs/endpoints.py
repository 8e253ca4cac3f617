"""Runs: queue, read, export, cancel."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from sqlalchemy.orm import Session

from gate import edge
from gate.auth.deps import Principal, Reader, Submitter
from gate.deps import RunId, SessionDep, SettingsDep, read
from gate.errors import Forbidden, InvalidInput
from gate.notifications import targets
from gate.runs import queries
from gate.runs import service as runs
from gate.runs.schemas import (
    CheckCreate,
    RunCreate,
    RunDetail,
    RunOut,
    RunPage,
    Status,
    VerdictName,
)
from gate.settings import Settings

router = APIRouter(prefix="/runs", tags=["runs"])
MAX_PAGE = 200
EXPORT_MAX = 10_000


def run_request(body: RunCreate, settings: Settings) -> runs.RunRequest:
    """A validated run request; a callback URL must be on the admin's allow-list."""
    if body.callback_url is not None:
        if settings.secret_key is None:
            raise InvalidInput("callbacks need GATE_SECRET_KEY on the server to sign them", field="callback_url")
        try:
            targets.check_url(body.callback_url, targets.allowed_hosts(settings.callback_allowed_hosts))
        except targets.TargetRefused as exc:
            raise InvalidInput(str(exc), field="callback_url") from None
    return runs.RunRequest(
        model=body.model,
        tasks=body.tasks,
        backend=body.backend,
        baseline=body.baseline,
        labels=body.labels,
        priority=body.priority,
        options=body.options.model_dump(exclude_none=True),
        ci_context=body.ci.model_dump(exclude_none=True) if body.ci else None,
        callback_url=body.callback_url,
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut)
def create_run(
    body: RunCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunOut:
    """Queue an evaluation. A repeated `Idempotency-Key` returns the run it created (200)."""
    request = run_request(body, settings)
    try:
        run, created = runs.submit(
            session,
            request,
            submitted_by=principal.name,
            admin=principal.admin,
            max_attempts=settings.max_attempts,
            idempotency_key=idempotency_key,
        )
    except ValueError as exc:  # an unknown option profile
        raise InvalidInput(str(exc), field="options.profile") from None
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return RunOut.of(run)


def queue(
    session: Session,
    settings: Settings,
    principal: Principal,
    response: Response,
    body: CheckCreate,
    idempotency_key: str | None,
    *,
    kind: str,
    model: str,
    backend: str,
    options: dict[str, Any],
) -> RunDetail:
    """Queue a run of a check kind submitted through its own route, its spec already checked: 201, or 200 with the
    run a repeated idempotency key (in the body or the `Idempotency-Key` header) created."""
    request = runs.RunRequest(
        kind=kind,
        model=model,
        tasks=[],
        backend=backend,
        baseline=body.baseline,
        labels=body.labels,
        priority=body.priority,
        options=options,
        ci_context=body.ci.model_dump(exclude_none=True) if body.ci else None,
    )
    run, created = runs.submit(
        session,
        request,
        submitted_by=principal.name,
        admin=principal.admin,
        max_attempts=settings.max_attempts,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return RunDetail.full(run, queries.artifact_names(session, run.id))


def _filter(
    model: str | None,
    task: str | None,
    status_: str | None,
    verdict: str | None,
    baseline: str | None,
    since: datetime | None,
    until: datetime | None,
) -> queries.RunFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-11-25T00:00:00Z)", field=name)
    return queries.RunFilter(
        model=model, task=task, status=status_, verdict=verdict, baseline=baseline, since=since, until=until
    )


@router.get("", response_model=RunPage)
async def list_runs(
    request: Request,
    _: Reader,
    model: Annotated[str | None, Query(max_length=500)] = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    verdict: VerdictName | None = None,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    """Run history, newest first, with cursor pagination."""
    flt = _filter(model, task, status_, verdict, baseline, since, until)

    rows, next_cursor = await read(  # the most frequent read: rows on a connection (deps.read)
        request.app, lambda connection: queries.run_rows(connection, flt, limit=limit, cursor=cursor)
    )
    page = RunPage(runs=[RunOut.of(r) for r in rows], next_cursor=next_cursor)
    return Response(page.model_dump_json().encode(), media_type="application/json")


@router.get("/export", response_class=Response, responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_runs(
    session: SessionDep,
    _: Reader,
    format: Literal["csv", "json"] = "csv",
    model: Annotated[str | None, Query(max_length=500)] = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    verdict: VerdictName | None = None,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    """Every matching run with its scores (up to 10,000), as CSV or JSON: one row per run and score (an alignment
    run's scores are its comparisons' overall figures)."""
    page, _next = queries.list_runs(
        session, _filter(model, task, status_, verdict, baseline, since, until), limit=EXPORT_MAX
    )
    rows = [
        {
            "run_id": r.id,
            "kind": r.kind,
            "model": r.model,
            "backend": r.backend,
            "status": r.status,
            "verdict": r.verdict,
            "baseline": r.baseline.name if r.baseline else None,
            "model_fingerprint": r.model_fingerprint,
            "created_at": r.created_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "task": s.task,
            "metric": s.metric,
            "value": s.value,
            "stderr": s.stderr,
            "n_samples": s.n_samples,
        }
        for r in page
        for s in r.scores
    ]
    if format == "json":
        return Response(json.dumps(rows), media_type="application/json")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="gate-runs.csv"'},
    )


@router.get("/{run_id}", response_model=RunDetail)
async def get_run(request: Request, run_id: RunId, _: Reader) -> Response:
    """A run with its scores, baseline, deltas, verdicts, eval profile and environment."""
    app = request.app
    if app.state.async_reader is None:  # SQLite: on the event loop (see deps.database)
        rows = queries.run_detail_rows(app.state.reader, run_id)
    else:
        found = await queries.RUN_WITH_CHILDREN.first(app.state.async_reader, {"run_id": run_id})
        rows = queries.with_children(found, run_id)
    detail = RunDetail.build(rows.run, rows.scores, rows.verdicts, rows.files)
    return Response(detail.model_dump_json().encode(), media_type="application/json")


@router.get("/{run_id}/files/{name}", response_class=Response)
def get_file(run_id: RunId, name: str, session: SessionDep, _: Reader) -> Response:
    """The raw lm-eval file as uploaded."""
    content = queries.artifact(session, run_id, name)
    media = "application/json" if name.endswith(".json") else "application/x-ndjson"
    return Response(content, media_type=media, headers={"Content-Disposition": edge.content_disposition(name)})


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel_run(run_id: RunId, session: SessionDep, principal: Submitter) -> RunOut:
    """Cancel a queued or running run; a running evaluation is stopped by its worker. Only the token that submitted
    the run (or an admin) may cancel it."""
    owner = runs.get(session, run_id).submitted_by
    if not principal.admin and owner != principal.name:
        raise Forbidden(f"run {run_id} was submitted by another token: only it or an admin may cancel the run")
    return RunOut.of(runs.cancel(session, run_id))
