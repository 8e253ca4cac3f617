"""create_app(settings): the FastAPI application and its lifespan (engine, migrations, baselines, reaper)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gate.api import baselines, edge, runs, sender, webhooks, workers
from gate.core.baselines import read_dir
from gate.errors import GateError
from gate.settings import Settings, get_settings
from gate.store import baselines as stored_baselines
from gate.store import migrate
from gate.store import runs as run_store
from gate.store import webhooks as webhook_store
from gate.store.db import is_sqlite, make_engine, make_session_factory, transaction
from gate.web import routes as web_routes
from gate.web.static import STATIC_DIR

log = logging.getLogger("gate")


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over the limit with 413, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse({"detail": f"request body is larger than the {self.limit} byte limit"}, 413)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        seen, started = 0, False

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


def _reap(app: FastAPI) -> tuple[int, int]:
    settings: Settings = app.state.settings
    with transaction(app.state.sessions, write=True) as session:
        webhook_store.prune_deliveries(session, settings.inbound_delivery_keep_days)
        return run_store.reap(session, settings.queued_ttl_s)


async def _reaper(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    while True:
        try:
            # In a thread: waiting for SQLite's write lock on the event loop would stall every request.
            lost, expired = await asyncio.to_thread(_reap, app)
            if lost or expired:
                log.info("reaper: %d runs with lost leases, %d expired unclaimed", lost, expired)
        except Exception:  # the sweep must outlive a database blip; it logs and tries again
            log.exception("reaper sweep failed")
        await asyncio.sleep(settings.reaper_interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_s)
        migrate.upgrade(engine)
        app.state.engine = engine
        app.state.sessions = make_session_factory(engine)
        # Writers take turns on the event loop (see deps.write_turn): one at a time on SQLite; on Postgres fewer
        # than the worker threads, so a transaction that waits on another's row lock never holds the last thread
        # the other needs to finish
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        app.state.write_turn = asyncio.Semaphore(1 if is_sqlite(engine) else max(threads // 2, 1))
        with transaction(app.state.sessions, write=True) as session:
            stored_baselines.load(session, read_dir(settings.baselines_dir))
        background = [asyncio.create_task(_reaper(app)), asyncio.create_task(sender.delivery_loop(app))]
        yield
        for task in background:
            task.cancel()
        engine.dispose()

    app = FastAPI(
        title="gate",
        version="0.1.0",
        summary="Decides whether a model port stays within tolerance of its reference scores.",
        lifespan=lifespan,
        dependencies=[Depends(edge.refuse_control_characters)],
    )
    app.state.settings = settings

    @app.exception_handler(GateError)
    async def _gate_error(_: Request, error: GateError) -> JSONResponse:
        body = {"detail": error.message}
        if error.field:
            body["field"] = error.field
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:  # on the event loop: a busy thread pool must not fail health checks
        return {"status": "ok"}

    for router in (runs.router, baselines.router, workers.router, webhooks.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(web_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    app.state.templates.env.filters["pp"] = lambda value: "—" if value is None else f"{value:+.2f} pp"
    app.state.templates.env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    app.state.templates.env.filters["pct"] = lambda value: "—" if value is None else f"{value * 100:.2f}"
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + 1024 * 1024)
    return app
