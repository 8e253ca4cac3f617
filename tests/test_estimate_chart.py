"""The running estimate's rule and drawing (pure): a trail is checked before it is stored or drawn, and the chart
marks the shard where the stop rule cut."""

from __future__ import annotations

from gate.checks.accuracy import judge
from gate.dashboard import estimate
from gate.verdicts import sequential, trail

GATE = sequential.Gate(0.703, 2.0, True, lambda s: judge.within_tolerance(judge.delta_pp(s, 0.703), 2.0, True))


def broken_port(total: int = 1319, shard: int = 40) -> dict:
    """A port that answers nothing right, certainty only: the driver's own band after each shard."""
    points = []
    for answered in range(shard, total, shard):
        sure = sequential.certainty(GATE, total, answered, 0)
        points.append(trail.point(answered, 0, sure.reachable))
        if sure.stop:
            break
    return {"total": total, "points": points}


def test_a_trail_is_checked_point_by_point() -> None:
    good = broken_port()
    assert trail.problem(good) is None and trail.parsed(good) == good
    assert trail.parsed({"total": 1319, "points": []}) is None  # nothing to draw
    assert trail.problem({"total": 1319, "points": [[40, True, 0.0, 1.0]]}) == "answered and right are whole numbers"
    assert trail.problem({"total": 0, "points": []}) == (
        "the running estimate's total is a whole number of questions, at least 1"
    )
    assert trail.parsed([[40, 0, 0.0, 1.0]]) is None


def test_the_chart_cuts_where_the_band_left_the_gate() -> None:
    found = broken_port()
    assert found["points"][-1][0] == 440  # 879 remaining right would still give 0.6664, below 0.683
    chart = estimate.geometry(found, 0.703, 2.0, True)
    assert chart.cut is not None and chart.cut.answered == 440
    assert (chart.answered, chart.right, chart.total) == (440, 0, 1319)
    assert chart.high == round(879 / 1319, 6) < 0.683
    # the band starts at [0, 1] before any answer, then follows each shard's band
    upper = chart.band.split()[: len(found["points"]) + 1]
    assert upper[0] == f"{chart.left:.1f},{estimate.PAD:.1f}"
    ys = [float(p.split(",")[1]) for p in upper]
    assert ys == sorted(ys)  # the upper edge only comes down (larger y is lower on the page)
    # the passing region is baseline ± 2 pp on a 0..1 scale of 188 units
    assert round(chart.passing.height, 1) == round(0.04 * (estimate.HEIGHT - 2 * estimate.PAD), 1)


def test_a_run_answered_to_the_end_is_not_cut() -> None:
    points = [*(trail.point(n, round(n * 0.7), (0.0, 1.0)) for n in range(40, 1319, 40)), [1319, 900, 0.6823, 0.6823]]
    chart = estimate.geometry({"total": 1319, "points": points}, 0.703, 2.0, True)
    assert chart.cut is None  # its last band, one score below the gate, is its verdict, not a cut
    assert [x for x, _ in chart.x_ticks][-1] == chart.right_edge
