"""Each request's language: chosen once at the edge, before any page or error page is rendered."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import URL, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gate.i18n.context import use
from gate.i18n.languages import Language, language, negotiate

COOKIE = "gate_lang"
QUERY = "lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a reader's choice outlives a session; it is only a preference


class LocaleMiddleware:
    """Set the request's language (gate.i18n.context) from ?lang=, the gate_lang cookie or Accept-Language.

    A ?lang= switch also answers with the cookie, so the language sticks on the pages that follow. Pure ASGI (not
    BaseHTTPMiddleware) so that the context variable reaches the route, its thread and the error handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get(QUERY)
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header is another client's bug: no preference from it
            jar = SimpleCookie()
        cookie = jar[COOKIE].value if COOKIE in jar else None
        locale = negotiate(headers.get("accept-language"), cookie, query)
        switched = language(query)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and switched is not None:
                MutableHeaders(scope=message).append(
                    "set-cookie", f"{COOKIE}={switched.switch}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; SameSite=Lax"
                )
            await send(message)

        with use(locale):  # without a switch, no layer around send: every API response would cross it
            await self.app(scope, receive, send if switched is None else send_with_cookie)


def switch_url(url: URL | str, target: Language) -> str:
    """The current page's path and query with ?lang= set to target's switch (the header's language links)."""
    parsed = URL(str(url))
    params = [(k, v) for k, v in parse_qsl(parsed.query, keep_blank_values=True) if k != QUERY]
    path = "/" + parsed.path.lstrip("/")  # //host/x would be a link to another site
    return f"{path}?{urlencode([*params, (QUERY, target.switch)])}"
