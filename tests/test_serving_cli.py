"""`gate bench`: its table, one JUnit case per concurrency level and exit codes, and the command end to end against
a real gate server while this test plays the worker with reports of real `vllm bench serve` figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from gate.checks.serving import cli, judge, spec
from gate.cli import gating
from tests.processes import Api, server
from tests.serving_reports import PROMPTS, report_for

SERVER = "http://gate.example"
SWEEP = spec.check({"model": "/models/tiny", "profile": "sweep", "num_prompts": PROMPTS, "concurrencies": [1, 2]})


def served(speeds: list[float], reference: dict[str, Any] | None) -> dict[str, Any]:
    """GET /api/v1/runs/{id}/serving's shape for a sweep at the given speeds."""
    report = report_for(SWEEP, speeds)
    outcome, reasons = judge.judge(report, reference, 3 if reference else None, judge.Thresholds())
    return {"outcome": outcome, "reasons": reasons, "reference_run_id": 3, "report": report}


def finished_run(verdict: str | None) -> dict[str, Any]:
    return {"id": 12, "model": "/models/tiny", "backend": "vllm", "status": "succeeded", "verdict": verdict}


def test_the_table_has_a_row_per_level_with_both_throughputs() -> None:
    serving = served([1.0, 1.0, 1.0], None)
    lines = cli.table(finished_run(None), serving, SERVER).splitlines()
    assert lines[0].startswith("run 12 /models/tiny on vllm: succeeded, verdict none")
    assert lines[1].split() == [
        "concurrency",
        "out",
        "tok/s",
        "req",
        "tok/s",
        "latency",
        "s",
        "TPOT",
        "ms",
        "TTFT",
        "ms",
        "failed",
    ]
    first = serving["report"]["levels"][0]["rounds"][0]
    assert lines[2].split() == [
        "1",
        f"{first['output_throughput']:.2f}",
        f"{first['per_request_decode_tok_s']:.2f}",
        f"{first['mean_e2el_ms'] / 1000:.3f}",
        f"{first['mean_tpot_ms']:.2f}",
        f"{first['mean_ttft_ms']:.1f}",
        "0",
    ]
    assert lines[-1] == f"  {judge.NOT_GATED}"


def test_one_junit_case_per_level_a_failing_one_with_the_judges_sentences() -> None:
    reference = report_for(SWEEP)
    failing = ElementTree.fromstring(cli.junit(finished_run("fail"), served([0.5] * 3, reference)))
    suite = failing.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "2"
    case = failing.findall("testsuite/testcase")[0]
    failure = case.find("failure")
    assert case.get("name") == "c=1" and failure is not None
    assert failure.get("message", "").startswith("c=1: output throughput")
    assert failure.text is not None and "mean TPOT" in failure.text

    passing = ElementTree.fromstring(cli.junit(finished_run("pass"), served([1.0] * 3, reference)))
    outs = [case.findtext("system-out") for case in passing.findall("testsuite/testcase")]
    assert all(out and out.startswith("output throughput ") for out in outs)
    ungated = ElementTree.fromstring(cli.junit(finished_run(None), served([1.0] * 3, None)))
    assert [c.find("skipped").get("message") for c in ungated.findall("testsuite/testcase")] == [judge.NOT_GATED] * 2


def test_engine_arguments_are_read_as_json_where_they_parse() -> None:
    assert gating.engine_args(["max_model_len=512", "enforce_eager=true", "dtype=float32"]) == {
        "max_model_len": 512,
        "enforce_eager": True,
        "dtype": "float32",
    }


def _claim_and_upload(api: Api, speed: float) -> dict:
    claimed = api.http.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "vllm", "wait_s": 20}, headers=api.headers["worker"]
    )
    assert claimed.status_code == 200, claimed.text
    body = {"lease": claimed.json()["lease"], "report": report_for(claimed.json()["options"], [speed] * 3)}
    done = api.http.post(
        f"/api/v1/workers/runs/{claimed.json()['run_id']}/serving", json=body, headers=api.headers["worker"]
    )
    assert done.status_code == 200, done.text
    return done.json()


@pytest.mark.parametrize(("speed", "code", "failures"), [(1.0, 0, "0"), (0.5, 1, "1")])
def test_gate_bench_waits_for_the_verdict_and_exits_with_it(
    database_url: str, tmp_path: Path, speed: float, code: int, failures: str
) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        queued = api.http.post(
            "/api/v1/serving/runs",
            json={"model": "/models/tiny", "num_prompts": PROMPTS},
            headers=api.headers["submit"],
        )
        assert queued.status_code == 201, queued.text
        reference = _claim_and_upload(api, 1.0)
        command = [
            sys.executable, "-m", "gate.cli", "bench", "--server", s.url, "--model", "/models/tiny",
            "--num-prompts", str(PROMPTS), "--reference-run", str(reference["id"]), "--wait", "--timeout", "120",
            "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "v.json"),
        ]  # fmt: skip
        env = {**os.environ, "GATE_TOKEN": api.headers["submit"]["Authorization"].removeprefix("Bearer ")}
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as bench:
            _claim_and_upload(api, speed)  # the claim waits until the command has queued its run
            out, err = bench.communicate(timeout=120)
    assert bench.returncode == code, err
    assert "queued run 2" in err and out.splitlines()[0].startswith("run 2 /models/tiny on vllm: succeeded")
    suite = ElementTree.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == failures
    written = json.loads((tmp_path / "v.json").read_text())
    assert written["exit_code"] == code and written["serving"]["reference_run_id"] == reference["id"]
