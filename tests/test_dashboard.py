"""The dashboard in headless Chromium against a real server, with runs created through the API.

Screenshots of every page land in test-output/screenshots/ (CI keeps that folder)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from gate.checks.accuracy import generation
from gate.dashboard import chart, views
from gate.worker.client import GateClient
from tests.conftest import make_token
from tests.processes import Api, server
from tests.test_estimate_chart import broken_port

SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def upload(api: Api, results: Path, samples: list[Path], **form: str) -> dict:
    files = [("results", (results.name, results.read_bytes()))] + [
        ("samples", (s.name, s.read_bytes())) for s in samples
    ]
    response = api.http.post("/api/v1/runs/import", files=files, data=form, headers=api.headers["submit"])
    assert response.status_code == 201, response.text
    return response.json()


def hostile_samples(samples: Path, tmp_path: Path) -> Path:
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    for line in lines:
        if line["doc_id"] == 0:
            line["filtered_resps"] = [HOSTILE]
    path = tmp_path / samples.name
    path.write_text("\n".join(json.dumps(line) for line in lines))
    return path


@pytest.fixture
def browser_page():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.lmeval
def test_dashboard(tmp_path: Path, browser_page: Page, gold_run_927, gold_run_880, tiny_smoke_run) -> None:
    page = browser_page
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path, anonymous_read="true") as s:
        api = Api(s)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))

        page.goto(s.url + "/")
        assert "No verdicts yet" in page.content() and "/api/v1/runs" in page.content()
        shot(page, "01-overview-empty")

        reference = upload(api, *gold_run_927, model="acme/port-gpu", backend="vllm", baseline="qwen3-4b-thinking-2507")
        api.http.post(
            "/api/v1/baselines",
            json={"from_run": reference["id"], "name": "port-gpu-bf16"},
            headers=api.headers["admin"],
        ).raise_for_status()
        failing = upload(api, *gold_run_880, model="acme/port-npu", backend="vllm-ascend", baseline="port-gpu-bf16")
        results, samples = tiny_smoke_run
        smoke = upload(
            api, results, [hostile_samples(samples[0], tmp_path)], model="acme/smoke", baseline="qwen3-4b-thinking-2507"
        )
        assert (reference["verdict"], failing["verdict"], smoke["verdict"]) == ("pass", "fail", "not_comparable")

        # a run in progress, driven through the worker protocol
        running = api.submit(model="acme/port-npu", backend="hf", tasks=["gsm8k"])
        worker = GateClient(s.url, api.headers["worker"]["Authorization"].split()[1])
        lease = worker.claim("npu-7", "hf", ["ascend910b"], {}, wait_s=1)
        worker.heartbeat(running["id"], lease["lease"], 3, 40, "Running generate_until requests")

        page.goto(s.url + "/")
        for run in (reference, failing, smoke):
            card = page.locator(f"a.card[href='/runs/{run['id']}']")
            expected = {"pass": "pass", "fail": "fail", "not_comparable": "not comparable"}[run["verdict"]]
            assert expected in card.inner_text()
        assert page.locator(f"[data-run-progress='{running['id']}'] .count").inner_text() == "3 / 40"
        assert "npu-7" in page.content() and "busy" in page.content()
        shot(page, "02-overview")
        worker.heartbeat(running["id"], lease["lease"], 25, 40, "")
        page.wait_for_function(
            f"document.querySelector(\"[data-run-progress='{running['id']}'] .count\").textContent === '25 / 40'",
            timeout=10_000,
        )

        # two clicks from the failed verdict to the questions behind it
        page.click(f"a.card[href='/runs/{failing['id']}']")
        assert "fail" in page.locator(".summary").inner_text()
        assert "47 right → wrong, 0 wrong → right" in page.content()
        shot(page, "03-run-report-fail")
        page.click("text=See the flipped questions")
        flipped = page.locator("table.samples tbody tr")
        assert flipped.count() == 2 * 47  # the same 47 questions under both filters
        assert page.locator("table.samples tbody tr:has-text('exact_match,strict-match')").count() == 47
        shot(page, "04-compare")

        page.goto(f"{s.url}/runs/{smoke['id']}")
        assert page.title() != "pwned" and HOSTILE in page.locator("table.samples").inner_text()
        assert "Not comparable" in page.content() and "limit=8" in page.content()
        shot(page, "05-run-report-not-comparable")

        page.goto(s.url + "/runs?verdict=fail")
        rows = page.locator("table.runs tbody tr")
        assert rows.count() == 1 and f"#{failing['id']}" in rows.inner_text()
        page.select_option("select[name=verdict]", "pass")
        page.click("form.filters button")
        page.wait_for_url(re.compile(r"verdict=pass"))
        assert rows.count() == 1 and f"#{reference['id']}" in rows.inner_text()
        shot(page, "06-runs-filtered")

        page.goto(s.url + "/models/acme/port-npu")
        assert page.locator("svg .point.fail").count() == 1 and page.locator("svg rect.band").count() == 1
        shot(page, "07-model-history")
        page.goto(s.url + "/baselines")
        assert "published, protocol unknown" in page.content() and "port-gpu-bf16" in page.content()
        shot(page, "08-baselines")
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{s.url}/runs/{failing['id']}")
        page.screenshot(path=str(SHOTS / "09-run-report-phone.png"))  # the first screen, as a phone shows it

        outside = [u for u in requests if not u.startswith(s.url)]
        assert not outside, outside
        assert httpx.get(s.url + "/static/gate.css").status_code == 200


def test_wrong_answers_only(tmp_path: Path, browser_page: Page, gold_run_880) -> None:
    """The run page's "wrong answers only" box, ticked with the Task box left blank, as a person uses it."""
    page = browser_page
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path, anonymous_read="true") as s:
        run = upload(Api(s), *gold_run_880, model="acme/port-npu", baseline="qwen3-4b-thinking-2507")
        page.goto(f"{s.url}/runs/{run['id']}")
        rows = page.locator("table.samples tbody tr")
        assert (rows.count(), page.locator("table.samples tbody tr.right").count()) == (50, 50)
        page.check("input[name=wrong]")
        page.click("form.filters button")
        page.wait_for_url(re.compile(r"wrong=true"))
        # the gold server answered questions 0-879 right and the rest wrong: the first wrong one is 880
        assert (rows.count(), page.locator("table.samples tbody tr.wrong").count()) == (50, 50)
        assert rows.first.locator("td").first.inner_text() == "880"


