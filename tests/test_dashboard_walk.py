"""Every dashboard page as a newcomer sees it after `make start`: anonymous reads, one finished smoke run of the tiny
model (done by a worker through the protocol), a busy worker, and each error page. Headless Chromium; a console
error, a failed request or a 4xx/5xx of anything but the page itself fails the walk."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response

from gate.worker import environment
from gate.worker.client import GateClient
from tests.processes import Api, server
from tests.test_dashboard import SHOTS, browser_page, shot

__all__ = ["browser_page"]  # the fixture, imported for this module's tests

PYTHON_SPELLING = re.compile(r"\b(None|True|False|nan)\b|(?<![\w.])\d+\.0(?![\w.])(?! ?%)")  # 8.0, not 2.13.0


class Watch:
    """What went wrong while a page loaded, apart from the page's own status."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        self.page_url = ""
        page.on("console", self.console)
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", self.response)

    def console(self, message: ConsoleMessage) -> None:
        own = message.location.get("url") == self.page_url and message.text.startswith("Failed to load resource")
        if message.type == "error" and not own:  # an error page's own 4xx is logged too: that one is expected
            self.problems.append(f"console: {message.text} at {message.location.get('url')}")

    def response(self, response: Response) -> None:
        if response.status >= 400 and response.url != self.page_url:
            self.problems.append(f"{response.status}: {response.url}")

    def visit(self, page: Page, url: str, status: int = 200) -> None:
        self.page_url = url
        answered = page.goto(url)
        page.wait_for_load_state("networkidle")
        assert answered is not None and answered.status == status, url
        assert not self.problems, self.problems


def raw_python_values(page: Page) -> list[str]:
    """Python's spelling of values in the text a person reads. Code, questions and the verdict's own sentences
    (gate.checks.accuracy.judge writes those) and version strings (a task's 3.0) are left out."""
    text = page.evaluate(
        """() => { const main = document.querySelector('main').cloneNode(true);
        main.querySelectorAll('code, pre, td.q, .notes, .alert, .card-reason, .version').forEach(e => e.remove());
        return main.innerText; }"""
    )
    return [text[max(m.start() - 40, 0) : m.end() + 10] for m in PYTHON_SPELLING.finditer(text)]


@pytest.mark.lmeval
def test_a_newcomer_walks_every_page(tmp_path: Path, browser_page: Page, tiny_smoke_run) -> None:
    page = browser_page
    watch = Watch(page)
    results, samples = tiny_smoke_run
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path, anonymous_read="true") as s:
        api = Api(s)
        worker = GateClient(s.url, api.headers["worker"]["Authorization"].split()[1])
        finished = []
        for _ in range(2):  # two smoke runs, so that /compare has a pair
            queued = api.submit(model="acme/smoke", backend="hf", tasks=["gsm8k"], baseline="qwen3-4b-thinking-2507")
            lease = worker.claim("cpu-1", "hf", ["cpu"], {}, wait_s=1)
            assert lease is not None and lease["run_id"] == queued["id"]
            worker.complete(queued["id"], lease["lease"], results, samples, environment.capture(), "")
            finished.append(queued["id"])
        a, b = finished
        # a busy worker that claimed a while ago and heartbeats its run
        busy = api.submit(model="acme/smoke", backend="hf", tasks=["gsm8k"])
        lease = worker.claim("cpu-1", "hf", ["cpu"], {}, wait_s=1)
        assert lease is not None and lease["run_id"] == busy["id"]
        time.sleep(4)
        worker.heartbeat(busy["id"], lease["lease"], 2, 8, "")

        watch.visit(page, s.url + "/")
        heard = page.locator("table tbody tr:has-text('cpu-1') td").nth(4).inner_text()
        assert re.fullmatch(r"[0-2] s ago", heard), heard  # the heartbeat, not the claim 4 s before it
        card = page.locator(f"a.card[href='/runs/{b}']")
        assert "not comparable" in card.inner_text() and "Why: the run used limit=8" in card.inner_text()
        assert not raw_python_values(page)
        shot(page, "20-walk-overview")

        watch.visit(page, s.url + "/runs")
        header = page.locator("table.runs thead").inner_text()
        assert all(name in header for name in ("Score %", "Δ", "Baseline"))
        row = page.locator(f"table.runs tbody tr:has(a[href='/runs/{b}'])").inner_text()
        assert "qwen3-4b-thinking-2507" in row and " pp" in row and "\u2212" in row
        assert not raw_python_values(page)
        shot(page, "21-walk-runs")

        watch.visit(page, f"{s.url}/runs/{b}")
        scores = page.locator("table.scores tbody tr").first.inner_text()
        se = float(page.locator("table.scores tbody tr td").nth(2).inner_text().split()[0])
        assert se > 10 and "baseline-based" in scores  # 8 questions: about 16 pp, never 0
        low, high = (float(x.replace("\u2212", "-")) for x in re.findall(r"[+\u2212][\d.]+(?= …| pp)", scores)[-2:])
        assert high - low > 40
        gold = page.locator("table.samples tbody tr").first.locator("td.t").inner_text()
        assert re.search(r"#### \d+\s*$", gold), gold  # the whole gold solution, its final answer included
        profile = page.locator("section:has(h2:text('Eval profile'))").inner_text()
        assert "limit 8)" in profile and "enable_thinking" not in profile
        assert "\u00d7 0" not in page.locator("section:has(h2:text('Environment'))").inner_text()
        assert not raw_python_values(page)
        shot(page, "22-walk-run-report")
        watch.visit(page, f"{s.url}/runs/{b}?wrong=true&task=")
        watch.visit(page, f"{s.url}/runs/{busy['id']}")
        shot(page, "23-walk-run-running")

        watch.visit(page, s.url + "/models/acme/smoke")
        assert page.locator("svg text.date").count() >= 1
        assert "(UTC)" in (page.locator("svg text.axis").text_content() or "")
        assert not raw_python_values(page)
        shot(page, "24-walk-model")

        watch.visit(page, f"{s.url}/compare?a={a}&b={b}")
        shot(page, "25-walk-compare")
        watch.visit(page, s.url + "/baselines")
        assert not raw_python_values(page)
        shot(page, "26-walk-baselines")
        watch.visit(page, s.url + "/login")
        shot(page, "27-walk-login")
        watch.visit(page, s.url + "/badge/acme/smoke.svg")

        for name, path, status in [
            ("run", "/runs/999", 404),
            ("model", "/models/nosuch", 404),
            ("compare", "/compare", 422),
            ("compare-same", f"/compare?a={a}&b={a}", 422),
            ("filter", "/runs?status=bogus", 422),
            ("unknown", "/no/such/page", 404),
        ]:
            watch.visit(page, s.url + path, status)
            assert page.locator(".error-detail").inner_text()
            shot(page, f"28-walk-error-{name}")
    assert SHOTS.is_dir()
