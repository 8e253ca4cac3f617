"""The caller's identity: a bearer token (or the dashboard's read cookie) and the scopes it grants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gate.auth import tokens
from gate.deps import READ_METHODS, SettingsDep
from gate.errors import Forbidden, Unauthorized
from gate.settings import Settings


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


ANONYMOUS = Principal(name="anonymous", scopes=frozenset({"read"}))
# The dashboard's sign-in cookie. It only ever grants reads: a cookie rides along with cross-site requests.
READ_COOKIE = "gate_token"


def _principal(request: Request, settings: Settings) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    cookie = request.cookies.get(READ_COOKIE)
    if not header and cookie and request.method in READ_METHODS:
        with request.app.state.sessions() as session:
            found = tokens.lookup(session, cookie)
            if found is not None:
                return Principal(name=found.name, scopes=frozenset(tokens.granted(found.scopes)) & {"read"})
    if not header:
        return ANONYMOUS if settings.anonymous_read and request.method in READ_METHODS else None
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    with request.app.state.sessions() as session:
        found = tokens.lookup(session, token.strip())
        if found is None:
            raise Unauthorized("unknown or revoked token")
        return Principal(name=found.name, scopes=frozenset(tokens.granted(found.scopes)))


def require(scope: str):
    def dependency(request: Request, settings: SettingsDep) -> Principal:
        principal = _principal(request, settings)
        if principal is None:
            raise Unauthorized()
        if scope not in principal.scopes:
            raise Forbidden(f"this request needs the {scope!r} scope")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Submitter = Annotated[Principal, Depends(require("submit"))]
WorkerAuth = Annotated[Principal, Depends(require("worker"))]
Admin = Annotated[Principal, Depends(require("admin"))]
