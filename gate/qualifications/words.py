"""The qualification's verdict words and causes in the reader's language (pure): the page and the Markdown
say them alike. Each message is a literal `_()` so Babel extracts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gate.qualifications import verdict

Translate = Callable[[str], str]


def status(value: str, _: Translate) -> str:
    words = {
        "waiting": _("waiting"),
        "running": _("running"),
        "finished": _("finished"),
        "queued": _("queued"),
        "succeeded": _("succeeded"),
        "failed": _("failed"),
        "cancelled": _("cancelled"),
    }
    return words.get(value, value)


def waiting(check: dict[str, Any], _: Translate) -> str:
    """Why a queued check has no taker: the backend and labels no connected worker has."""
    if check["labels"]:
        return _("no connected worker has backend %(backend)s and labels %(labels)s") % {
            "backend": check["backend"],
            "labels": ", ".join(check["labels"]),
        }
    return _("no connected worker has backend %(backend)s") % {"backend": check["backend"]}


def cause(found: dict[str, Any], checks: list[dict[str, Any]], _: Translate) -> str:
    """One cause of report.gather's `causes` as a sentence."""
    named = {"check": found["check"], "run": found["run_id"]}
    code = found["code"]
    if code == verdict.WAITS:
        check = next(c for c in checks if c["name"] == found["check"])
        return _("%(check)s (run #%(run)s) is waiting: %(why)s") % {**named, "why": waiting(check, _)}
    if code == verdict.NOT_JUDGED:
        return _("%(check)s (run #%(run)s) %(status)s: it was not judged") % {
            **named,
            "status": status(found["detail"], _),
        }
    if code == verdict.FAILED_GATE:
        return _("%(check)s (run #%(run)s) failed its gate") % named
    if code == verdict.UNCOMPARED:
        return _("%(check)s (run #%(run)s) is not comparable") % named
    return _("no check was gated: nothing was judged")
