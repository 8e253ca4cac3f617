"""`gate qualify`: its exit codes, table, JUnit (one case per check) and JSON against a real gate server; the
verdicts come from a real lm-eval upload."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from gate.qualifications import cli
from tests.conftest import finish
from tests.processes import Api, server

BASELINE = "qwen3-4b-thinking-2507"
ACCURACY = ("--model", "acme/port", "--backend", "hf", "--baseline", BASELINE, "--check", "accuracy")


def gate(*args: str, token: str, server_url: str, wait: bool = True) -> subprocess.Popen:
    env = {"GATE_TOKEN": token, "GATE_SERVER": server_url, "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "gate.cli", "qualify", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip


def queued_run(api: Api, earlier: int) -> int:
    """The run of the qualification queued after `earlier` others, once it exists."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = api.http.get("/api/v1/qualifications", headers=api.headers["admin"]).json()
        if len(found) > earlier:
            return found[0]["checks"][0]["run"]["id"]
        time.sleep(0.1)
    raise TimeoutError("no qualification was queued")


def test_qualify_waits_says_why_and_exits_with_the_verdict(tmp_path: Path, gold_run_927) -> None:
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        api = Api(s)
        token = api.headers["submit"]["Authorization"].split()[1]
        # nobody can take it: the wait ends in a timeout (3), and stderr said what it waited for
        waited = gate(
            *ACCURACY, "--accuracy", '{"limit": 8}', "--wait", "--timeout", "3", token=token, server_url=s.url
        )
        out, err = waited.communicate(timeout=60)
        assert waited.returncode == 3, err
        assert "accuracy queued (no worker with backend hf is connected)" in err
        assert err.rstrip().endswith("did not finish within 3 s")

        refused = gate(*ACCURACY, "--accuracy", "[1]", token=token, server_url=s.url)
        _, err = refused.communicate(timeout=60)
        assert (refused.returncode, err.strip()) == (2, "error: --accuracy must be a JSON object")
        unknown = gate(*ACCURACY, "--check", "speed", token=token, server_url=s.url)
        _, err = unknown.communicate(timeout=60)
        assert unknown.returncode == 2 and "(HTTP 422): plan 'card' has no check speed" in err

        # the first qualification's run would be claimed first: it is cancelled (nothing was to take it anyway)
        first = api.http.get("/api/v1/qualifications", headers=api.headers["admin"]).json()[0]
        cancelled = api.http.post(
            f"/api/v1/runs/{first['checks'][0]['run']['id']}/cancel", headers=api.headers["admin"]
        )
        assert cancelled.status_code == 200, cancelled.text
        junit, report = tmp_path / "q.xml", tmp_path / "q.json"
        passing = gate(*ACCURACY, "--wait", "--junit", str(junit), "--json", str(report), token=token, server_url=s.url)
        run_id = queued_run(api, earlier=1)
        with httpx.Client(base_url=s.url, timeout=60) as http:
            finish(http, api.headers, run_id, gold_run_927)
        out, err = passing.communicate(timeout=120)
    assert passing.returncode == 0, err
    assert "verdict pass" in out.splitlines()[0]
    assert f"  accuracy   {run_id:>6} succeeded  yes    pass" in out
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "0"
    [case] = suite.findall("testcase")
    assert case.get("name") == "accuracy" and case.find("failure") is None and case.find("error") is None
    written = json.loads(report.read_text())
    assert written["exit_code"] == 0 and written["qualification"]["verdict"] == "pass"


@pytest.mark.parametrize(
    ("status", "verdict", "gated", "expected"),
    [
        ("succeeded", "fail", True, "failure"),
        ("succeeded", "not_comparable", True, "skipped"),
        ("failed", None, True, "error"),
        ("succeeded", None, True, None),  # measured, not gated
        ("succeeded", "fail", False, None),
    ],
)
def test_junit_has_one_case_per_check(status: str, verdict: str | None, gated: bool, expected: str | None) -> None:
    run = {"id": 3, "kind": "serving", "status": status, "verdict": verdict, "failure_reason": "OOM"}
    q = {"model": "m", "checks": [{"name": "serving", "gated": gated, "waiting": None, "run": run}]}
    case = ElementTree.fromstring(cli.junit(q).split(b"\n", 1)[1]).find("testsuite/testcase")
    assert case is not None
    found = [child.tag for child in case if child.tag != "system-out"]
    assert found == ([expected] if expected else [])


def test_the_table_has_a_row_per_benchmark_and_task_names_them() -> None:
    checks = [
        {"name": name, "gated": True, "run": {"id": i, "status": "succeeded", "verdict": "pass"}}
        for i, name in enumerate(["accuracy:gsm8k", "accuracy:minerva_math"], start=7)
    ]
    q = {
        "id": 1,
        "model": "m",
        "backend": "hf",
        "status": "finished",
        "verdict": "pass",
        "reasons": [],
        "checks": checks,
    }
    lines = cli.table(q, "http://gate").splitlines()
    assert lines[2:] == [
        "  accuracy:gsm8k             7 succeeded  yes    pass",
        "  accuracy:minerva_math      8 succeeded  yes    pass",
    ]
    assert cli.accuracy_settings('{"limit": 8}', ["gsm8k", "mmlu"]) == {"limit": 8, "tasks": ["gsm8k", "mmlu"]}
    assert cli.accuracy_settings(None, ["mmlu"]) == {"tasks": ["mmlu"]}
    assert cli.accuracy_settings('{"limit": 8}', None) == {"limit": 8}
