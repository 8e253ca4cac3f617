"""Geometry of the sweep's throughput-latency curve (SVG user units), so that the template only prints numbers.

x is the aggregate output throughput (tok/s), y the mean end-to-end latency (s) of a request; one point per
concurrency level, joined in the order of concurrency, for this run and (dashed) its reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gate.dashboard.chart import HEIGHT, PAD, WIDTH

LEFT = PAD + 24  # room for the latency labels
BOTTOM = HEIGHT - PAD
MAX_TICKS = 6


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    concurrency: int
    throughput: float  # tok/s
    latency: float  # s


@dataclass(frozen=True)
class Curve:
    points: list[Point]
    reference: list[Point]
    x_ticks: list[tuple[float, str]]  # (x, label)
    y_ticks: list[tuple[float, str]]  # (y, label)
    left: float = LEFT
    right: float = WIDTH - PAD
    top: float = PAD
    bottom: float = BOTTOM
    width: int = WIDTH
    height: int = HEIGHT


def steps(high: float) -> list[float]:
    """Round values from 0 to at least high: a 1, 2 or 5 step times a power of ten, at most MAX_TICKS + 1 of them."""
    high = high if high > 0 else 1.0
    power = 10 ** math.floor(math.log10(high / MAX_TICKS))
    step = next(m * power for m in (1, 2, 5, 10, 20, 50) if high / (m * power) <= MAX_TICKS)
    return [
        round(k * step, 12) for k in range(math.ceil(high / step - 1e-9) + 1)
    ]  # 3 x 0.2 is 0.6, not 0.6000000000000001


def _label(value: float) -> str:
    return f"{value:g}" if value < 1e4 else f"{value / 1000:g}k"


def geometry(levels: list[tuple[int, float, float]], reference: list[tuple[int, float, float]]) -> Curve:
    """levels and reference: (concurrency, output throughput tok/s, mean latency s) per level."""
    both = [*levels, *reference]
    xs = steps(max((t for _, t, _ in both), default=1.0) * 1.05)
    ys = steps(max((s for _, _, s in both), default=1.0) * 1.05)

    def point(level: tuple[int, float, float]) -> Point:
        concurrency, throughput, latency = level
        x = LEFT + throughput / xs[-1] * (WIDTH - PAD - LEFT)
        y = BOTTOM - latency / ys[-1] * (BOTTOM - PAD)
        return Point(x, y, concurrency, throughput, latency)

    return Curve(
        points=[point(level) for level in levels],
        reference=[point(level) for level in reference],
        x_ticks=[(LEFT + v / xs[-1] * (WIDTH - PAD - LEFT), _label(v)) for v in xs],
        y_ticks=[(BOTTOM - v / ys[-1] * (BOTTOM - PAD), _label(v)) for v in ys],
    )
