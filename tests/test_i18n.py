"""The dashboard in English and Simplified Chinese: the catalog is complete, a language is chosen per request and
sticks, numbers and dates follow it, and concurrent requests in two languages never mix."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from fastapi.testclient import TestClient

from gate import i18n
from gate.app import create_app
from gate.dashboard import formatting
from gate.i18n import catalogs, web
from gate.settings import Settings
from tests.conftest import make_token

ROOT = Path(__file__).resolve().parents[1]
ZH_HEADER = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN_HEADER = {"Accept-Language": "en-US,en;q=0.9"}
NOON = datetime(2026, 11, 25, 12, 3, 7, tzinfo=timezone.utc)
NAMED = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[tuple[str | None, str], list[str]]:
    """Every msgid pybabel would extract (babel.cfg, over gate/ and templates/), with where it was found."""
    method_map, options_map = parse_mapping_cfg((ROOT / "babel.cfg").open())
    found: dict[tuple[str | None, str], list[str]] = {}
    for folder in ("gate", "templates"):
        for filename, lineno, message, _, context in extract_from_dir(str(ROOT / folder), method_map, options_map):
            msgid = message[0] if isinstance(message, tuple) else message
            found.setdefault((context, msgid), []).append(f"{folder}/{filename}:{lineno}")
    return found


def zh_catalog():
    with catalogs.po_path(i18n.ZH.locale).open("rb") as po:
        return read_po(po, locale=i18n.ZH.locale)


def test_the_chinese_catalog_translates_every_extracted_string() -> None:
    catalog = zh_catalog()
    found = extracted()
    assert len(found) > 300  # the templates and the Python that writes page words
    missing = [
        f"{msgid!r} ({where[0]})"
        for (context, msgid), where in found.items()
        if (msgid, context) not in {(m.id[0] if isinstance(m.id, tuple) else m.id, m.context) for m in catalog if m.id}
    ]
    assert not missing, "run pybabel extract/update and translate:\n" + "\n".join(missing)
    untranslated, fuzzy = [], []
    for message in catalog:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(form.strip() for form in forms):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert not untranslated and not fuzzy and not catalog.fuzzy, (untranslated, fuzzy)


def test_translations_keep_every_placeholder_and_format_as_the_english_does() -> None:
    """A translation that drops %(name)s loses a figure; a stray % breaks the page (Jinja %-formats every _())."""
    for message in zh_catalog():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        names = set(NAMED.findall(ids[-1]))
        values = {name: "1" for name in names | {"num"}}
        for form in forms:
            assert set(NAMED.findall(form)) == names, (message.id, form)
            try:
                ids[0] % values
            except (TypeError, ValueError, KeyError):
                continue  # an English msgid that is never %-formatted (a Python label with a bare %)
            form % values  # raises on a stray %


def test_the_catalog_loads_compiled_in_memory() -> None:
    zh = i18n.translations(i18n.ZH.locale)
    assert zh.gettext("not comparable") == "不可比" and zh.gettext("pass") == "通过"
    assert zh.ngettext("%(num)s day ago", "%(num)s days ago", 3) == "%(num)s 天前"
    assert i18n.translations("en").gettext("pass") == "pass"
    assert i18n.translations("zh") is zh  # compiled once, whatever the name it is asked by
    with pytest.raises(ValueError, match="no catalog"):
        i18n.translations("fr")


@pytest.mark.parametrize(
    ("header", "cookie", "query", "locale"),
    [
        ("zh-CN,zh;q=0.9", None, None, "zh_Hans_CN"),
        ("zh-Hans", None, None, "zh_Hans_CN"),
        ("en-US,en;q=0.9", None, None, "en"),
        ("fr-FR,zh-CN;q=0.8,en;q=0.5", None, None, "zh_Hans_CN"),  # the first language gate speaks
        ("en;q=0.4,zh;q=0.8", None, None, "zh_Hans_CN"),  # by weight, not by position
        ("zh;q=0", None, None, "en"),  # q=0: not this one
        ("fr, de", None, None, "en"),
        ("", None, None, "en"),
        (None, None, None, "en"),
        ("en-US", "zh", None, "zh_Hans_CN"),  # the cookie beats the browser
        ("zh-CN", "zh", "en", "en"),  # the switch beats both
        ("en-US", "klingon", "xx", "en"),  # nonsense is no choice
    ],
)
def test_negotiate(header: str | None, cookie: str | None, query: str | None, locale: str) -> None:
    assert i18n.negotiate(header, cookie, query) == locale


def test_numbers_and_dates_follow_the_language() -> None:
    assert formatting.when(NOON) == "2026-11-25 12:03 UTC"
    assert formatting.duration(252) == "4 min 12 s" and formatting.ago(7200) == "2 h ago"
    with i18n.use("zh_Hans_CN") as chosen:
        assert chosen.html_lang == "zh-CN"
        assert formatting.when(NOON) == "2026年11月25日 12:03 UTC"
        assert formatting.when_s(NOON) == "2026年11月25日 12:03:07 UTC"
        assert str(formatting.timestamp(NOON)).endswith(">2026年11月25日 12:03 UTC</time>")
        assert formatting.duration(252) == "4 分 12 秒" and formatting.duration(0.42) == "0.4 秒"
        assert formatting.ago(7200) == "2 小时前" and formatting.ago(3 * 86400) == "3 天前"
        assert formatting.yesno(True) == "是" and formatting.value(False) == "否"
        # Chinese writes decimals as English does (CLDR: "." and ","); the figures come from Babel's zh data
        assert formatting.number(16.2345, 2) == format_decimal(16.2345, "0.00", locale="zh_Hans_CN") == "16.23"
        assert formatting.pct(0.7035) == "70.35" and formatting.pp(-2.0) == "\u22122.00 pp"
    assert formatting.when(NOON) == "2026-11-25 12:03 UTC"  # the block ended: English again


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with TestClient(create_app(Settings(database_url=url, anonymous_read=True))) as test_client:
        test_client.headers["X-Test-Url"] = url
        yield test_client


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', page)
    assert found is not None
    return found.group(1)


def test_accept_language_chooses_the_pages_language(client: TestClient) -> None:
    zh = client.get("/", headers=ZH_HEADER).text
    assert html_lang(zh) == "zh-CN"
    assert "<h1>最新判定</h1>" in zh and ">概览</a>" in zh and "Latest verdicts" not in zh
    en = client.get("/", headers=EN_HEADER).text
    assert html_lang(en) == "en" and "<h1>Latest verdicts</h1>" in en and "最新判定" not in en
    assert html_lang(client.get("/").text) == "en"  # no preference: English
    missing = client.get("/runs/999", headers=ZH_HEADER)  # error pages too, with the sentence left as it is
    assert missing.status_code == 404 and "<h1>未找到 <span" in missing.text
    assert "run 999 does not exist" in missing.text


def test_the_switch_sets_a_cookie_that_sticks(client: TestClient) -> None:
    switched = client.get("/runs?status=failed&lang=zh", headers=EN_HEADER)
    assert html_lang(switched.text) == "zh-CN"
    assert switched.headers["set-cookie"].startswith("gate_lang=zh;") and "Path=/" in switched.headers["set-cookie"]
    # the header's links keep the page and its query, and name the other language
    assert 'href="/runs?status=failed&amp;lang=en" lang="en" hreflang="en">English</a>' in switched.text
    assert '<strong lang="zh-CN" aria-current="true">中文</strong>' in switched.text
    later = client.get("/baselines", headers=EN_HEADER)  # the cookie, not the browser, decides now
    assert html_lang(later.text) == "zh-CN" and "<h1>基线</h1>" in later.text and "set-cookie" not in later.headers
    back = client.get("/baselines?lang=en", headers=ZH_HEADER)
    assert html_lang(back.text) == "en" and back.headers["set-cookie"].startswith("gate_lang=en;")
    assert html_lang(client.get("/", headers=ZH_HEADER).text) == "en"


def test_the_switch_links_stay_on_this_site() -> None:
    assert web.switch_url("http://gate/runs?lang=zh&status=failed", i18n.EN) == "/runs?status=failed&lang=en"
    assert web.switch_url("http://gate//evil.example/x", i18n.ZH) == "/evil.example/x?lang=zh"


def test_a_page_formats_its_dates_in_the_language(client: TestClient) -> None:
    token = make_token(client.headers["X-Test-Url"], "ci", "submit")
    queued = client.post(
        "/api/v1/runs",
        json={"model": "acme/port", "tasks": ["gsm8k"], "backend": "hf"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert queued.status_code == 202, queued.text
    zh = client.get("/runs", headers=ZH_HEADER).text
    assert re.search(r'<time datetime="[^"]+">\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d UTC</time>', zh)
    assert '<span class="status queued">排队中</span>' in zh
    en = client.get("/runs", headers=EN_HEADER).text
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', en)
    assert '<span class="status queued">queued</span>' in en


def test_concurrent_requests_in_two_languages_do_not_mix(client: TestClient) -> None:
    """The Jinja environment is shared: each request's gettext must read its own language, not the last one set."""
    wrong: list[str] = []
    start = threading.Barrier(8)

    def reader(header: dict[str, str], lang: str, heading: str, other: str) -> None:
        start.wait()
        for _ in range(25):
            page = client.get("/runs?status=queued", headers=header).text
            if html_lang(page) != lang or heading not in page or other in page:
                wrong.append(f"{lang}: {page[:200]}")

    threads = [
        threading.Thread(target=reader, args=(ZH_HEADER, "zh-CN", "<h1>运行记录</h1>", "<h1>Runs</h1>"))
        if i % 2
        else threading.Thread(target=reader, args=(EN_HEADER, "en", "<h1>Runs</h1>", "<h1>运行记录</h1>"))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong, wrong[:3]
