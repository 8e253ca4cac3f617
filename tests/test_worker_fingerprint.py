"""New weights at the same path are evaluated afresh: real `gate serve`, `gate worker` and lm-eval processes.

CI evaluates each build at one path. The worker's response cache is keyed on the model's content, so the next
build's run is never answered from the previous build's cache, and each run shows the fingerprint it evaluated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from gate.cli.gating import junit
from gate.worker.tiny_model import build
from tests.conftest import GSM8K_DIR
from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import smoke_run, stop

pytestmark = pytest.mark.lmeval


def responses(api: Api, run_id: int) -> dict[tuple[int, str], list]:
    """The raw model responses of a run, per document and filter, from the samples file the worker uploaded."""
    raw = api.http.get(f"/api/v1/runs/{run_id}/files/samples_gsm8k.jsonl", headers=api.headers["admin"])
    assert raw.status_code == 200, raw.text
    lines = [json.loads(line) for line in raw.text.splitlines() if line.strip()]
    return {(line["doc_id"], line["filter"]): line["resps"] for line in lines}


def overwrite_in_place(build_dir: Path, target: Path) -> None:
    """Write a new build over the old one as `cp` does: same paths, same inodes, and the old mtimes put back,
    so only the content (and the ctime no user can set) tells the builds apart."""
    for source in build_dir.iterdir():
        destination = target / source.name
        old = os.stat(destination)
        shutil.copyfile(source, destination)
        os.utime(destination, ns=(old.st_atime_ns, old.st_mtime_ns))
        assert os.stat(destination).st_ino == old.st_ino


def test_new_weights_at_the_same_path_are_evaluated_afresh(tmp_path: Path) -> None:
    """On SQLite only: the store's side is tested on both databases in test_fingerprint_api."""
    port = build(tmp_path / "port", GSM8K_DIR, seed=1)  # build A, at the path CI always uses
    build_b = build(tmp_path / "build-b", GSM8K_DIR, seed=2)  # build B, elsewhere for now
    assert {p.name for p in port.iterdir()} == {p.name for p in build_b.iterdir()}
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        # "ci" evaluates every build at the one path with one cache; "fresh" evaluates B on its own, with no cache
        renew = ("--heartbeat-s", "5")  # the test lease is 30 s; two evaluations at once on 2 cores can take longer
        ci = worker_process(s.url, token, tmp_path / "w-ci", name="ci", labels=("ci",), extra=renew)
        fresh = worker_process(s.url, token, tmp_path / "w-fresh", name="fresh", labels=("fresh",), extra=renew)
        try:
            reference = api.submit(**smoke_run(build_b, labels=["fresh"]))
            run_a = api.wait(api.submit(**smoke_run(port, labels=["ci"]))["id"])
            overwrite_in_place(build_b, port)
            run_b = api.wait(api.submit(**smoke_run(port, labels=["ci"]))["id"])
            run_b_again = api.wait(api.submit(**smoke_run(port, labels=["ci"]))["id"])
            reference_b = api.wait(reference["id"])
            answers = {r["id"]: responses(api, r["id"]) for r in (run_a, run_b, run_b_again, reference_b)}
        finally:
            stop(ci, fresh)
    assert [r["status"] for r in (run_a, run_b, run_b_again, reference_b)] == ["succeeded"] * 4
    assert [r["attempts"] for r in (run_a, run_b, run_b_again, reference_b)] == [1] * 4

    # run B was evaluated afresh: nothing came from A's cache, and it answered as B does anywhere
    assert "Cached requests: 0, Requests remaining: 4" in run_b["log_tail"]
    assert answers[run_b["id"]] == answers[reference_b["id"]]
    assert answers[run_b["id"]] != answers[run_a["id"]]
    assert len(answers[run_b["id"]]) == 8  # 4 documents under 2 filters
    # the same content keeps its cache: B once more is answered from it, with the same answers
    assert "Cached requests: 4, Requests remaining: 0" in run_b_again["log_tail"]
    assert answers[run_b_again["id"]] == answers[run_b["id"]]

    fingerprints = [r["model_fingerprint"] for r in (run_a, run_b, run_b_again, reference_b)]
    assert all(len(fp) == 64 and int(fp, 16) >= 0 for fp in fingerprints)
    assert fingerprints[0] != fingerprints[1] == fingerprints[2] == fingerprints[3]
    property_ = ElementTree.fromstring(junit(run_b)).find("testsuite/properties/property")
    assert (property_.get("name"), property_.get("value")) == ("model_fingerprint", fingerprints[1])
