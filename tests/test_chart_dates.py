"""The history chart's x-axis: a dated tick under the first run of each day, few enough to read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gate.dashboard import chart

START = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


def test_a_tick_under_the_first_run_of_each_day() -> None:
    times = [START, START + timedelta(hours=2), START + timedelta(days=1), START + timedelta(days=3)]
    geometry = chart.geometry([0.70, 0.71, 0.69, 0.70], 0.703, 2.0, times=times)
    xs = [x for x, _ in geometry.points]
    assert [(t.x, t.label) for t in geometry.date_ticks] == [
        (xs[0], "2026-11-20"),
        (xs[2], "2026-11-21"),
        (xs[3], "2026-11-23"),
    ]
    assert geometry.axis_label == "date of run (UTC)"


def test_runs_of_one_day_are_labelled_by_time_and_the_axis_names_the_day() -> None:
    times = [START, START + timedelta(minutes=1), START + timedelta(hours=3)]
    geometry = chart.geometry([0.5, 0.6, 0.7], None, None, times=times)
    assert [t.label for t in geometry.date_ticks] == ["09:30", "09:31", "12:30"]
    assert geometry.axis_label == "time of run on 2026-11-20 (UTC)"


def test_dates_are_utc() -> None:
    late_in_new_york = datetime(2026, 11, 20, 22, 0, tzinfo=timezone(timedelta(hours=-5)))  # 03:00 UTC next day
    ticks, _ = chart.dates([36.0, 684.0], [START, late_in_new_york])
    assert [t.label for t in ticks] == ["2026-11-20", "2026-11-21"]


def test_many_days_are_thinned_keeping_the_first_and_last() -> None:
    times = [START + timedelta(days=d) for d in range(60)]
    geometry = chart.geometry([0.7] * 60, 0.7, 2.0, times=times)
    ticks = geometry.date_ticks
    assert 2 <= len(ticks) <= chart.MAX_DATE_TICKS
    assert ticks[0].label == "2026-11-20" and ticks[-1].label == "2027-01-18"
    assert [t.x for t in ticks] == sorted(t.x for t in ticks)
    assert all(chart.PAD <= t.x <= chart.WIDTH - chart.PAD for t in ticks)


def test_no_times_no_date_axis() -> None:
    geometry = chart.geometry([0.5], 0.5, 2.0)
    assert geometry.date_ticks == [] and geometry.axis_label == ""
    assert chart.dates([36.0, 40.0], [None, None]) == ([], "")
