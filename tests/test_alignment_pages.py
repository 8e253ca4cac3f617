"""The alignment section of a run page, from real executor reports (tests/fixtures/alignment): the card's tables,
the verdict, the divergence strip, through the registry and the app's own route and templates."""

from __future__ import annotations

import html
import json
import re
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page

from gate import migrate
from gate.app import create_app
from gate.checks.alignment import judge, models, pages
from gate.db import make_engine, make_session_factory, transaction
from gate.errors import InvalidInput
from gate.runs.models import Run
from gate.settings import Settings
from tests.test_dashboard import SHOTS, browser_page

__all__ = ["browser_page"]  # the fixture, imported for this module's tests

FIXTURES = Path(__file__).parent / "fixtures" / "alignment"
BF16_FP32 = "candidate bfloat16 vs reference float32"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def stored_run(database_url: str, report: dict[str, Any]) -> int:
    """An alignment run as the server stores it once a worker uploads the report: the run and its report row."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine), write=True) as session:
        run = Run(
            kind="alignment",
            model="tiny-qwen3",
            backend="hf",
            tasks=[],
            options=report["spec"],
            status="succeeded",
            verdict=report["outcome"],
        )
        session.add(run)
        session.flush()
        thresholds = judge.Thresholds().as_dict()
        session.add(
            models.AlignmentReport(
                run_id=run.id,
                outcome=report["outcome"],
                reasons=report["reasons"],
                thresholds=thresholds,
                report=report,
            )
        )
        run_id = run.id
    engine.dispose()
    return run_id


def test_the_card_tables_come_from_the_report() -> None:
    report = fixture("three-way")
    section = pages.run_context(report, comparison=BF16_FP32)
    compared = report["comparisons"][BF16_FP32]
    prompts = [t for t in compared["texts"] if t["kind"] == "next_token"]
    assert (
        [r.text for r in section["next_tokens"]]
        == [t["name"] for t in prompts]
        == [
            "The capital of France is",
            "The chemical symbol for water is H",
            "In mathematics, 2 + 2 =",
            "The largest planet in our solar system is",
        ]
    )
    for row, text in zip(section["next_tokens"], prompts, strict=True):
        last = text["positions"][-1]
        assert (row.cosine, row.rel_error, row.match) == (last["cosine"], last["rel_error"], last["top1_match"])
        assert row.candidate == json.dumps(report["tokens"][str(last["candidate_top1"])], ensure_ascii=False)
    ppl = section["perplexity"]
    assert len(ppl) == 6 and ppl[0].text == "The capital of France is..."
    assert section["perplexity_mean"].candidate == statistics.fmean(r.candidate for r in ppl)
    assert section["perplexity_median"].rel_diff == statistics.median(r.rel_diff for r in ppl)
    assert section["basis"] == "full-vocabulary logits"
    assert list(section["three_way"]) == [*report["comparisons"], "noise floor"]
    assert section["outcome"] == "pass" and section["thresholds"]["noise_factor"] == 2.0


def test_the_strip_defaults_to_the_text_that_diverges_most() -> None:
    report = fixture("three-way")
    section = pages.run_context(report, comparison=BF16_FP32)
    texts = report["comparisons"][BF16_FP32]["texts"]
    worst = max(texts, key=lambda t: t["kl_mean"])
    assert section["text"] == worst["name"]
    bars = section["strip"].bars
    assert len(bars) == len(worst["positions"])
    assert [b.differs for b in bars] == [not p["top1_match"] for p in worst["positions"]]
    tallest = max(range(len(bars)), key=lambda i: bars[i].height)
    assert worst["positions"][tallest]["kl"] == max(p["kl"] for p in worst["positions"])
    first = worst["positions"][0]
    assert bars[0].title.startswith(f"position 1: {pages.shown(report['tokens'], first['token'])} · KL")


def test_identical_sides_draw_no_bar_and_a_bad_choice_is_one_sentence() -> None:
    report = fixture("fp32")
    section = pages.run_context(report, text="Python is a high-level programming...")
    assert section["three_way"] is None and section["comparison"] == "candidate float32 vs reference float32"
    assert {b.height for b in section["strip"].bars} == {0.0}
    assert all(r.rel_diff == 0.0 for r in section["perplexity"])
    with pytest.raises(InvalidInput, match="comparison must be one of: candidate float32 vs reference float32"):
        pages.run_context(report, comparison="noise floor")
    with pytest.raises(InvalidInput, match="text must name one of the probe's 10 texts"):
        pages.run_context(report, text="Hamlet")


def render_section(report: dict[str, Any], **choice: str) -> str:
    """The run page's alignment section as the app's template environment renders it, inside the base layout."""
    env = create_app(Settings()).state.templates.env
    page = env.from_string(
        '{% extends "base.html" %}{% block content %}{% include "checks/alignment/run.html" %}{% endblock %}'
    )
    return page.render(run={"id": 7, "kind": "alignment"}, section=pages.run_context(report, **choice))


def test_the_section_shows_the_tables_and_the_strip() -> None:
    report = fixture("three-way")
    text = "Water is composed of two..."
    body = html.unescape(render_section(report, comparison=BF16_FP32, text=text))
    plain = re.sub(r"<[^>]+>", "", body)
    assert "judged against the noise floor" in plain and "3 comparison(s) within the noise floor." in body
    for row in report["three_way"].values():
        assert f"{row['cosine_mean']:.6f}" in body and f"{row['ppl_rel_diff_max'] * 100:.3f} %" in body
    compared = report["comparisons"][BF16_FP32]
    water = next(t for t in compared["texts"] if t["name"] == text)
    assert f"{water['candidate_ppl']:.4f}" in body and f"{water['reference_ppl']:.4f}" in body
    assert "full-vocabulary logits" in body
    for prompt in (t for t in compared["texts"] if t["kind"] == "next_token"):
        assert pages.shown(report["tokens"], prompt["prediction"]["candidate"]) in body
    titles = re.findall(r"<title>(position \d+: .*?)</title>", body)
    assert len(titles) == len(water["positions"]) == body.count('<rect class="hit"')
    assert titles[0].startswith(f"position 1: {pages.shown(report['tokens'], water['positions'][0]['token'])} · KL")
    assert f"/runs/7?comparison={quote(BF16_FP32)}&amp;text=" in render_section(report, comparison=BF16_FP32)


def test_the_run_page_shows_the_section_through_the_registry(database_url: str) -> None:
    report = fixture("three-way")
    run_id = stored_run(database_url, report)
    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        page = client.get(f"/runs/{run_id}", params={"comparison": BF16_FP32, "text": "Water is composed of two..."})
        bad = client.get(f"/runs/{run_id}", params={"comparison": "nope"})
    assert page.status_code == 200, page.text
    assert "Numerical alignment" in page.text and "Questions" not in page.text
    assert page.text.count('<rect class="hit"') == len(report["comparisons"][BF16_FP32]["texts"][5]["positions"])
    assert bad.status_code == 422 and "comparison must be one of" in bad.text


def test_screenshot_of_the_section(browser_page: Page) -> None:
    css = (Path(__file__).parents[1] / "gate" / "dashboard" / "static" / "gate.css").read_text()
    body = render_section(fixture("three-way"), comparison=BF16_FP32)
    browser_page.set_content(body.replace('<link rel="stylesheet" href="/static/gate.css">', f"<style>{css}</style>"))
    section = browser_page.locator("#alignment")
    expected = pages.run_context(fixture("three-way"), comparison=BF16_FP32)["strip"].bars
    assert section.locator("svg g.bar").count() == len(expected)
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / "alignment-section.png"))
    overflow = browser_page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 1280  # reads at 1280 px without scrolling sideways
