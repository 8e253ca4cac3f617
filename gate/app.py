"""create_app(settings): the FastAPI application and its lifespan (engine, migrations, baselines, background loops)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gate import checks, db, edge, handlers, migrate
from gate.auth.deps import TokenCache
from gate.baselines import endpoints as baseline_endpoints
from gate.baselines import files as baseline_files
from gate.baselines import service as baselines
from gate.dashboard import formatting as dashboard_formatting
from gate.dashboard import routes as dashboard_routes
from gate.dashboard.static import STATIC_DIR
from gate.db import is_sqlite, make_engine, make_session_factory, transaction
from gate.deployment import background, wakeups
from gate.i18n import web as i18n_web
from gate.notifications import endpoints as webhook_endpoints
from gate.qualifications import endpoints as qualification_endpoints
from gate.qualifications import pages as qualification_pages
from gate.runs import endpoints as run_endpoints
from gate.runs import workers
from gate.settings import Settings, get_settings

log = logging.getLogger("gate")


class BodyTooLarge(HTTPException):
    """Raised from the request's receive: FastAPI's body parsing passes an HTTPException on (any other exception
    becomes a 400), so the one error handler answers 413 wherever the body is read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit} byte limit")


class BodyLimit:
    """Refuse request bodies over the limit with 413, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            refusal = BodyTooLarge(self.limit)
            await handlers.answer_http(Request(scope), refusal)(scope, receive, send)
            return
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, bounded_receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_s)
        migrate.upgrade(engine)
        app.state.engine = engine
        app.state.reader = db.reader(engine)
        app.state.async_reader = None if is_sqlite(engine) else db.async_reader(settings.database_url)
        app.state.sessions = make_session_factory(engine)
        app.state.inline_database = is_sqlite(engine)  # see deps.database
        # Writers take turns on the event loop (see deps.write_turn): one at a time on SQLite; on Postgres fewer
        # than the worker threads, so a transaction that waits on another's row lock never holds the last thread
        # the other needs to finish
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        app.state.write_turn = asyncio.Semaphore(1 if is_sqlite(engine) else max(threads // 2, 1))
        with transaction(app.state.sessions, write=True) as session:
            db.one_at_a_time(session.connection())  # API processes starting together would insert the same baselines
            baselines.load(session, baseline_files.read_dir(settings.baselines_dir))
        app.state.wakeups = wakeups.Wakeups.start(engine, settings.listen_notify)
        leading = asyncio.create_task(background.lead(app))
        yield
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading  # it steps down, so another process leads at once
        app.state.wakeups.stop()
        if app.state.async_reader is not None:
            await app.state.async_reader.dispose()
        engine.dispose()

    app = FastAPI(
        title="gate",
        version="0.1.0",
        summary="Decides whether a model port stays within tolerance of its reference scores.",
        lifespan=lifespan,
        dependencies=[Depends(edge.refuse_control_characters)],
    )
    app.state.settings = settings
    app.state.token_cache = TokenCache(settings.token_cache_s)

    handlers.install(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:  # on the event loop: a busy thread pool must not fail health checks
        return {"status": "ok"}

    spine = (
        run_endpoints.router,
        baseline_endpoints.router,
        workers.router,
        webhook_endpoints.router,
        qualification_endpoints.router,
    )
    kinds = tuple(checks.part(kind, "endpoints").router for kind in checks.KINDS)
    for router in spine + kinds:
        app.include_router(router, prefix="/api/v1", responses=handlers.RESPONSES)
    app.include_router(dashboard_routes.router)
    app.include_router(qualification_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    dashboard_formatting.install(app.state.templates.env)
    app.state.templates.env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + 1024 * 1024)
    app.add_middleware(i18n_web.LocaleMiddleware)  # outermost: even the body limit's 413 page is in the language
    return app
