"""The smoke section of a run page, from reports the hf backend really generated (tests/smoke_models.py): each
prompt and its output verbatim, the reasoning folded, the sampling and the model's configuration, through the app's
route and templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from playwright.sync_api import Page

from gate import migrate
from gate.app import create_app
from gate.checks.smoke import judge, models, pages
from gate.db import make_engine, make_session_factory, transaction
from gate.runs.models import Run
from gate.settings import Settings
from tests import smoke_models
from tests.test_dashboard import SHOTS, browser_page

__all__ = ["browser_page"]  # the fixture, imported for this module's tests


@pytest.fixture(scope="module")
def reports(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("smoke-page-models")
    thinking = smoke_models.thinking(tiny_model, root / "thinking")
    silent = smoke_models.silent(tiny_model, root / "silent")
    return {
        "tiny": smoke_models.real_report(str(tiny_model)),
        "thinking": smoke_models.real_report(str(thinking)),
        "silent": smoke_models.real_report(str(silent), temperature=0.0),
    }


def judged(report: dict[str, Any]) -> dict[str, Any]:
    outcome, reasons = judge.judge(report["outputs"], report["sampling"]["max_tokens"])
    return {"outcome": outcome, "reasons": reasons}


def render_section(report: dict[str, Any]) -> str:
    env = create_app(Settings()).state.templates.env
    page = env.from_string(
        '{% extends "base.html" %}{% block content %}{% include "checks/smoke/run.html" %}{% endblock %}'
    )
    return page.render(run={"id": 9, "kind": "smoke"}, section=pages.run_context(report, judged(report)))


def articles(body: str) -> list[str]:
    return re.findall(r'<article class="smoke-output[^"]*" id="prompt-\d+">(.*?)</article>', body, re.DOTALL)


def test_each_prompt_and_its_output_verbatim(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["tiny"]
    body = render_section(report)
    shown = articles(body)
    assert len(shown) == 4
    for article, output in zip(shown, report["outputs"], strict=True):
        assert f'<pre class="prompt">{escape(output["prompt"])}</pre>' in article
        if output["reasoning"] is None:  # no think block: the whole text, verbatim
            assert f'<pre class="output">{escape(output["text"])}</pre>' in article and "<details" not in article
        else:  # the random model may sample <think> too: its reasoning folded, the rest as the answer
            assert f'<details class="thinking"><summary>reasoning ({len(output["reasoning"])} characters)' in article
            assert f'<pre class="output">{escape(output["answer"])}</pre>' in article
        assert f"{output['prompt_tokens']} prompt tokens, 16 generated; finished by length." in article
    assert "all 4 prompt(s) produced output." in body
    sampling = body[body.index('class="kv smoke-sampling"') :]
    assert re.search(r"<code>temperature</code></th><td class=\"num\">0.7</td>\s*<td>the run's spec</td>", sampling)
    assert re.search(r"<code>top_k</code></th><td class=\"num\">0</td>\s*<td>neutral default</td>", sampling)
    config = body[body.index('class="kv smoke-config"') :]
    # as config.json spells them
    assert "<tr><th><code>hidden_size</code></th><td><code>64</code></td></tr>" in config
    assert "<tr><th><code>rope_theta</code></th><td><code>10000.0</code></td></tr>" in config
    assert "<tr><th><code>rms_norm_eps</code></th><td><code>1e-06</code></td></tr>" in config
    assert "<tr><th><code>tie_word_embeddings</code></th><td><code>false</code></td></tr>" in config
    assert "<th><code>architectures</code></th><td><code>[&#34;Qwen3ForCausalLM&#34;]</code></td></tr>" in config
    assert "<th><code>generation_config.json</code></th>" in body and "<th><code>eos_token_id</code></th>" in body


def test_the_reasoning_is_folded_but_there(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["thinking"]
    body = render_section(report)
    first, output = articles(body)[0], report["outputs"][0]
    assert output["reasoning"] and output["answer"] == ""
    summary = f"<summary>reasoning ({len(output['reasoning'])} characters)</summary>"
    assert f'<details class="thinking">{summary}<pre>{escape(output["reasoning"])}</pre></details>' in first
    assert "No answer after the reasoning." in first and '<pre class="output">' not in first
    assert "reached max_tokens (16) inside its reasoning: no answer yet." in body


def test_a_prompt_that_produced_nothing_says_so(reports: dict[str, dict[str, Any]]) -> None:
    body = render_section(reports["silent"])
    assert body.count("No output: the model generated nothing for this prompt.") == 4
    assert 'class="smoke-output wrong"' in body
    assert str(escape('prompt 3 ("根据我们之前的对话,我们讨论过的客户叫什么名字?") produced no output.')) in body


def test_the_run_page_shows_the_section_through_the_registry(
    database_url: str, reports: dict[str, dict[str, Any]]
) -> None:
    report = reports["tiny"]
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine), write=True) as session:
        run = Run(
            kind="smoke", model="/models/tiny", backend="hf", tasks=[], options=report["spec"], status="succeeded"
        )
        session.add(run)
        session.flush()
        session.add(models.SmokeReport(run_id=run.id, report=report, **judged(report)))
        run_id = run.id
    engine.dispose()
    with TestClient(create_app(Settings(database_url=database_url, anonymous_read=True))) as client:
        page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200, page.text
    assert "Sample outputs" in page.text and str(escape(report["outputs"][3]["text"])) in page.text
    assert "Questions" not in page.text


def test_screenshot_of_the_section(browser_page: Page, reports: dict[str, dict[str, Any]]) -> None:
    css = (Path(__file__).parents[1] / "gate" / "dashboard" / "static" / "gate.css").read_text()
    body = render_section(reports["thinking"])
    browser_page.set_content(body.replace('<link rel="stylesheet" href="/static/gate.css">', f"<style>{css}</style>"))
    section = browser_page.locator("#smoke")
    assert section.locator("details.thinking").count() == 4
    assert not section.locator("details.thinking pre").first.is_visible()  # folded until opened
    section.locator("details.thinking summary").first.click()
    assert section.locator("details.thinking pre").first.is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / "smoke-section.png"))
    assert browser_page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
