"""How the dashboard prints values: Jinja filters, so that no page shows Python's spelling (None, False, 8.0)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from gate.thinking import split_thinking  # the one rule, shared with the worker

ABSENT = "—"


def value(v: Any) -> str:
    """Any value as a person reads it: yes/no, — for nothing, 8 rather than 8.0, JSON for lists and mappings."""
    if v is None or v == "":
        return ABSENT
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return number(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


def number(v: float | int | None, decimals: int | None = None) -> str:
    """Whole floats without their .0; a fixed number of decimals when asked."""
    if v is None:
        return ABSENT
    if decimals is not None:
        return f"{v:.{decimals}f}"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def signed(v: float | None, decimals: int = 2) -> str:
    """A signed number with a true minus sign (U+2212), as deltas are printed."""
    if v is None:
        return ABSENT
    return f"{v:+.{decimals}f}".replace("-", "\u2212")


def pp(v: float | None) -> str:
    return ABSENT if v is None else f"{signed(v)} pp"


def pct(v: float | None) -> str:
    """A fraction (0.7035) in % without the sign: 70.35."""
    return ABSENT if v is None else f"{v * 100:.2f}"


def yesno(v: bool | None) -> str:
    return ABSENT if v is None else ("yes" if v else "no")


def when(at: datetime | None) -> str:
    """2026-11-25 12:03 UTC."""
    if at is None:
        return ABSENT
    return _utc(at).strftime("%Y-%m-%d %H:%M UTC")


def when_s(at: datetime | None) -> str:
    """2026-11-25 12:03:07 UTC, for events seconds apart."""
    if at is None:
        return ABSENT
    return _utc(at).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """4 min 12 s; 2 h 5 min; 0.4 s."""
    if seconds is None:
        return ABSENT
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def ago(seconds: float | None) -> str:
    """5 s ago; 3 min ago; 2 h ago; 4 days ago (rounded down: a heartbeat 59 s old is not 1 min old)."""
    if seconds is None:
        return ABSENT
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    days = s // 86400
    return f"{days} day{'s' if days > 1 else ''} ago"


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
    # `{{ _("...") }}` in templates; gate.dashboard.i18n installs the catalogs' translations per request
    env.add_extension("jinja2.ext.i18n")
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