ERROR_PAGES = [  # (screenshot, path, status, the sentence)
    ("compare", "/compare", 422, "name the two runs to compare: /compare?a=RUN&b=RUN"),
    ("run", "/runs/999", 404, "run 999 does not exist"),
    ("model", "/models/nosuch", 404, "no run of a model named 'nosuch'"),
    ("unknown", "/no/such/page", 404, "there is nothing at /no/such/page"),
]


def test_error_pages(tmp_path: Path, browser_page: Page) -> None:
    page = browser_page
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path) as s:
        answered = page.goto(s.url + "/runs")
        assert answered is not None and answered.status == 401
        assert page.locator(".error-detail").text_content() == "A valid bearer token is required."
        shot(page, "10-error-sign-in")
        page.click("main a[href='/login']")
        page.fill("input[name=token]", make_token(url, "reader", "read"))
        page.click("form button")
        assert page.url == s.url + "/"

        for name, path, status, sentence in ERROR_PAGES:
            answered = page.goto(s.url + path)
            assert answered is not None and answered.status == status, path
            assert answered.headers["content-type"].startswith("text/html")
            assert page.locator("header.top nav a[href='/runs']").is_visible()
            assert page.locator("h1").inner_text().endswith(f"({status})")
            assert page.locator(".error-detail").text_content() == sentence
            shot(page, f"11-error-{name}")

        icon = page.request.get(s.url + "/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"


def one_sided_baselines(tmp_path: Path) -> Path:
    """The published baseline with its GSM8K gate made one-sided: only drops fail."""
    folder = tmp_path / "baselines"
    folder.mkdir()
    text = (Path(__file__).resolve().parents[1] / "baselines" / "qwen3-4b-thinking-2507.yaml").read_text()
    assert "sided: two-sided" in text
    text = text.replace("name: qwen3-4b-thinking-2507", "name: drops-only").replace("sided: two-sided", "sided: lower")
    (folder / "drops-only.yaml").write_text(text)
    return folder


@pytest.mark.lmeval
def test_token_cap_warning_and_one_sided_band(tmp_path: Path, browser_page: Page, tiny_model, tiny_smoke_run) -> None:
    page = browser_page
    results, samples = tiny_smoke_run
    # what a worker records: the random tiny model rambles on to the 32-token cap it was run with
    stats = generation.truncation(samples, str(tiny_model), 32)
    capped = stats["gsm8k"]
    assert capped["answers"] == 8 and capped["truncated_share"] > views.TRUNCATION_WARN_SHARE
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path, anonymous_read="true", baselines_dir=str(one_sided_baselines(tmp_path))) as s:
        api = Api(s)
        queued = api.submit(model="acme/rambling", backend="hf", tasks=["gsm8k"], baseline="drops-only")
        worker = GateClient(s.url, api.headers["worker"]["Authorization"].split()[1])
        lease = worker.claim("w", "hf", [], {}, wait_s=1)
        assert lease is not None and lease["run_id"] == queued["id"]
        worker.complete(queued["id"], lease["lease"], results, samples, {"generation": stats}, "")
        assert api.run(queued["id"])["generation"] == stats

        page.goto(f"{s.url}/runs/{queued['id']}")
        warning = page.locator(".alert.truncation").inner_text()
        assert f"{capped['at_token_cap']} of 8 gsm8k answers" in warning and "hit the 32-token cap" in warning
        assert "% at the 32-token cap" in page.locator("table.scores").inner_text()
        shot(page, "12-run-report-token-cap")

        page.goto(f"{s.url}/models/acme/rambling")
        assert "gate band \u22122 pp" in page.content()  # a minus sign: one-sided
        band = page.locator("svg rect.band")
        top, height = float(band.get_attribute("y") or "nan"), float(band.get_attribute("height") or "nan")
        baseline_y = float(page.locator("svg line.baseline").get_attribute("y1") or "nan")
        assert top == chart.PAD  # only drops fail: every score above baseline - 2 pp passes
        assert top < baseline_y < top + height
        shot(page, "13-model-history-one-sided")


