"""The serving section of a run page, from reports with real `vllm bench serve` figures (tests/serving_reports.py):
the card's table, the server's figures, the sweep's curve and the verdict, through the app's route and templates."""

from __future__ import annotations

import html
import re
import statistics
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page

from gate import migrate
from gate.app import create_app
from gate.checks.serving import curve, judge, models, pages, spec
from gate.db import make_engine, make_session_factory, transaction
from gate.runs.models import Run
from gate.settings import Settings
from tests.serving_reports import PROMPTS, report_for
from tests.test_dashboard import SHOTS, browser_page

__all__ = ["browser_page"]  # the fixture, imported for this module's tests

SWEEP = spec.check({"model": "/models/tiny", "profile": "sweep", "num_prompts": PROMPTS, "concurrencies": [1, 2, 4, 8]})
LIMITS = judge.Thresholds()


def judged(report: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    outcome, reasons = judge.judge(report, reference, 7 if reference else None, LIMITS)
    return {
        "outcome": outcome,
        "reasons": reasons,
        "reference_run_id": 7 if reference else None,
        "thresholds": LIMITS.ratios(),
    }


def render_section(report: dict[str, Any], reference: dict[str, Any] | None = None) -> str:
    env = create_app(Settings()).state.templates.env
    page = env.from_string(
        '{% extends "base.html" %}{% block content %}{% include "checks/serving/run.html" %}{% endblock %}'
    )
    return page.render(
        run={"id": 9, "kind": "serving"}, section=pages.run_context(report, judged(report, reference), reference)
    )


def test_the_table_shows_both_throughputs_labelled_and_the_server_figures() -> None:
    report = report_for(SWEEP, [0.9, 1.0, 1.1])
    body = html.unescape(render_section(report))
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))
    assert "measured, not gated" in plain and "aggregate tok/s, all requests" in plain
    assert "per request decode tok/s" in plain
    first = report["levels"][0]["rounds"]
    assert f"{sum(r['output_throughput'] for r in first) / 3:.2f}" in body  # 1368.32 at concurrency 1
    assert (
        f"{min(r['output_throughput'] for r in first):.1f} \u2013 {max(r['output_throughput'] for r in first):.1f}"
        in body
    )
    assert f"{sum(r['per_request_decode_tok_s'] for r in first) / 3:.2f}" in body
    assert f"{sum(r['mean_e2el_ms'] for r in first) / 3 / 1000:.3f}" in body
    assert "12 / 128" in plain  # the profile's lengths
    server = report["server"]
    for key in ("model_load_s", "kv_cache_gib", "engine_init_s"):
        assert server[key] is not None and f"{server[key]:.2f}" in body
    assert f"{server['kv_cache_tokens']:,}" in body
    assert body.count("<title>concurrency ") == 4 and "Reference" not in plain


def test_a_failed_run_shows_the_reference_beside_it_and_its_curve() -> None:
    reference = report_for(SWEEP)
    report = report_for(SWEEP, [0.5, 0.5, 0.5])
    body = html.unescape(render_section(report, reference))
    assert "reference run #7" in body and "c=1: output throughput 684.2 tok/s is 50.0% of the reference's" in body
    assert f"{reference['levels'][0]['rounds'][0]['output_throughput']:.2f}" in body  # the reference's column
    assert body.count("<title>reference, concurrency ") == 4


def test_the_curve_puts_more_throughput_right_and_more_latency_up() -> None:
    drawn = curve.geometry([(1, 100.0, 0.5), (2, 180.0, 0.6), (4, 300.0, 0.9)], [])
    xs, ys = [p.x for p in drawn.points], [p.y for p in drawn.points]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)
    assert drawn.left <= min(xs) and max(xs) <= drawn.right and drawn.top <= min(ys) and max(ys) <= drawn.bottom
    assert [label for _, label in drawn.x_ticks][:2] == ["0", "100"]
    assert curve.steps(0.9) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def stored_run(database_url: str, report: dict[str, Any]) -> int:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine), write=True) as session:
        run = Run(
            kind="serving", model="/models/tiny", backend="vllm", tasks=[], options=report["spec"], status="succeeded"
        )
        session.add(run)
        session.flush()
        session.add(models.ServingReport(run_id=run.id, report=report, **judged(report, None)))
        run_id = run.id
    engine.dispose()
    return run_id


def test_the_run_page_shows_the_section_through_the_registry(database_url: str) -> None:
    run_id = stored_run(database_url, report_for(SWEEP))
    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200, page.text
    assert "Serving performance" in page.text and "Throughput against latency" in page.text
    assert "Questions" not in page.text


def test_the_model_page_keeps_a_history_per_device_kind(database_url: str) -> None:
    report = report_for(SWEEP)
    run_id = stored_run(database_url, report)
    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        page = client.get("/models//models/tiny")
    assert page.status_code == 200, page.text
    history = page.text[page.text.index('id="serving-history"') :]
    assert f"On {report['device_kind']}" in history
    rows = re.findall(
        r'<tr><td><a href="/runs/(\d+)">.*?<td class="num">(\d+)</td><td class="num">([\d.,]+)</td>', history
    )
    first = report["levels"][0]
    mean = statistics.fmean(r["output_throughput"] for r in first["rounds"])
    assert rows[0] == (str(run_id), str(first["concurrency"]), f"{mean:.1f}")
    assert len(rows) == len(report["levels"])
    assert "Other benchmarks" not in page.text  # its figures are scores, but not benchmarks of an lm-eval task


def test_screenshot_of_the_section(browser_page: Page) -> None:
    css = (Path(__file__).parents[1] / "gate" / "dashboard" / "static" / "gate.css").read_text()
    body = render_section(report_for(SWEEP, [0.48, 0.5, 0.52]), report_for(SWEEP, [0.97, 1.0, 1.03]))
    browser_page.set_content(body.replace('<link rel="stylesheet" href="/static/gate.css">', f"<style>{css}</style>"))
    section = browser_page.locator("#serving")
    assert section.locator("svg g.point").count() == 4
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / "serving-section.png"))
    overflow = browser_page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 1280  # reads at 1280 px without scrolling sideways, the table included
    widths = section.locator("table.serving-levels").evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert widths[0] <= widths[1], widths
