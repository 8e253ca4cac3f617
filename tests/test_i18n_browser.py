"""The overview and a run page in English and in Chinese, in headless Chromium: the header's switch, the cookie that
keeps the choice while a person clicks on, CJK text that renders (a font with Chinese glyphs) and fits the page.

Screenshots land in test-output/screenshots/ (30-33, each language)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page

from gate.worker.client import GateClient
from tests.conftest import GSM8K_DIR
from tests.processes import Api, server
from tests.test_dashboard import SHOTS, browser_page, shot

__all__ = ["browser_page"]  # the fixture, imported for this module's tests

FIXTURE = Path(__file__).parent / "fixtures" / "lmeval" / "v0.4.3-gsm8k_cot_llama-vllm.json"
DOCS = 1319  # GSM8K's test set


def questions() -> list[dict[str, str]]:
    path = GSM8K_DIR / "test.jsonl"
    if path.is_file():
        return [json.loads(line) for line in path.read_text().splitlines()][:DOCS]
    return [
        {"question": f"Question {i}: what is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
        for i in range(DOCS)
    ]


def gsm8k_run(folder: Path, strict: int, flexible: int) -> tuple[Path, Path]:
    """An lm-eval 0.4 gsm8k output (a real file's layout) whose scores are strict/1319 and flexible/1319, with a
    samples file that agrees: the first `strict` questions right under strict-match, `flexible` under flexible."""
    folder.mkdir()
    results = json.loads(FIXTURE.read_text().replace("gsm8k_cot_llama", "gsm8k"))
    scores = results["results"]["gsm8k"]
    scores["exact_match,strict-match"], scores["exact_match,flexible-extract"] = strict / DOCS, flexible / DOCS
    results_path = folder / "results_2026-11-25T10-00-00.json"
    results_path.write_text(json.dumps(results))
    lines = []
    for doc_id, doc in enumerate(questions()):
        answer = doc["answer"].split("####")[-1].strip()
        digest = hashlib.sha256(doc["question"].encode()).hexdigest()
        for flt, right in (("strict-match", doc_id < strict), ("flexible-extract", doc_id < flexible)):
            given = answer if right else "0"
            lines.append(
                json.dumps(
                    {
                        "doc_id": doc_id,
                        "doc": doc,
                        "target": doc["answer"],
                        "resps": [[f"<think>\nLet me work it out step by step.\n</think>\n\nThe answer is {given}."]],
                        "filtered_resps": [given],
                        "filter": flt,
                        "doc_hash": digest,
                        "exact_match": float(right),
                    }
                )
            )
    samples_path = folder / "samples_gsm8k_2026-11-25T10-00-00.jsonl"
    samples_path.write_text("\n".join(lines))
    return results_path, samples_path


def upload(api: Api, results: Path, samples: Path, **form: str) -> dict:
    files = [("results", (results.name, results.read_bytes())), ("samples", (samples.name, samples.read_bytes()))]
    response = api.http.post("/api/v1/runs/import", files=files, data=form, headers=api.headers["submit"])
    assert response.status_code == 201, response.text
    return response.json()


def fits(page: Page) -> bool:
    """Nothing wider than the window (a table scrolls inside itself, as every table of the dashboard does)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig is not installed")
def test_a_font_with_chinese_glyphs_is_installed() -> None:
    """Without one, Chromium draws Chinese as boxes (`make browser` installs fonts-noto-cjk)."""
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=True).stdout
    assert fonts.strip(), "no font covers Chinese: apt-get install fonts-noto-cjk"


def test_overview_and_run_page_in_both_languages(tmp_path: Path, browser_page: Page) -> None:
    page = browser_page
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path, anonymous_read="true") as s:
        api = Api(s)
        failing = upload(
            api,
            *gsm8k_run(tmp_path / "npu", 1019, 1026),
            model="acme/port-npu",
            backend="vllm-ascend",
            baseline="qwen3-4b-thinking-2507",
        )
        passing = upload(
            api,
            *gsm8k_run(tmp_path / "gpu", 937, 940),
            model="acme/port-gpu",
            backend="vllm",
            baseline="qwen3-4b-thinking-2507",
        )
        assert (failing["verdict"], passing["verdict"]) == ("fail", "pass")
        running = api.submit(model="acme/port-npu", backend="hf", tasks=["gsm8k"])
        worker = GateClient(s.url, api.headers["worker"]["Authorization"].split()[1])
        lease = worker.claim("npu-7", "hf", ["ascend910b"], {}, wait_s=1)
        assert lease is not None and lease["run_id"] == running["id"]
        worker.heartbeat(running["id"], lease["lease"], 3, 40, "")

        page.goto(s.url + "/")  # Chromium asks for en-US
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").inner_text() == "Latest verdicts"
        assert "fail" in page.locator(f"a.card[href='/runs/{failing['id']}']").inner_text()
        assert fits(page)
        shot(page, "30-i18n-overview-en")
        page.goto(f"{s.url}/runs/{failing['id']}")
        assert "Scores against the baseline" in page.locator("main").inner_text()
        assert fits(page)
        shot(page, "31-i18n-run-en")
        page.screenshot(path=str(SHOTS / "31-i18n-run-en-first-screen.png"))

        page.goto(s.url + "/")
        page.click("header nav.languages a[lang='zh-CN']")  # the switch in the header
        page.wait_for_url(s.url + "/?lang=zh")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("h1").inner_text() == "最新判定"
        card = page.locator(f"a.card[href='/runs/{failing['id']}']").inner_text()
        assert "未通过" in card and "对照 qwen3-4b-thinking-2507" in card and "年" in card
        assert "通过" in page.locator(f"a.card[href='/runs/{passing['id']}']").inner_text()
        assert "忙碌" in page.locator("table").last.inner_text() and "秒前" in page.locator("table").last.inner_text()
        assert fits(page)
        shot(page, "32-i18n-overview-zh")

        page.click(f"a.card[href='/runs/{failing['id']}']")  # no ?lang= any more: the cookie keeps Chinese
        page.wait_for_url(f"{s.url}/runs/{failing['id']}")
        main = page.locator("main").inner_text()
        assert "对照基线的得分" in main and "评测配置" in main and "题目" in main
        assert "exact_match,strict-match" in main and "gsm8k" in main  # identifiers stay as they are
        assert page.locator("table.scores tbody tr td").nth(4).inner_text() == "+6.96 pp"
        assert fits(page)
        shot(page, "33-i18n-run-zh")
        page.screenshot(path=str(SHOTS / "33-i18n-run-zh-first-screen.png"))  # the report above the questions
        page.locator("#samples").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "33-i18n-run-zh-questions.png"))

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{s.url}/runs/{failing['id']}")
        assert page.locator("header nav.languages").is_visible()
        page.screenshot(path=str(SHOTS / "33-i18n-run-zh-phone.png"))  # the first screen, as a phone shows it

        page.click("header nav.languages a[lang='en']")
        page.wait_for_url(f"{s.url}/runs/{failing['id']}?lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
