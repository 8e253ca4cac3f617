"""How the dashboard prints values: Jinja filters, so that no page shows Python's spelling (None, False, 8.0).

Numbers and dates are formatted by Babel in the language being rendered (gate.i18n: the request's, or a report's
`i18n.use` block); English keeps gate's own spelling (2026-11-25 12:03 UTC, 70.35, +1.50 pp)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal, get_decimal_symbol
from jinja2 import Environment
from markupsafe import Markup

from gate import i18n
from gate.i18n import web as i18n_web
from gate.thinking import split_thinking  # the one rule, shared with the worker

ABSENT = "—"


def value(v: Any) -> str:
    """Any value as a person reads it: yes/no, — for nothing, 8 rather than 8.0, JSON for lists and mappings."""
    if v is None or v == "":
        return ABSENT
    if isinstance(v, bool):
        return yesno(v)
    if isinstance(v, float):
        return number(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


def _decimal(v: float | int, pattern: str) -> str:
    # Decimal(v) is the float's exact value: rounding it is rounding what "%.2f" rounded, digit for digit
    return format_decimal(Decimal(v), format=pattern, locale=i18n.current().locale)


def _fixed(decimals: int) -> str:
    return "0." + "0" * decimals if decimals > 0 else "0"


def number(v: float | int | None, decimals: int | None = None) -> str:
    """Whole floats without their .0; a fixed number of decimals when asked. No digit grouping (1319, not 1,319),
    as before the catalogs; the decimal sign is the language's."""
    if v is None:
        return ABSENT
    if decimals is not None:
        return _decimal(v, _fixed(decimals))
    if isinstance(v, float) and v.is_integer():
        return _decimal(int(v), "0")
    if isinstance(v, float):
        # "%g" then the language's decimal sign: Babel's significant-digit patterns misround small values
        # (format_decimal(1e-06, "@#####") gave 0.0000001)
        return f"{v:g}".replace(".", get_decimal_symbol(i18n.current().locale))
    return _decimal(v, "0")


def signed(v: float | None, decimals: int = 2) -> str:
    """A signed number with a true minus sign (U+2212), as deltas are printed."""
    if v is None:
        return ABSENT
    return ("\u2212" if math.copysign(1.0, v) < 0 else "+") + _decimal(abs(v), _fixed(decimals))


def pp(v: float | None) -> str:
    return ABSENT if v is None else f"{signed(v)} pp"


def pct(v: float | None) -> str:
    """A fraction (0.7035) in % without the sign: 70.35."""
    return ABSENT if v is None else _decimal(v * 100, "0.00")


def yesno(v: bool | None) -> str:
    return ABSENT if v is None else (i18n.gettext("yes") if v else i18n.gettext("no"))


def when(at: datetime | None) -> str:
    """2026-11-25 12:03 UTC; 2026年11月25日 12:03 UTC in Chinese."""
    return ABSENT if at is None else _moment(at, i18n.current().datetime)


def when_s(at: datetime | None) -> str:
    """2026-11-25 12:03:07 UTC, for events seconds apart."""
    return ABSENT if at is None else _moment(at, i18n.current().datetime_s)


def _moment(at: datetime, pattern: str) -> str:
    return format_datetime(_utc(at), pattern, tzinfo=timezone.utc, locale=i18n.current().locale) + " UTC"


def duration(seconds: float | None) -> str:
    """4 min 12 s; 2 h 5 min; 0.4 s (4 分 12 秒; 2 小时 5 分; 0.4 秒)."""
    if seconds is None:
        return ABSENT
    if seconds < 10:
        return i18n.gettext("%(s)s s", s=number(round(seconds, 1)))
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours and minutes:
        return i18n.gettext("%(h)s h %(min)s min", h=hours, min=minutes)
    if hours:
        return i18n.gettext("%(h)s h", h=hours)
    if minutes and secs:
        return i18n.gettext("%(min)s min %(s)s s", min=minutes, s=secs)
    if minutes:
        return i18n.gettext("%(min)s min", min=minutes)
    return i18n.gettext("%(s)s s", s=secs)


def ago(seconds: float | None) -> str:
    """5 s ago; 3 min ago; 2 h ago; 4 days ago (rounded down: a heartbeat 59 s old is not 1 min old)."""
    if seconds is None:
        return ABSENT
    s = max(int(seconds), 0)
    if s < 60:
        return i18n.gettext("%(s)s s ago", s=s)
    if s < 3600:
        return i18n.gettext("%(min)s min ago", min=s // 60)
    if s < 86400:
        return i18n.gettext("%(h)s h ago", h=s // 3600)
    return i18n.ngettext("%(num)s day ago", "%(num)s days ago", s // 86400)


def since(at: datetime | None, now: datetime | None = None) -> str:
    """How long ago a moment was, as ago() prints it."""
    if at is None:
        return ABSENT
    return ago(((now or datetime.now(timezone.utc)) - _utc(at)).total_seconds())


def timestamp(at: datetime | None) -> Markup:
    """A <time> element: the UTC moment printed, its ISO form for machines."""
    if at is None:
        return Markup(ABSENT)
    return Markup('<time datetime="{}">{}</time>').format(_utc(at).isoformat(), when(at))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


FILTERS = {
    "value": value,
    "number": number,
    "signed": signed,
    "pp": pp,
    "pct": pct,
    "yesno": yesno,
    "when": when,
    "when_s": when_s,
    "duration": duration,
    "ago": ago,
    "since": since,
    "timestamp": timestamp,
}


def install(env: Environment) -> None:
    """Register the filters on the dashboard's Jinja environment (gate.app.create_app calls this)."""
    env.filters.update(FILTERS)
    env.globals["split_thinking"] = split_thinking
    # `{{ _("...") }}` and {% trans %} in the request's language (gate.i18n.web.LocaleMiddleware chooses it)
    i18n.install(env)
    env.globals["language"] = i18n.current  # <html lang="{{ language().html_lang }}">
    env.globals["languages"] = i18n.LANGUAGES
    env.globals["switch_url"] = i18n_web.switch_url
