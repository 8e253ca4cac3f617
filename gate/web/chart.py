"""Geometry of the score-history chart (SVG user units), so that the template only prints numbers.

The band is where a score passes the gate: baseline ± tolerance when two-sided, from baseline - tolerance up to
the top of the plot when only drops fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 720, 260, 36  # SVG units; PAD leaves room for the tick labels
MIN_SPAN = 0.01  # a flat series still spans 1 pp
MARGIN = 0.1  # of the span, above and below the data
TICK_STEPS_PP = (1.0, 2.0, 2.5, 5.0)  # times a power of ten
MAX_TICKS = 8


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
class Chart:
    points: list[tuple[float, float]]  # (x, y) per value, in the order given
    baseline_y: float | None
    band: Rect | None
    ticks: list[Tick]
    left: float = PAD
    right: float = WIDTH - PAD
    width: int = WIDTH
    height: int = HEIGHT


def geometry(values: list[float], baseline: float | None, tolerance_pp: float | None, two_sided: bool = True) -> Chart:
    """Scores are fractions (0.703); tolerances in percentage points. Points are spread evenly from left to right."""
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
    return Chart(
        points=[(PAD + i * step, y(v)) for i, v in enumerate(values)],
        baseline_y=y(baseline) if baseline is not None else None,
        band=band,
        ticks=[Tick(y=y(v), label=label) for v, label in ticks(lo, hi)],
    )


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
