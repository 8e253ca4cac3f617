"""The qualification pages: the list, one qualification's report, and two side by side (before/after)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from gate import checks, i18n
from gate.auth.deps import Reader
from gate.db import MAX_ID
from gate.deps import SessionDep, SettingsDep
from gate.errors import InvalidInput
from gate.qualifications import compare, report, words
from gate.qualifications import service as qualifications
from gate.qualifications.endpoints import QualificationId
from gate.qualifications.models import Qualification
from gate.runs.models import RunStatus

router = APIRouter(include_in_schema=False)
PAGE = 100
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]


def render(request: Request, name: str, **context: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, name, context)


def sections(session: Any, q: Qualification) -> list[dict[str, Any]]:
    """Each finished check's own run-page section (templates/checks/<kind>/run.html) with its run."""
    found = []
    for c in q.checks:
        run = c.run
        if run.status != RunStatus.SUCCEEDED or not checks.has_part(run.kind, "pages"):
            continue
        section = checks.part(run.kind, "pages").section(session, run, None, None)
        if section is not None:
            found.append({"run": run, "section": section, "template": f"checks/{run.kind}/run.html"})
    return found


@router.get("/qualifications", response_class=HTMLResponse)
def qualification_list(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    model: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    found = qualifications.listing(session, model or None, PAGE)
    rows = [(q, report.summary(session, q, settings.worker_offline_after_s)) for q in found]
    return render(request, "qualifications/list.html", rows=rows, model=model)


@router.get("/qualifications/compare", response_class=HTMLResponse)
def qualification_compare(
    request: Request, session: SessionDep, settings: SettingsDep, _: Reader, a: QueryId, b: QueryId
) -> HTMLResponse:
    first, second = qualifications.get(session, a), qualifications.get(session, b)
    if first.model != second.model:
        raise InvalidInput(
            f"qualifications {a} and {b} qualify different models ({first.model}, {second.model})", field="b"
        )
    left = report.gather(session, first, settings.worker_offline_after_s)
    right = report.gather(session, second, settings.worker_offline_after_s)
    return render(request, "qualifications/compare.html", a=left, b=right, rows=compare.rows(left, right))


@router.get("/qualifications/{qualification_id}", response_class=HTMLResponse)
def qualification_page(
    qualification_id: QualificationId, request: Request, session: SessionDep, settings: SettingsDep, _: Reader
) -> HTMLResponse:
    q = qualifications.get(session, qualification_id)
    found = report.gather(session, q, settings.worker_offline_after_s)
    return render(
        request,
        "qualifications/report.html",
        q=q,
        report=found,
        sections=sections(session, q),
        cause=lambda c: words.cause(c, found["checks"], i18n.gettext),
        waiting=lambda c: words.waiting(c, i18n.gettext),
    )
