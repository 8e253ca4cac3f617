"""Qualification routes: queue a plan's checks, read the qualification's state, its report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from gate import edge, i18n
from gate.auth.deps import Reader, Submitter
from gate.db import MAX_ID
from gate.deps import SessionDep, SettingsDep
from gate.errors import Forbidden
from gate.i18n import web as i18n_web
from gate.qualifications import markdown, report
from gate.qualifications import service as qualifications
from gate.qualifications.schemas import QualificationCreate, QualificationOut

router = APIRouter(prefix="/qualifications", tags=["qualifications"])
QualificationId = Annotated[int, Path(ge=1, le=MAX_ID, description="qualification id")]
MAX_PAGE = 200


@router.post("", status_code=status.HTTP_201_CREATED, response_model=QualificationOut)
def create(
    body: QualificationCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> QualificationOut:
    """Queue every check of a plan (default `card`: GSM8K accuracy gate, alignment probe, serving profile, smoke
    outputs) for one model. A repeated idempotency key returns the qualification it created (200)."""
    q, created = qualifications.create(
        session,
        body.plan,
        body.request(),
        submitted_by=principal.name,
        admin=principal.admin,
        max_attempts=settings.max_attempts,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/qualifications/{q.id}"
    return QualificationOut.of(q, qualifications.states(session, q, settings.worker_offline_after_s))


@router.get("", response_model=list[QualificationOut])
def list_qualifications(
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    model: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> list[QualificationOut]:
    """Qualifications, newest first."""
    found = qualifications.listing(session, model, limit)
    return [QualificationOut.of(q, qualifications.states(session, q, settings.worker_offline_after_s)) for q in found]


@router.get("/{qualification_id}", response_model=QualificationOut)
def get(qualification_id: QualificationId, session: SessionDep, settings: SettingsDep, _: Reader) -> QualificationOut:
    """The qualification's state and overall verdict, each check's run, and why a check waits or kept it from a
    pass."""
    q = qualifications.get(session, qualification_id)
    return QualificationOut.of(q, qualifications.states(session, q, settings.worker_offline_after_s))


@router.post("/{qualification_id}/cancel", response_model=QualificationOut)
def cancel(
    qualification_id: QualificationId, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> QualificationOut:
    """Cancel the qualification's runs still queued or running (a running one is stopped by its worker); those
    that ended keep their end. Only the token that submitted it, or an admin, may cancel it."""
    q = qualifications.get(session, qualification_id)
    if not principal.admin and q.submitted_by != principal.name:
        raise Forbidden(
            f"qualification {qualification_id} was submitted by another token: only it or an admin may cancel it"
        )
    qualifications.cancel(session, q)
    session.expire_all()  # the runs as the cancels left them
    return QualificationOut.of(q, qualifications.states(session, q, settings.worker_offline_after_s))


@router.get("/{qualification_id}/report")
def get_report(
    qualification_id: QualificationId, session: SessionDep, settings: SettingsDep, _: Reader
) -> dict[str, Any]:
    """The report's figures as data: environment, sample outputs, alignment tables, accuracy verdicts and official
    baselines, throughput, model configuration, memory, commands; each section names its run."""
    q = qualifications.get(session, qualification_id)
    return report.gather(session, q, settings.worker_offline_after_s)


@router.get("/{qualification_id}/report.md", response_class=Response)
def get_markdown(
    qualification_id: QualificationId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    lang: Annotated[str | None, Query(max_length=20, description="en or zh; else Accept-Language")] = None,
) -> Response:
    """The report as Markdown to paste into a model card, in English or Simplified Chinese."""
    q = qualifications.get(session, qualification_id)
    locale = i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(i18n_web.COOKIE), lang)
    text = markdown.render(
        report.gather(session, q, settings.worker_offline_after_s),
        i18n.translations(locale).gettext,
        locale,
        settings.public_url,
    )
    name = f"qualification-{q.id}-{locale}.md"
    return Response(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": edge.content_disposition(name)},
    )
