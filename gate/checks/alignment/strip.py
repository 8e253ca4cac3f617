"""Geometry of the per-position divergence strip (SVG user units), so that the template only prints numbers.

One bar per position of a text: its height is the position's KL divergence (reference || candidate) on a linear
scale up to the text's largest, and its colour says whether the two sides' most likely tokens differ there.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 1100, 150  # SVG units; the template scales the strip to the page's width
LEFT, RIGHT, TOP, BOTTOM = 96, 8, 10, 24  # room for the scale's labels ("5.53e-07 nats") on the left, the axis below
GAP = 0.15  # of a bar's slot, left empty between bars while bars are wider than 4 units
MIN_VISIBLE = 1.0  # units: a nonzero KL never draws as an invisible bar


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    differs: bool  # the two sides' most likely tokens differ at this position
    title: str  # the bar's tooltip: position, decoded token and figures


@dataclass(frozen=True)
class Strip:
    bars: list[Bar]
    top_label: str  # the KL at the top of the scale
    axis_y: float
    plot_height: float  # each bar's hover area spans it, so a zero-height bar still shows its title
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    width: int = WIDTH
    height: int = HEIGHT


def geometry(kls: list[float], differs: list[bool], titles: list[str]) -> Strip:
    """Bars for positions with these KL divergences (nats), top-1 disagreements and tooltips, left to right."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    axis_y = TOP + plot_height
    peak = max(kls, default=0.0)
    slot = plot_width / max(len(kls), 1)
    gap = slot * GAP if slot > 4 else 0.0
    bars = []
    for i, (kl, diff, title) in enumerate(zip(kls, differs, titles, strict=True)):
        height = kl / peak * plot_height if peak > 0 else 0.0
        if kl > 0:
            height = max(height, MIN_VISIBLE)
        bars.append(
            Bar(
                x=LEFT + i * slot + gap / 2,
                y=axis_y - height,
                width=slot - gap,
                height=height,
                differs=diff,
                title=title,
            )
        )
    return Strip(bars=bars, top_label=f"{peak:.3g} nats", axis_y=axis_y, plot_height=plot_height)
