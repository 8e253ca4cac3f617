"""A whole qualification for real on CPU (marked vllm: GATE_VLLM_PYTHON): a gate server and one `gate worker
--backend vllm` in vLLM's CPU environment qualify the tiny Qwen3 with the card's plan — GSM8K through lm-eval's
vLLM backend on the local data with a small limit (so its verdict is honestly "not comparable"), the alignment
probe of the vLLM engine against `hf` in FP32, the card's serving profile, and the smoke outputs. The report's
Markdown is parsed and held to the API's figures; its page is looked at in Chromium in both languages."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.processes import Api, server, worker_process
from tests.test_dashboard import CHROMIUM, SHOTS
from tests.test_qualification_api import markdown_tables

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[1]
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
ENGINE_ARGS = {"max_model_len": 512, "enforce_eager": True}


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    return python


def request(tiny_model: Path) -> dict[str, Any]:
    return {
        "model": str(tiny_model),
        "backend": "vllm",
        "baseline": "qwen3-4b-thinking-2507",
        "device": "cpu",
        "dtype": "float32",
        "engine_args": ENGINE_ARGS,
        "labels": ["cpu-e2e"],
        "accuracy": {
            "limit": 4,
            "model_args": {"dtype": "float32", **ENGINE_ARGS},
            "gen_kwargs": {"max_gen_toks": 32},
        },
        "serving": {"rounds": 1, "num_prompts": 10},
        "smoke": {"sampling": {"max_tokens": 48}},
    }


def cells(table: list[list[str]], first: str) -> list[str]:
    """The row of a Markdown table whose first cell is `first`."""
    return next(row for row in table if row[0] == first)


def test_a_qualification_runs_every_check_and_its_report_reads_like_the_card(
    vllm_python: str, tiny_model: Path, tmp_path: Path
) -> None:
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path, anonymous_read="true") as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        worker = worker_process(
            s.url, token, tmp_path / "w", backend="vllm", labels=("cpu-e2e",), python=vllm_python, env=VLLM_ENV
        )
        try:
            created = api.http.post("/api/v1/qualifications", json=request(tiny_model), headers=api.headers["submit"])
            assert created.status_code == 201, created.text
            qid = created.json()["id"]
            for check in created.json()["checks"]:
                api.wait(check["run"]["id"], timeout=900)
        finally:
            worker.terminate()
            worker.wait(60)
        q = api.http.get(f"/api/v1/qualifications/{qid}", headers=api.headers["admin"]).json()
        report = api.http.get(f"/api/v1/qualifications/{qid}/report", headers=api.headers["admin"]).json()
        markdown = {
            lang: api.http.get(f"/api/v1/qualifications/{qid}/report.md?lang={lang}", headers=api.headers["admin"]).text
            for lang in ("en", "zh")
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            SHOTS.mkdir(parents=True, exist_ok=True)
            seen = {}
            for lang in ("en", "zh"):
                page.goto(f"{s.url}/qualifications/{qid}?lang={lang}")
                page.screenshot(path=str(SHOTS / f"qualification-{lang}.png"), full_page=True)
                seen[lang] = page.inner_text("main")
                assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            browser.close()

    # every check ran for real, and the verdict says what the runs said
    runs = {c["name"]: c["run"] for c in q["checks"]}
    assert list(runs) == ["accuracy", "alignment", "serving", "smoke"]
    for name, run in runs.items():
        assert run["status"] == "succeeded", f"{name}: {run['failure_reason']}"
    assert runs["accuracy"]["verdict"] == "not_comparable"  # it used limit: no pass/fail
    assert runs["serving"]["verdict"] is None  # no reference: measured, not gated
    assert q["status"] == "finished" and q["verdict"] in ("not_comparable", "fail")
    assert q["verdict"] != "pass"

    # the report: environment, outputs, alignment tables, accuracy, throughput, config, memory, commands
    env = report["environment"]
    assert env["device_kind"] == "cpu" and env["cpu_cores"] == os.cpu_count() and env["versions"]["vllm"]
    assert (env["precision"], env["mode"]) == ("float32", "eager")
    outputs = report["samples"]["outputs"]
    assert [o["prompt"] for o in outputs][:2] == ["What is the capital of France?", "2+2等于多少?只需给出数字。"]
    assert len(outputs) == 4 and all(o["completion_tokens"] > 0 for o in outputs)
    assert report["samples"]["sampling"]["temperature"] == 0.7
    assert report["model_config"]["config"]["hidden_size"] == 64
    assert report["alignment"]["next_tokens"] and report["alignment"]["perplexity"]
    [level] = report["serving"]["levels"]
    assert level["concurrency"] == 10 and level["output_throughput"] > 0
    assert report["memory"]["kv_cache_gib"] == 1.0
    commands = {c["check"]: "\n".join(c["commands"]) for c in report["commands"]}
    assert "-m lm_eval --model vllm" in commands["accuracy"]
    assert "vllm.entrypoints.openai.api_server" in commands["serving"] and " bench serve " in commands["serving"]

    # the Markdown: well-formed tables holding the API's figures, in both languages
    for text in markdown.values():
        tables = markdown_tables(text)
        throughput = next(t for t in tables if t[1][0] == "10")
        assert throughput[1][2] == f"{level['output_throughput']:,.2f}"
        assert throughput[1][5] == f"{level['tpot_ms']:,.2f}"
        config = next(t for t in tables if any(r[0] == "hidden_size" for r in t))
        assert cells(config, "hidden_size")[1] == "64" and cells(config, "num_key_value_heads")[1] == "2"
        next_token = next(
            t for t in tables if len(t[0]) == 6 and t[1][0] == report["alignment"]["next_tokens"][0]["text"]
        )
        assert next_token[1][1] == f"{report['alignment']['next_tokens'][0]['cosine']:.6f}"
        official = next(t for t in tables if len(t) == 5 and t[1][1] == "gsm8k")
        assert [r[3] for r in official[1:]] == ["0.703", "0.723", "0.695", "0.758"]
        for output in outputs:
            assert output["answer"] in text
        assert re.search(rf"/runs/{runs['serving']['id']}\)", text)
    assert "## Serving throughput" in markdown["en"] and "## 服务吞吐量" in markdown["zh"]
    assert "Test environment" in seen["en"] and "测试环境" in seen["zh"]
    assert "What is the capital of France?" in seen["zh"]  # the outputs stay verbatim in either language
