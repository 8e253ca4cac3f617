"""The caller's identity: a bearer token (or the dashboard's read cookie) and the scopes it grants."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gate.auth import tokens
from gate.deps import READ_METHODS, SettingsDep, read
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


class TokenCache:
    """The tokens this process found live in the last `ttl_s` seconds, by digest. Most requests then skip the
    lookup, a database round trip that costs as much as the read it guards (bench/mlflow_peer.py); the price is
    that a revoked token keeps working in a process that saw it for up to `ttl_s`."""

    MAX_ENTRIES = 4096  # more live tokens than this in ttl_s: start over rather than grow

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[tuple[str, bool], tuple[Principal, float]] = {}

    def get(self, key: tuple[str, bool]) -> Principal | None:
        found = self._seen.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, key: tuple[str, bool], principal: Principal) -> None:
        if self.ttl_s > 0:
            if len(self._seen) >= self.MAX_ENTRIES:
                self._seen.clear()
            self._seen[key] = (principal, time.monotonic() + self.ttl_s)


async def _lookup_now(request: Request, token: str, cookie: bool) -> Principal | None:
    found = await read(request.app, lambda connection: tokens.lookup(connection, token))
    if found is None:
        return None
    scopes = frozenset(tokens.granted(found.scopes))
    return Principal(name=found.name, scopes=scopes & {"read"} if cookie else scopes)


async def _lookup(request: Request, token: str, cookie: bool) -> Principal | None:
    cache: TokenCache = request.app.state.token_cache
    key = (tokens.digest(token), cookie)
    principal = cache.get(key)
    if principal is None:
        principal = await _lookup_now(request, token, cookie)
        if principal is not None:
            cache.put(key, principal)
    return principal


async def _principal(request: Request, settings: Settings) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    cookie = request.cookies.get(READ_COOKIE)
    if not header and cookie and request.method in READ_METHODS:
        found = await _lookup(request, cookie, cookie=True)
        if found is not None:
            return found
    if not header:
        return ANONYMOUS if settings.anonymous_read and request.method in READ_METHODS else None
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    principal = await _lookup(request, token.strip(), cookie=False)
    if principal is None:
        raise Unauthorized("unknown or revoked token")
    return principal


def require(scope: str):
    async def dependency(request: Request, settings: SettingsDep) -> Principal:
        principal = await _principal(request, settings)
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
