"""HTML routes. Each gathers plain data (gate.dashboard.views, gate.runs.queries) and renders a template."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from gate import checks
from gate.auth import tokens
from gate.auth.deps import READ_COOKIE, Reader, require
from gate.checks.accuracy import profile
from gate.checks.accuracy import queries as sample_queries
from gate.dashboard import views
from gate.dashboard.static import STATIC_DIR
from gate.db import MAX_ID
from gate.deps import RunId, SessionDep, SettingsDep
from gate.errors import InvalidInput
from gate.notifications import outbox as notifications
from gate.runs import queries
from gate.runs import service as runs
from gate.runs.schemas import Status, VerdictName

router = APIRouter(include_in_schema=False)
PAGE = 50
SAMPLES_PAGE = 50
QueryRunId = Annotated[int, Query(ge=1, le=MAX_ID)]


def render(request: Request, name: str, **context: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, settings: SettingsDep, _: Reader) -> HTMLResponse:
    return render(
        request,
        "overview.html",
        latest=views.latest_verdicts(session),
        active=views.active_runs(session),
        workers=views.workers(session, settings.worker_offline_after_s, settings.lease_s),
        public_url=settings.public_url,
    )


@router.get("/runs", response_class=HTMLResponse)
def run_list(
    request: Request,
    session: SessionDep,
    _: Reader,
    model: Annotated[str | None, Query(max_length=500)] = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    verdict: Annotated[str | None, Query(max_length=20)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    # an HTML form sends every field, empty ones as ""
    for name, value, allowed in (("status", status, get_args(Status)), ("verdict", verdict, get_args(VerdictName))):
        if value and value not in allowed:
            raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", field=name)
    flt = queries.RunFilter(
        model=model or None,
        task=task or None,
        status=status or None,
        verdict=verdict or None,
        since=since,
        until=until,
    )
    page, next_cursor = queries.list_runs(session, flt, limit=PAGE, cursor=cursor)
    filters = {k: v for k, v in {"model": model, "task": task, "status": status, "verdict": verdict}.items() if v}
    gated = views.gated_verdicts(session, [r.id for r in page])
    return render(
        request, "runs.html", runs=page, gated=gated, next_cursor=next_cursor, filters=filters, since=since, until=until
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_report(
    request: Request,
    run_id: RunId,
    session: SessionDep,
    _: Reader,
    wrong: bool = False,
    task: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    text: Annotated[str | None, Query(max_length=500)] = None,
    comparison: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    run = runs.get(session, run_id)
    # a kind with a `pages` part shows its own section (templates/checks/<kind>/run.html) in place of the samples
    paged = checks.has_part(run.kind, "pages")
    section = checks.part(run.kind, "pages").section(session, run, text or None, comparison or None) if paged else None
    task = task or None  # the form sends its blank Task box as task=
    samples = sample_queries.samples(session, run_id, task=task, only_wrong=wrong, limit=SAMPLES_PAGE, offset=offset)
    profiles = run.eval_profile or {}
    return render(
        request,
        "run.html",
        run=run,
        profile_tasks=profile.top_level(profiles),
        not_gated=profile.not_gated(profiles, [v.task for v in run.verdicts]),
        samples=samples,
        wrong=wrong,
        task=task,
        offset=offset,
        page=SAMPLES_PAGE,
        files=queries.artifact_names(session, run_id),
        deliveries=notifications.for_run(session, run_id),
        truncation=views.truncation(run),
        spreads=views.spreads(run),
        estimate=views.estimate_chart(run),
        section_template=f"checks/{run.kind}/run.html" if paged else None,
        section=section,
    )


@router.get("/models/{name:path}", response_class=HTMLResponse)
def model_history(
    request: Request,
    name: str,
    session: SessionDep,
    _: Reader,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    return render(request, "model.html", **views.model_page(session, name, baseline))


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request, session: SessionDep, _: Reader, a: QueryRunId | None = None, b: QueryRunId | None = None
) -> HTMLResponse:
    if a is None or b is None:
        raise InvalidInput("name the two runs to compare: /compare?a=RUN&b=RUN", field="a" if a is None else "b")
    if a == b:
        raise InvalidInput("pick two different runs", field="b")
    return render(request, "compare.html", **views.comparison(session, runs.get(session, a), runs.get(session, b)))


@router.get("/baselines", response_class=HTMLResponse)
def baseline_list(request: Request, session: SessionDep, _: Reader) -> HTMLResponse:
    return render(request, "baselines.html", baselines=views.baselines_page(session))


BADGE_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "running": "#0969da", "unknown": "#6e7781"}


@router.get("/badge/{model:path}", response_class=Response)
def badge(
    request: Request,
    model: str,
    session: SessionDep,
    settings: SettingsDep,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A status badge for READMEs: the latest verdict of a model (pass, fail, running, unknown)."""
    if not settings.public_badges:
        require("read")(request, settings)
    state = views.badge_state(session, model.removesuffix(".svg"), baseline)
    svg = request.app.state.templates.get_template("badge.svg").render(
        label="gate", state=state.replace("_", " "), colour=BADGE_COLOURS.get(state, BADGE_COLOURS["unknown"])
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico", response_class=FileResponse)
def favicon() -> FileResponse:
    icon = STATIC_DIR / "favicon.ico"
    return FileResponse(icon, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", error=None)


@router.post("/login", response_model=None)
def login(request: Request, session: SessionDep, token: Annotated[str, Form(max_length=200)]) -> Response:
    """Keep a token in a cookie for browsing. The cookie grants reading only, whatever the token's scopes."""
    if tokens.lookup(session, token.strip()) is None:
        return render(request, "login.html", error="unknown or revoked token")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(READ_COOKIE, token.strip(), httponly=True, samesite="strict", max_age=7 * 24 * 3600)
    return response
