"""Alignment runs for real: a gate server, a `gate worker` process, hf sides of the tiny Qwen3 in their processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest

from tests import alignment_models
from tests.conftest import wait_until
from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import stop

SHORT = {"set": "texts", "texts": ["Natalia sold clips to 48 of her friends in April.", "What is 2 plus 3?"]}
SAME = "candidate float32 vs reference float32"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return alignment_models.build(tmp_path_factory.mktemp("alignment-models"))


def probe(api: Api, candidate: str, reference: str, **extra: object) -> dict:
    body = {"candidate": {"model": candidate}, "reference": {"model": reference}, "probes": SHORT, **extra}
    created = api.http.post("/api/v1/alignment/runs", json=body, headers=api.headers["submit"])
    assert created.status_code == 201, created.text
    return created.json()


def align(api: Api, candidate: str, reference: str, out: Path) -> subprocess.CompletedProcess[str]:
    """`gate align --wait` as CI runs it: the probe's verdict is the exit code, its comparisons the JUnit cases."""
    texts = out.with_suffix(".txt")
    texts.write_text("\n\n".join(SHORT["texts"]))
    argv = [sys.executable, "-m", "gate.cli", "align", "--server", api.url]
    argv += ["--token", api.headers["submit"]["Authorization"].split()[1], "--candidate-model", candidate]
    argv += ["--reference-model", reference, "--probes", str(texts), "--wait", "--timeout", "300"]
    argv += ["--junit", str(out.with_suffix(".xml")), "--json", str(out.with_suffix(".json"))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=360)


def side_processes(worker: psutil.Process) -> list[psutil.Process]:
    """The worker's side processes (not the tokenizer's or the decoder's)."""
    found = []
    for child in worker.children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "gate.checks.alignment.sides" in argv and not {"--tokenize", "--decode"} & set(argv):
            found.append(child)
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; the store: API tests, both
def test_a_worker_probes_passes_fails_and_refuses_another_tokenizer(
    database_url: str, tmp_path: Path, models: dict[str, str]
) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], tmp_path / "w1")
        try:
            passed = align(api, models["tiny"], models["tiny"], tmp_path / "same")
            failing = align(api, models["perturbed"], models["tiny"], tmp_path / "perturbed")
            same = api.run(json.loads((tmp_path / "same.json").read_text())["run"]["id"])
            perturbed = api.run(json.loads((tmp_path / "perturbed.json").read_text())["run"]["id"])
            other = api.wait(probe(api, models["other"], models["tiny"])["id"])
            report = api.http.get(f"/api/v1/runs/{same['id']}/alignment", headers=api.headers["admin"]).json()
            positions = api.http.get(
                f"/api/v1/runs/{same['id']}/alignment/positions",
                params={"comparison": SAME, "text": "text-1"},
                headers=api.headers["admin"],
            ).json()
            artifact = api.http.get(f"/api/v1/runs/{same['id']}/files/alignment.json", headers=api.headers["admin"])
            failed = api.http.get(f"/api/v1/runs/{perturbed['id']}/alignment", headers=api.headers["admin"]).json()
        finally:
            stop(worker)

    assert passed.returncode == 0 and failing.returncode == 1, (passed.stderr, failing.stderr)
    assert SAME in passed.stdout and "1.000000" in passed.stdout  # the table: comparison, cosine, ...
    case = ElementTree.parse(tmp_path / "perturbed.xml").find("testsuite/testcase")
    assert case is not None and case.get("name") == SAME
    failure = case.find("failure")
    assert failure is not None and failure.get("message", "").startswith(f"{SAME}: the most likely token agrees at ")
    assert same["status"] == "succeeded" and same["verdict"] == "pass", same
    assert same["kind"] == "alignment" and same["attempts"] == 1 and same["files"] == ["alignment.json"]
    assert same["model_fingerprint"] and same["environment"]["device"]["kind"] == "cpu"
    assert report["outcome"] == "pass" and report["reasons"] == ["1 comparison(s) within the fixed thresholds."]
    overall = report["comparisons"][SAME]["overall"]
    assert overall["cosine_min"] == pytest.approx(1.0, abs=1e-12) and overall["ppl_rel_diff_max"] == 0.0
    assert report["comparisons"][SAME]["cosine_basis"] == "full-vocabulary logits"
    assert [side["role"] for side in report["sides"]] == ["candidate", "reference"]
    assert all(side["full_logits"] and side["seconds"] > 0 for side in report["sides"])
    text = next(p for p in report["probe"] if p["name"] == "text-1")
    assert "".join(positions["tokens"]) == "What is 2 plus 3?"  # every token decoded, by the reference's tokenizer
    assert len(positions["positions"]) == len(text["token_ids"]) - 1
    assert all(str(p["reference_top1"]) in report["tokens"] for p in positions["positions"])
    assert artifact.status_code == 200 and artifact.json()["outcome"] == "pass"

    assert perturbed["status"] == "succeeded" and perturbed["verdict"] == "fail", perturbed
    assert failed["reasons"][0].startswith(f"{SAME}: the most likely token agrees at "), failed["reasons"]
    assert perturbed["verdict_reason"] == " ".join(failed["reasons"])

    assert other["status"] == "succeeded" and other["verdict"] == "not_comparable", other
    assert other["verdict_reason"] == (
        f"not comparable: {models['other']} and {models['tiny']} use different tokenizers."
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; the store: API tests, both
def test_a_cancel_stops_the_side_that_is_running(database_url: str, tmp_path: Path, models: dict[str, str]) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(s.url, api.headers["worker"]["Authorization"].split()[1], tmp_path / "w1")
        try:
            run = probe(api, models["tiny"], models["tiny"], precisions=["float32", "bfloat16"])
            sides = wait_until(lambda: side_processes(psutil.Process(worker.pid)), timeout=120)
            cancelled = api.http.post(f"/api/v1/runs/{run['id']}/cancel", headers=api.headers["submit"])
            assert cancelled.status_code == 200, cancelled.text
            wait_until(lambda: not any(side.is_running() and side.status() != "zombie" for side in sides), 5)
            assert side_processes(psutil.Process(worker.pid)) == []  # and no later side started
            final = api.run(run["id"])
        finally:
            stop(worker)
    assert final["status"] == "cancelled" and final["verdict"] is None and final["files"] == []
