"""The dashboard's printing of values: no Python spelling (None, False, 8.0) reaches a page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from jinja2 import Environment

from gate.dashboard import formatting

NOON = datetime(2026, 11, 25, 12, 3, 7, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("", "—"),
        (True, "yes"),
        (False, "no"),
        (8.0, "8"),
        (0.25, "0.25"),
        (5, "5"),
        ([1, "a"], '[1, "a"]'),
        ({"b": 1, "a": None}, '{"a": null, "b": 1}'),
        ("cpu", "cpu"),
    ],
)
def test_value(value: object, shown: str) -> None:
    assert formatting.value(value) == shown


def test_numbers_and_deltas() -> None:
    assert formatting.number(2.0) == "2"
    assert formatting.number(2.5) == "2.5"
    assert formatting.number(16.2345, 2) == "16.23"
    assert formatting.number(None) == "—"
    assert formatting.signed(-70.3) == "\u221270.30"
    assert formatting.signed(1.5) == "+1.50"
    assert formatting.pp(-2.0) == "\u22122.00 pp"
    assert formatting.pp(None) == "—"
    assert formatting.pct(0.7035) == "70.35"
    assert formatting.yesno(None) == "—" and formatting.yesno(False) == "no"


def test_dates_are_utc_whatever_the_zone_given() -> None:
    assert formatting.when(NOON) == "2026-11-25 12:03 UTC"
    assert formatting.when_s(NOON) == "2026-11-25 12:03:07 UTC"
    tokyo = NOON.astimezone(timezone(timedelta(hours=9)))
    assert formatting.when(tokyo) == "2026-11-25 12:03 UTC"
    assert formatting.when(NOON.replace(tzinfo=None)) == "2026-11-25 12:03 UTC"  # naive means UTC in gate
    assert formatting.when(None) == "—"
    assert str(formatting.timestamp(NOON)) == '<time datetime="2026-11-25T12:03:07+00:00">2026-11-25 12:03 UTC</time>'


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.42, "0.4 s"), (3.0, "3 s"), (59.6, "1 min"), (252, "4 min 12 s"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert formatting.duration(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (5.9, "5 s ago"),
        (-1, "0 s ago"),
        (59.9, "59 s ago"),
        (125, "2 min ago"),
        (7200, "2 h ago"),
        (86400, "1 day ago"),
    ],
)
def test_ago(seconds: float, shown: str) -> None:
    assert formatting.ago(seconds) == shown


def test_since_counts_from_now() -> None:
    assert formatting.since(NOON - timedelta(seconds=5), now=NOON) == "5 s ago"
    assert formatting.since(None) == "—"


@pytest.mark.parametrize(
    ("raw", "thinking", "answer"),
    [
        ("<think>\n6 * 3 = 18\n</think>\n\nThe answer is 18.", "6 * 3 = 18", "The answer is 18."),
        ("The answer is 18.", None, "The answer is 18."),
        ("<think>cut off at the token cap", "cut off at the token cap", ""),
        (None, None, ""),
    ],
)
def test_split_thinking(raw: str | None, thinking: str | None, answer: str) -> None:
    assert formatting.split_thinking(raw) == (thinking, answer)


def test_templates_escape_what_the_filters_print() -> None:
    env = Environment(autoescape=True)
    formatting.install(env)
    page = env.from_string("{{ v | value }} {{ at | timestamp }} {{ none_ | yesno }}").render(
        v="<b>", at=NOON, none_=None
    )
    assert page == '&lt;b&gt; <time datetime="2026-11-25T12:03:07+00:00">2026-11-25 12:03 UTC</time> —'


def test_small_and_large_floats_keep_their_value() -> None:
    """Babel's significant-digit patterns misround small values; numbers print as "%g" did."""
    assert [formatting.number(v) for v in (1e-6, 2.5e-8, 0.7028, 1234567.891)] == [
        "1e-06",
        "2.5e-08",
        "0.7028",
        "1.23457e+06",
    ]
