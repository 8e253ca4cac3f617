"""Every error answers in one shape: JSON (`ErrorOut`) from the API, an HTML page with the same sentence from the
dashboard. Domain errors, request validation, unknown routes, wrong methods and oversized bodies alike."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException

from gate import db
from gate.errors import GateError

log = logging.getLogger("gate")
API_PREFIXES = ("/api/", "/badge/")  # machine clients: JSON
API_PATHS = frozenset({"/healthz", "/openapi.json"})
LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})  # pydantic's first `loc` item: not a field name


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="one sentence for people")
    code: str = Field(description="stable for programs: invalid_input, not_found, conflict, too_large, ...")
    field: str | None = Field(description="the request field at fault, dotted (options.model_args.revision)")
    errors: list[FieldError] = Field(description="each field at fault with its message; [] when none is")


CODES = {cls.status_code: cls.code for cls in GateError.__subclasses__()}  # 413 is too_large from any source
TITLES = {
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    422: "Invalid request",
    500: "Server error",
    503: "Unavailable",
}
RESPONSES: dict[int | str, dict[str, object]] = {"4XX": {"model": ErrorOut, "description": "the request was refused"}}


def wants_html(request: Request) -> bool:
    """Dashboard pages and unknown non-API paths answer with a page; the API, health and badges with JSON."""
    path = request.url.path
    return not (path.startswith(API_PREFIXES) or path in API_PATHS)


def answer(
    request: Request,
    status: int,
    detail: str,
    code: str,
    field: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_html(request):
        return request.app.state.templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "title": TITLES.get(status, HTTPStatus(status).phrase), "detail": detail},
            status_code=status,
            headers=headers,
        )
    body = ErrorOut(detail=detail, code=code, field=field, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    parts = loc[1:] if loc and loc[0] in LOCATIONS else loc
    return ".".join(str(p) for p in parts)


async def _invalid(request: Request, error: RequestValidationError) -> Response:
    errors = [FieldError(field=_field(tuple(e["loc"])), message=e["msg"]) for e in error.errors()]
    detail = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    return answer(request, 422, detail, "invalid_input", errors[0].field if errors else None, errors)


def answer_http(request: Request, error: HTTPException) -> Response:
    """Starlette's refusals (no route, wrong method, an unparsable body) and the body limit's."""
    status = HTTPStatus(error.status_code)
    if status == HTTPStatus.NOT_FOUND:
        detail = f"there is nothing at {request.url.path}"
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = (error.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed or 'none'})"
    else:
        detail = str(error.detail)
    code = CODES.get(status) or status.phrase.lower().replace(" ", "_").replace("-", "_")
    return answer(request, status, detail, code, headers=dict(error.headers or {}) or None)


async def _gate(request: Request, error: GateError) -> Response:
    errors = [FieldError(field=error.field, message=error.message)] if error.field else []
    return answer(request, error.status_code, error.message, error.code, error.field, errors)


RETRY_AFTER_S = 5  # how soon a client should try again while the database is away


async def _database_away(request: Request, error: DBAPIError | SQLAlchemyTimeoutError) -> Response:
    """The database is unreachable (or its pool exhausted): a 503 the client retries, one log line, no traceback.
    Any other database error is a bug and stays a 500."""
    if not db.unavailable(error):
        return await _unexpected(request, error)
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, str(error).splitlines()[0])
    return answer(
        request,
        503,
        "the database is unavailable; try again shortly",
        "unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, error: Exception) -> Response:
    # Starlette logs the traceback and re-raises after this answer; the client gets the shape, not the trace.
    return answer(request, 500, "the server failed to answer this request; the error is in its log", "internal_error")


def install(app: FastAPI) -> None:
    app.exception_handler(GateError)(_gate)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(HTTPException)(answer_http)
    app.exception_handler(DBAPIError)(_database_away)
    app.exception_handler(SQLAlchemyTimeoutError)(_database_away)
    app.exception_handler(Exception)(_unexpected)
