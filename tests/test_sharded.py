"""The sharded driver for real: lm-eval's own requests in a random order, against the gold loopback server.

A healthy port (927/1319 right) is never stopped and scores exactly what the full `lm_eval` CLI run gives, with
every document's prompt_hash equal to the full run's; a broken port (0 right) stops early and fails."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gate.baselines.files import Reference
from gate.checks.accuracy import judge
from gate.checks.accuracy.results import parse_results, parse_samples
from gate.verdicts.outcome import Outcome
from tests.conftest import GSM8K_DIR
from tests.lmeval_runs import OFFLINE_ENV, gold_server, outputs

pytestmark = pytest.mark.lmeval
METRIC = "exact_match,strict-match"
GSM8K = Reference(benchmark="GSM8K", task="gsm8k", metric=METRIC, num_fewshot=5, score=0.703, n_samples=1319)


def sharded_run(
    url: str, model: str, tiny_model: Path, overrides: Path, out: Path, early_stop: dict | None = None
) -> dict[str, Any]:
    job = {
        "model": "local-completions",
        "model_args": f"model={model},base_url={url},tokenizer={tiny_model},tokenizer_backend=huggingface,"
        "num_concurrent=8,max_retries=1,tokenized_requests=False",
        "tasks": ["gsm8k"],
        "num_fewshot": 5,
        "include_path": str(overrides),
        "rules": {
            "metric": METRIC,
            "baseline": 0.703,
            "tolerance_pp": 2.0,
            "two_sided": True,
            "early_stop": early_stop,
        },
    }
    job_path = out / "job.json"
    out.mkdir(parents=True, exist_ok=True)
    job_path.write_text(json.dumps(job))
    proc = subprocess.run(
        [sys.executable, "-m", "gate.checks.accuracy.sharded", str(job_path), str(out / "lm-eval")],
        env={**os.environ, **OFFLINE_ENV},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results, samples = outputs(out / "lm-eval")
    return {"results": results, "samples": samples, "stdout": proc.stdout}


def by_doc(samples: list[Path]) -> dict[int, dict[str, Any]]:
    lines = [json.loads(line) for path in samples for line in path.read_text().split("\n") if line]
    return {s["doc_id"]: s for s in lines if s["filter"] == "strict-match"}


def test_a_healthy_port_is_never_stopped_and_its_sharded_run_is_the_full_run(
    tiny_model: Path, gsm8k_overrides: Path, gold_run_927, tmp_path: Path
) -> None:
    """Both rules on (the confidence sequence too): a healthy port is answered to the end."""
    with gold_server(GSM8K_DIR, 927) as server:
        run = sharded_run(server.url, "gold", tiny_model, gsm8k_overrides, tmp_path, {"alpha": 0.05})
    full_results, full_samples = gold_run_927
    full, sharded = json.loads(full_results.read_text()), json.loads(run["results"].read_text())
    assert "stopped" not in sharded and sharded["sharded"]["answered"] == 1319
    assert sharded["results"]["gsm8k"][METRIC] == full["results"]["gsm8k"][METRIC] == 927 / 1319
    assert sharded["results"]["gsm8k"]["exact_match_stderr,strict-match"] == pytest.approx(
        full["results"]["gsm8k"]["exact_match_stderr,strict-match"], rel=1e-12
    )
    assert sharded["n-samples"] == full["n-samples"] == {"gsm8k": {"original": 1319, "effective": 1319}}
    assert sharded["config"]["model"] == "local-completions" and sharded["n-shot"] == full["n-shot"]
    ours, theirs = by_doc(run["samples"]), by_doc(full_samples)
    assert ours.keys() == theirs.keys() == set(range(1319))
    for key in ("prompt_hash", "doc_hash", "target_hash", "exact_match"):
        assert [ours[d][key] for d in range(1319)] == [theirs[d][key] for d in range(1319)], key
    assert sharded["task_hashes"] == full["task_hashes"]
    # answered in a random order, not the document order: the progress lines count up by shards
    assert "| 8/1319" in run["stdout"] and "| 1319/1319" in run["stdout"]
    # the running estimate: one point per shard, its band narrowing to the final score, never leaving the gate
    trail = sharded["sharded"]["trail"]
    points = trail["points"]
    # shards of 8, 16, 32, then 40 each
    assert trail["total"] == 1319 and [p[0] for p in points] == [8, 24, 56, *range(96, 1319, 40), 1319]
    assert points[-1] == [1319, 927, round(927 / 1319, 6), round(927 / 1319, 6)]
    widths = [high - low for _, _, low, high in points]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(widths)) and widths[0] > 0.3
    assert all(low <= 0.723 and high >= 0.683 for _, _, low, high in points[:-1])
    assert all(low - 1e-6 <= 927 / 1319 <= high + 1e-6 for _, _, low, high in points)  # it holds the final score
    assert f"gate: estimate {json.dumps({'total': 1319, 'point': points[0]})}" in run["stdout"]


@pytest.mark.parametrize(
    ("early_stop", "rule", "most"), [(None, "certainty", 456), ({"alpha": 0.05}, "confidence_sequence", 8)]
)
def test_a_broken_port_stops_early_and_fails(
    tiny_model: Path, gsm8k_overrides: Path, tmp_path: Path, early_stop: dict | None, rule: str, most: int
) -> None:
    with gold_server(GSM8K_DIR, 927) as server:
        run = sharded_run(server.url, "gold-0", tiny_model, gsm8k_overrides, tmp_path, early_stop)
    raw = json.loads(run["results"].read_text())
    stopped = raw["stopped"]
    assert stopped["rule"] == rule and stopped["of"] == 1319 and stopped["at"] == most
    assert stopped["bound"][1] < 0.683
    assert raw["n-samples"]["gsm8k"] == {"original": 1319, "effective": stopped["at"]}
    # the running estimate ends where the run stopped, with the band that decided it, wholly below the gate
    points = raw["sharded"]["trail"]["points"]
    assert points[-1][:2] == [stopped["at"], 0] and points[-1][3] == round(stopped["bound"][1], 6) < 0.683
    assert all(high >= 0.683 for _, _, _, high in points[:-1])  # it stopped at the first shard it could
    assert parse_results(run["results"].read_bytes()).trail == raw["sharded"]["trail"]
    answered = by_doc(run["samples"])
    assert len(answered) == stopped["at"] and not any(s["exact_match"] for s in answered.values())
    parsed = parse_results(run["results"].read_bytes())
    outcomes = parse_samples(run["samples"][0].read_bytes(), "gsm8k", parsed)
    assert len({o.doc_id for o in outcomes}) == stopped["at"]
    score = next(s for s in parsed.scores if s.task == "gsm8k" and s.metric == METRIC)
    candidate = judge.Candidate("gsm8k", METRIC, score.value, score.stderr, score.n_samples, parsed.profiles["gsm8k"])
    verdict = judge.judge(candidate, GSM8K)
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reasons[0].startswith(f"fail (stopped at {stopped['at']} of 1319")
