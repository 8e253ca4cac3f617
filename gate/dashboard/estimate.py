"""Geometry of a sharded run's running-estimate chart (SVG user units): the score so far, the band the final score
still lies in (narrowing as questions are answered), the gate's passing region, and where the stop rule cut.

A stop rule cuts at the first shard whose band lies wholly outside the passing region (gate.verdicts.trail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gate.dashboard.chart import HEIGHT, PAD, WIDTH, Rect, Tick

SCORE_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # the band starts at [0, 1]: the whole scale is shown


@dataclass(frozen=True)
class Cut:
    x: float
    answered: int


@dataclass(frozen=True)
class EstimateChart:
    band: str  # SVG polygon points: the band's upper edge left to right, then its lower edge back
    line: str  # SVG polyline points: right / answered after each shard
    passing: Rect  # where a final score passes the gate
    ticks: list[Tick]
    x_ticks: list[tuple[float, int]]  # (x, questions answered)
    cut: Cut | None
    answered: int
    right: int
    total: int
    low: float
    high: float
    left: float = PAD
    right_edge: float = WIDTH - PAD
    bottom: float = HEIGHT - PAD
    width: int = WIDTH
    height: int = HEIGHT


def geometry(trail: dict[str, Any], baseline: float, tolerance_pp: float, two_sided: bool) -> EstimateChart:
    """trail: a well-formed running estimate (gate.verdicts.trail) with at least one point."""
    total, points = trail["total"], trail["points"]
    top, bottom = PAD, HEIGHT - PAD

    def x(answered: int) -> float:
        return PAD + answered / total * (WIDTH - 2 * PAD)

    def y(score: float) -> float:
        return top + (1.0 - score) * (bottom - top)

    floor = baseline - tolerance_pp / 100
    ceiling = baseline + tolerance_pp / 100 if two_sided else 1.0
    edges = [(0, 0.0, 1.0), *((p[0], p[2], p[3]) for p in points)]  # before any answer: anything is possible
    upper = [f"{x(n):.1f},{y(high):.1f}" for n, _, high in edges]
    lower = [f"{x(n):.1f},{y(low):.1f}" for n, low, _ in reversed(edges)]
    outside = next((p for p in points if p[3] < floor or p[2] > ceiling), None)
    last = points[-1]
    return EstimateChart(
        band=" ".join(upper + lower),
        line=" ".join(f"{x(p[0]):.1f},{y(p[1] / p[0]):.1f}" for p in points),
        passing=Rect(x=PAD, y=y(ceiling), width=WIDTH - 2 * PAD, height=max(y(floor) - y(ceiling), 1.0)),
        ticks=[Tick(y=y(v), label=f"{v * 100:.0f}") for v in SCORE_TICKS],
        x_ticks=[(x(n), n) for n in _question_ticks(total)],
        # the last shard of a finished run has a band of one score: its verdict, not a cut
        cut=Cut(x=x(outside[0]), answered=outside[0]) if outside is not None and outside[0] < total else None,
        answered=last[0],
        right=last[1],
        total=total,
        low=last[2],
        high=last[3],
    )


def _question_ticks(total: int) -> list[int]:
    steps = (1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000)
    step = next((s for s in steps if total / s <= 8), -(-total // 8))
    return [*range(0, total, step), total] if total % step else list(range(0, total + 1, step))