def test_the_running_estimate_narrows_as_shards_are_answered(tmp_path: Path, browser_page: Page) -> None:
    """A broken port's sharded run seen live: the band narrows shard by shard, the page redraws itself, and the
    shard where the certainty rule cut is marked."""
    page = browser_page
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with server(url, tmp_path, anonymous_read="true") as s:
        api = Api(s)
        running = api.submit(model="acme/port-npu", backend="hf", tasks=["gsm8k"], baseline="qwen3-4b-thinking-2507")
        worker = GateClient(s.url, api.headers["worker"]["Authorization"].split()[1])
        lease = worker.claim("npu-7", "hf", [], {}, wait_s=1)["lease"]
        found = broken_port()
        assert found["points"][-1][0] == 440
        before = {"total": 1319, "points": found["points"][:-1]}
        worker.heartbeat(running["id"], lease, 400, 1319, "", before)
        page.goto(f"{s.url}/runs/{running['id']}")
        figure = page.locator("figure.estimate")
        assert "0 right of 400 answered" in figure.inner_text() and page.locator("line.cut").count() == 0
        assert len(page.locator("polyline.estimate-line").get_attribute("points").split()) == 10
        shot(page, "12-running-estimate")
        worker.heartbeat(running["id"], lease, 440, 1319, "", found)
        # gate.js saw the new shard and fetched the page again (a vertical line has no area: "attached", not visible)
        page.wait_for_selector("line.cut", state="attached", timeout=10_000)
        assert "stopped at 440" in figure.inner_text()
        assert "after 440 questions: the stop rule cut there" in figure.inner_text()
        shot(page, "13-running-estimate-cut")
