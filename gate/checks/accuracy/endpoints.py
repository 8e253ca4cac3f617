"""Accuracy routes: import lm-eval files made by hand, and browse a run's per-document answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from gate.auth.deps import Reader, Submitter
from gate.checks.accuracy import importing
from gate.checks.accuracy import queries as sample_queries
from gate.checks.accuracy import results as lmeval
from gate.checks.accuracy.schemas import SampleOut
from gate.checks.accuracy.uploads import parse_upload
from gate.deps import RunId, SessionDep, SettingsDep, write_turn
from gate.errors import InvalidInput
from gate.runs import service as runs
from gate.runs.schemas import MODEL_FINGERPRINT, CIContext, PlainText, RunDetail

router = APIRouter(prefix="/runs", tags=["runs"])


@router.post("/import", status_code=status.HTTP_201_CREATED, response_model=RunDetail)
async def import_run(
    request: Request,
    settings: SettingsDep,
    principal: Submitter,
    results: Annotated[UploadFile, File(description="lm-eval results_*.json")],
    samples: Annotated[list[UploadFile] | None, File(description="lm-eval samples_<task>_*.jsonl")] = None,
    model: Annotated[str | None, Form(max_length=500)] = None,
    backend: Annotated[str | None, Form(max_length=32)] = None,
    baseline: Annotated[PlainText | None, Form(max_length=200)] = None,
    ci: Annotated[str | None, Form(description="CI context as JSON")] = None,
    model_fingerprint: Annotated[
        str | None, Form(pattern=MODEL_FINGERPRINT, description="the model's fingerprint (gate import --model-dir)")
    ] = None,
) -> Response:
    """Upload a run made by hand: creates a finished run, its scores and its verdict."""
    parsed, outcomes, files = await parse_upload(results, samples or [], settings.max_upload_bytes)
    # On import the model and backend are provenance, never loaded: recorded as written, only bounded.
    named = model or lmeval.named_model(parsed)
    if named is None:
        raise InvalidInput("model is required: the results name no model", field="model")
    model_name = lmeval.provenance_text(named, "model", lmeval.MODEL_NAME_MAX_CHARS)
    backend = lmeval.provenance_text(
        backend or lmeval.model_type(parsed) or "unknown", "backend", lmeval.MODEL_TYPE_MAX_CHARS
    )
    ci_context = None
    if ci:
        try:
            ci_context = CIContext.model_validate_json(ci).model_dump(exclude_none=True)
        except ValueError as exc:
            raise InvalidInput(f"ci is not a valid CI context: {exc}", field="ci") from None

    def store() -> bytes:  # once the upload is parsed and checked; serialised once, here, not checked again
        rows = importing.import_results(
            request.app.state.sessions,
            request.app.state.reader,
            model=model_name,
            backend=backend,
            baseline_name=baseline,
            parsed=parsed,
            samples=outcomes,
            files=files,
            submitted_by=principal.name,
            ci_context=ci_context,
            model_fingerprint=model_fingerprint,
        )
        return RunDetail.build(rows.run, rows.scores, rows.verdicts, rows.files).model_dump_json().encode()

    async with write_turn(request.app):
        body = await run_in_threadpool(store)
    return Response(body, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.get("/{run_id}/samples", response_model=list[SampleOut])
def get_samples(
    run_id: RunId,
    session: SessionDep,
    _: Reader,
    task: Annotated[str | None, Query(max_length=200)] = None,
    wrong: bool = False,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[SampleOut]:
    """Per-sample outcomes; `wrong=true` keeps the questions the model got wrong."""
    runs.get(session, run_id)
    rows = sample_queries.samples(session, run_id, task=task, only_wrong=wrong, limit=limit, offset=offset)
    return [SampleOut.of(s) for s in rows]
