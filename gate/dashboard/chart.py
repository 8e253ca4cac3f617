"""Geometry of the score-history chart (SVG user units), so that the template only prints numbers.

The band is where a score passes the gate: baseline ± tolerance when two-sided, from baseline - tolerance up to
the top of the plot when only drops fail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

WIDTH, HEIGHT, PAD = 720, 260, 36  # SVG units; PAD leaves room for the tick labels
MIN_SPAN = 0.01  # a flat series still spans 1 pp
MARGIN = 0.1  # of the span, above and below the data
TICK_STEPS_PP = (1.0, 2.0, 2.5, 5.0)  # times a power of ten
MAX_TICKS = 8
MAX_DATE_TICKS = 8  # a "2026-11-25" label is about 70 units wide at the chart's font size


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str  # the score in %


@dataclass(frozen=True)
class DateTick:
    x: float
    label: str  # a UTC date, or a UTC time of day when every run is of one day (axis_label names it)


@dataclass(frozen=True)
class Chart:
    points: list[tuple[float, float]]  # (x, y) per value, in the order given
    baseline_y: float | None
    band: Rect | None
    ticks: list[Tick]
    date_ticks: list[DateTick] = field(default_factory=list)
    axis_label: str = ""
    left: float = PAD
    right: float = WIDTH - PAD
    width: int = WIDTH
    height: int = HEIGHT


def geometry(
    values: list[float],
    baseline: float | None,
    tolerance_pp: float | None,
    two_sided: bool = True,
    times: Sequence[datetime | None] = (),
) -> Chart:
    """Scores are fractions (0.703); tolerances in percentage points. Points are spread evenly from left to right
    (one step per run, so that a burst of runs stays readable); times, one per value, label the x-axis."""
    lower = upper = None
    if baseline is not None and tolerance_pp is not None:
        lower = baseline - tolerance_pp / 100
        upper = baseline + tolerance_pp / 100 if two_sided else None
    shown = [*values, *(v for v in (baseline, lower, upper) if v is not None)]
    floor, ceiling = min(shown, default=0.0), max(shown, default=1.0)
    lo, hi = floor, ceiling
    if hi - lo < MIN_SPAN:
        lo, hi = (lo + hi - MIN_SPAN) / 2, (lo + hi + MIN_SPAN) / 2
    margin = (hi - lo) * MARGIN
    lo, hi = lo - margin, hi + margin
    if floor >= 0:  # accuracies: no axis below 0 % or above 100 % for the margin's sake
        lo = max(lo, 0.0)
    if ceiling <= 1:
        hi = min(hi, 1.0)
    top, bottom = PAD, HEIGHT - PAD

    def y(value: float) -> float:
        return top + (hi - value) / (hi - lo) * (bottom - top)

    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    band = None
    if lower is not None:
        band_top = y(upper) if upper is not None else top
        band = Rect(x=PAD, y=band_top, width=WIDTH - 2 * PAD, height=max(y(lower) - band_top, 0.0))
    points = [(PAD + i * step, y(v)) for i, v in enumerate(values)]
    x_ticks, axis_label = dates([x for x, _ in points], times)
    return Chart(
        points=points,
        baseline_y=y(baseline) if baseline is not None else None,
        band=band,
        ticks=[Tick(y=y(v), label=label) for v, label in ticks(lo, hi)],
        date_ticks=x_ticks,
        axis_label=axis_label,
    )


def dates(xs: list[float], times: Sequence[datetime | None]) -> tuple[list[DateTick], str]:
    """A tick at the first run of each UTC day, at most MAX_DATE_TICKS of them (the first and last kept), and the
    axis label. Runs all of one day are labelled with their time of day and the axis names the day."""
    known = [(x, t.astimezone(timezone.utc)) for x, t in zip(xs, times, strict=False) if t is not None]
    if not known:
        return [], ""
    one_day = known[0][1].date() == known[-1][1].date()
    fmt = "%H:%M" if one_day else "%Y-%m-%d"
    found: list[DateTick] = []
    for x, t in known:
        label = t.strftime(fmt)
        if not found or found[-1].label != label:
            found.append(DateTick(x=x, label=label))
    if len(found) > MAX_DATE_TICKS:
        stride = math.ceil((len(found) - 1) / (MAX_DATE_TICKS - 1))
        found = [*found[:-1:stride][: MAX_DATE_TICKS - 1], found[-1]]
    axis = f"time of run on {known[0][1]:%Y-%m-%d} (UTC)" if one_day else "date of run (UTC)"
    return found, axis


def ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Round values between lo and hi (fractions), labelled in %: 3 to MAX_TICKS of them, a 1, 2, 2.5 or 5 step."""
    span_pp = (hi - lo) * 100
    power = 10 ** math.floor(math.log10(span_pp / MAX_TICKS))  # one power too fine: span/power >= MAX_TICKS
    for step_pp in (m * p for p in (power, 10 * power) for m in TICK_STEPS_PP):
        first = math.ceil(lo * 100 / step_pp - 1e-9)
        last = math.floor(hi * 100 / step_pp + 1e-9)
        if last - first < MAX_TICKS:  # the coarsest candidate, 50 powers, always fits
            break
    decimals = len(f"{step_pp:g}".partition(".")[2])
    return [(k * step_pp / 100, f"{k * step_pp:.{decimals}f}") for k in range(first, last + 1)]
