"""The history chart's geometry: the band is where a score passes the gate, ticks are round and inside the plot."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gate.checks.accuracy import judge as verdict
from gate.dashboard import chart

TOP, BOTTOM = chart.PAD, chart.HEIGHT - chart.PAD


def test_a_one_sided_band_reaches_the_top_of_the_plot() -> None:
    geometry = chart.geometry([0.66, 0.70, 0.74], baseline=0.703, tolerance_pp=2.0, two_sided=False)
    band = geometry.band
    assert band is not None and band.y == TOP
    (_, y_low), (_, y_base), (_, y_high) = geometry.points
    assert band.y < y_high < y_base < band.y + band.height < y_low  # 74 % passes, 66 % fails
    assert (band.x, band.width) == (geometry.left, geometry.right - geometry.left)


def test_a_two_sided_band_stops_at_baseline_plus_tolerance() -> None:
    geometry = chart.geometry([0.66, 0.70, 0.74], baseline=0.703, tolerance_pp=2.0, two_sided=True)
    band = geometry.band
    assert band is not None and band.y > TOP
    (_, y_low), (_, y_base), (_, y_high) = geometry.points
    assert y_high < band.y < y_base < band.y + band.height < y_low  # 74 % is 3.7 pp above: a fail too
    assert geometry.baseline_y is not None and band.y < geometry.baseline_y < band.y + band.height
    # the band is centred on the baseline
    assert math.isclose(geometry.baseline_y - band.y, band.y + band.height - geometry.baseline_y)


def test_no_baseline_no_band() -> None:
    geometry = chart.geometry([0.5, 0.6], baseline=None, tolerance_pp=None)
    assert geometry.band is None and geometry.baseline_y is None
    assert [x for x, _ in geometry.points] == [geometry.left, geometry.right]


@settings(max_examples=1000)
@given(
    value=st.floats(0, 1),
    baseline=st.floats(0.05, 0.95),
    tolerance_pp=st.floats(0.5, 5),
    two_sided=st.booleans(),
)
def test_a_point_lies_in_the_band_exactly_when_the_gate_passes_it(
    value: float, baseline: float, tolerance_pp: float, two_sided: bool
) -> None:
    delta = verdict.delta_pp(value, baseline)
    edge = abs(delta) if two_sided else -delta
    assume(abs(float(edge) - tolerance_pp) > 1e-6)  # float geometry cannot settle the boundary itself
    geometry = chart.geometry([value], baseline, tolerance_pp, two_sided)
    assert geometry.band is not None
    (_, y), band = geometry.points[0], geometry.band
    inside = band.y <= y <= band.y + band.height
    assert inside == verdict.within_tolerance(delta, tolerance_pp, two_sided)
    assert TOP - 1e-9 <= y <= BOTTOM + 1e-9 and TOP - 1e-9 <= band.y <= band.y + band.height <= BOTTOM + 1e-9


@given(lo=st.floats(0, 0.99), span=st.floats(0.01, 1))
@example(lo=0.8, span=0.2)  # 20 pp in floats is 19.999...: a 2.5 step gave 9 ticks
@settings(max_examples=1000)
def test_ticks_are_round_ascending_and_few(lo: float, span: float) -> None:
    hi = min(lo + span, 1.0)
    assume(hi - lo >= 0.01)
    ticks = chart.ticks(lo, hi)
    assert 3 <= len(ticks) <= chart.MAX_TICKS
    values = [v for v, _ in ticks]
    assert values == sorted(values) and lo - 1e-9 <= values[0] and values[-1] <= hi + 1e-9
    step_pp = (values[1] - values[0]) * 100
    assert all(math.isclose((b - a) * 100, step_pp, abs_tol=1e-6) for a, b in itertools.pairwise(values))
    mantissa = step_pp / 10 ** math.floor(math.log10(step_pp) + 1e-9)
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    assert all(math.isclose(float(label), v * 100, abs_tol=1e-6) for v, label in ticks)


@pytest.mark.parametrize(
    ("lo", "hi", "labels"),
    [
        (0.6, 0.8, ["60", "65", "70", "75", "80"]),
        (0.0, 1.0, ["0", "20", "40", "60", "80", "100"]),
        (0.5, 0.52, ["50.0", "50.5", "51.0", "51.5", "52.0"]),
        (0.8, 1.0, ["80", "85", "90", "95", "100"]),
    ],
)
def test_tick_labels(lo: float, hi: float, labels: list[str]) -> None:
    assert [label for _, label in chart.ticks(lo, hi)] == labels
