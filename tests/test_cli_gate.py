"""The one-line gate: `gate submit --wait` and `gate import` exit codes, JUnit and JSON reports, end to end with
a worker (openai backend against the loopback gold server, so pass and fail come from real lm-eval runs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.conftest import GSM8K_DIR
from tests.lmeval_runs import gold_server
from tests.processes import Api, server, worker_process

pytestmark = pytest.mark.lmeval
BASELINE = "qwen3-4b-thinking-2507"


def gate(*args: str, token: str, server_url: str) -> subprocess.CompletedProcess:
    env = {
        "GATE_TOKEN": token,
        "GATE_SERVER": server_url,
        "PATH": "/usr/bin:/bin",
        "GITHUB_REPOSITORY": "acme/port",
        "GITHUB_SHA": "0123abc",
    }
    return subprocess.run(
        [sys.executable, "-m", "gate.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_submit_wait_exit_codes(tmp_path: Path, tiny_model: Path) -> None:
    with gold_server(GSM8K_DIR, 0) as gold, server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        api = Api(s)
        token = api.headers["submit"]["Authorization"].split()[1]
        worker = worker_process(
            s.url,
            api.headers["worker"]["Authorization"].split()[1],
            tmp_path / "w",
            backend="openai",
            extra=("--openai-base-url", gold.url.removesuffix("/completions"), "--openai-tokenizer", str(tiny_model)),
        )
        try:
            passing = gate(
                "submit",
                "--model",
                "gold-927",
                "--baseline",
                BASELINE,
                "--backend",
                "openai",
                "--wait",
                "--junit",
                str(tmp_path / "pass.xml"),
                "--json",
                str(tmp_path / "pass.json"),
                token=token,
                server_url=s.url,
            )
            assert passing.returncode == 0, passing.stderr
            assert "verdict pass" in passing.stdout and "gsm8k" in passing.stdout
            assert "succeeded" in passing.stderr  # progress is followed on stderr
            suite = ElementTree.parse(tmp_path / "pass.xml").getroot().find("testsuite")
            assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")
            verdict = json.loads((tmp_path / "pass.json").read_text())
            assert verdict["exit_code"] == 0 and verdict["run"]["ci"]["repository"] == "acme/port"

            failing = gate(
                "submit",
                "--model",
                "gold-880",
                "--baseline",
                BASELINE,
                "--backend",
                "openai",
                "--wait",
                "--junit",
                str(tmp_path / "fail.xml"),
                "--json",
                str(tmp_path / "fail.json"),
                token=token,
                server_url=s.url,
            )
            assert failing.returncode == 1, failing.stderr
            # 880 of 1319 cannot reach the gate's 901: the sharded run stops once 420 questions are wrong, its score
            # that of the questions answered, the stop and its bound in the failure
            failure = ElementTree.parse(tmp_path / "fail.xml").getroot().find("testsuite/testcase/failure")
            message = failure.get("message")
            stop = re.search(
                r"fail \(stopped at (\d+) of 1319, certainty; final score bound \[([\d.]+), ([\d.]+)\]\)", message
            )
            assert stop is not None, message
            answered, high = int(stop.group(1)), float(stop.group(3))
            assert 419 <= answered < 1319 and high < 0.683  # 419 wrong answers leave at most 900 right
            assert "decided early: fail (stopped at" in failing.stdout
            # the running estimate, kept with the run, ends at the shard that decided, with the failure's bound
            estimate = json.loads((tmp_path / "fail.json").read_text())["run"]["estimate"]
            assert estimate["total"] == 1319 and estimate["points"][-1][0] == answered
            assert estimate["points"][-1][3] == pytest.approx(high, abs=1e-4)

            smoke = gate(
                "submit",
                "--model",
                "gold-927",
                "--baseline",
                BASELINE,
                "--backend",
                "openai",
                "--options",
                '{"limit": 20}',
                "--wait",
                "--junit",
                str(tmp_path / "nc.xml"),
                token=token,
                server_url=s.url,
            )
            assert smoke.returncode == 2, smoke.stderr
            assert "not comparable: the run used limit=20" in smoke.stdout
            assert ElementTree.parse(tmp_path / "nc.xml").getroot().find("testsuite/testcase/skipped") is not None

            nobody = gate(
                "submit",
                "--model",
                "m",
                "--baseline",
                BASELINE,
                "--label",
                "no-such-worker",
                "--wait",
                "--timeout",
                "2",
                token=token,
                server_url=s.url,
            )
            assert nobody.returncode == 3 and "did not finish" in nobody.stderr

            refused = gate("submit", "--model", "m", "--baseline", "nope", "--wait", token=token, server_url=s.url)
            assert refused.returncode == 2 and "unknown baseline 'nope'" in refused.stderr
            unreachable = gate(
                "submit", "--model", "m", "--baseline", BASELINE, token=token, server_url="http://127.0.0.1:9"
            )
            assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
        finally:
            worker.terminate()
            worker.wait(60)


def test_import_exit_codes(tmp_path: Path, gold_run_927, gold_run_880, tiny_smoke_run) -> None:
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        token = Api(s).headers["submit"]["Authorization"].split()[1]
        for (results, samples), code in ((gold_run_927, 0), (gold_run_880, 1), (tiny_smoke_run, 2)):
            args = ["import", str(results), "--baseline", BASELINE, "--model", "acme/by-hand"]
            for sample in samples:
                args += ["--samples", str(sample)]
            assert gate(*args, token=token, server_url=s.url).returncode == code
        assert (
            gate("import", str(gold_run_927[0]), "--baseline", BASELINE, token="wrong", server_url=s.url).returncode
            == 2
        )


def test_import_records_the_fingerprint_of_a_model_folder(tmp_path: Path, gold_run_927, tiny_model: Path) -> None:
    from gate.worker.fingerprint import fingerprint

    results, samples = gold_run_927
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        token = Api(s).headers["submit"]["Authorization"].split()[1]
        args = ["import", str(results), "--samples", str(samples[0]), "--baseline", BASELINE, "--model", "acme/port"]
        done = gate(
            *args,
            "--model-dir",
            str(tiny_model),
            "--junit",
            str(tmp_path / "gate.xml"),
            "--json",
            str(tmp_path / "gate.json"),
            token=token,
            server_url=s.url,
        )
        assert done.returncode == 0, done.stderr
        missing = gate(*args, "--model-dir", str(tmp_path / "nowhere"), token=token, server_url=s.url)
    expected = fingerprint(tiny_model).digest
    assert f"model fingerprint {expected}" in done.stdout
    prop = ElementTree.parse(tmp_path / "gate.xml").getroot().find("testsuite/properties/property")
    assert (prop.get("name"), prop.get("value")) == ("model_fingerprint", expected)
    report = json.loads((tmp_path / "gate.json").read_text())
    assert report["model_fingerprint"] == report["run"]["model_fingerprint"] == expected
    assert missing.returncode == 2 and "holds no model files" in missing.stderr
