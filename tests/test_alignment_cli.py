"""`gate align`'s output on real executor reports (tests/fixtures/alignment): the table, one JUnit case per
comparison with the judge's sentence, the JSON file and the exit codes of gate.cli.gating."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import typer

from gate.checks.alignment import cli, judge

FIXTURES = Path(__file__).parent / "fixtures" / "alignment"
SERVER = "http://gate.example"
BF16_FP32 = "candidate bfloat16 vs reference float32"


def alignment(name: str) -> dict[str, Any]:
    """GET /api/v1/runs/{id}/alignment's shape, from a stored report (positions are not read by the CLI)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def finished_run(verdict: str | None, status: str = "succeeded") -> dict[str, Any]:
    return {
        "id": 12,
        "model": "tiny-qwen3",
        "backend": "hf",
        "status": status,
        "verdict": verdict,
        "verdicts": [],
        "failure_reason": "the candidate-bfloat16 side failed (exit 1)" if status == "failed" else None,
    }


def cases(xml: bytes) -> list[ElementTree.Element]:
    return ElementTree.fromstring(xml).findall("testsuite/testcase")


def test_the_table_has_a_row_per_comparison_and_the_noise_floor() -> None:
    report = alignment("three-way")
    lines = cli.table(finished_run("pass"), report, SERVER).splitlines()
    assert lines[0].startswith("run 12 tiny-qwen3 on hf: succeeded, verdict pass")
    assert lines[1].split() == ["comparison", "cosine", "top-1", "PPL", "diff", "KL"]
    row = next(line for line in lines if line.strip().startswith(BF16_FP32)).split()
    overall = report["comparisons"][BF16_FP32]["overall"]
    assert row[-6:] == [
        f"{overall['cosine_mean']:.6f}",
        f"{overall['top1_match_rate'] * 100:.1f}",
        "%",
        f"{overall['ppl_rel_diff_max'] * 100:.3f}",
        "%",
        f"{overall['kl_mean']:.3g}",
    ]
    assert any(line.strip().startswith("noise floor") for line in lines)
    assert lines[-1] == "  3 comparison(s) within the noise floor."


def test_a_failing_comparison_carries_the_judges_sentence() -> None:
    report = alignment("three-way")
    floor = report["noise_floor"]
    # half the noise floor: the BF16 candidate against the FP32 reference differs as much as the floor itself
    report["outcome"], report["reasons"] = judge.judge(report["comparisons"], floor, judge.Thresholds(noise_factor=0.5))
    assert report["outcome"] == "fail"
    found = {c.get("name"): c for c in cases(cli.junit(finished_run("fail"), report))}
    assert list(found) == list(report["comparisons"])
    failure = found[BF16_FP32].find("failure")
    assert failure is not None and failure.get("message") == next(
        r for r in report["reasons"] if r.startswith(BF16_FP32)
    )
    assert found["candidate float32 vs reference float32"].find("failure") is None


def test_passing_and_not_comparable_cases() -> None:
    passing = cases(cli.junit(finished_run("pass"), alignment("fp32")))
    assert [c.get("name") for c in passing] == ["candidate float32 vs reference float32"]
    assert "cosine 1.000000" in (passing[0].findtext("system-out") or "")
    report = alignment("fp32")
    report["outcome"], report["reasons"] = "not_comparable", ["not comparable: the two sides use different tokenizers."]
    skipped = cases(cli.junit(finished_run("not_comparable"), report))[0].find("skipped")
    assert skipped is not None and skipped.get("message") == report["reasons"][0]


def test_a_failed_run_is_one_erroring_case() -> None:
    error = cases(cli.junit(finished_run(None, "failed"), None))[0].find("error")
    assert error is not None and error.get("message") == "the candidate-bfloat16 side failed (exit 1)"


@pytest.mark.parametrize(("verdict", "code"), [("pass", 0), ("fail", 1), ("not_comparable", 2), (None, 2)])
def test_exit_codes_and_files(tmp_path: Path, verdict: str | None, code: int) -> None:
    run, report = finished_run(verdict), alignment("fp32")
    got = cli.gating.emit(
        run,
        cli.table(run, report, SERVER),
        cli.junit(run, report),
        tmp_path / "j.xml",
        tmp_path / "v.json",
        alignment=report,
    )
    assert got == code
    written = json.loads((tmp_path / "v.json").read_text())
    assert written["exit_code"] == code and written["alignment"]["outcome"] == report["outcome"]
    assert (tmp_path / "j.xml").read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>')


def test_probe_sets(tmp_path: Path) -> None:
    assert cli.probes("card") == {"set": "card"}
    assert cli.probes("gsm8k:5") == {"set": "gsm8k", "n": 5}
    texts = tmp_path / "texts.txt"
    texts.write_text("First text,\nover two lines.\n\n\nSecond text.\n")
    assert cli.probes(str(texts)) == {"set": "texts", "texts": ["First text,\nover two lines.", "Second text."]}
    assert cli.precisions("float32, bfloat16") == ["float32", "bfloat16"]
    for bad in ("gsm8k:many", str(tmp_path / "missing.txt")):
        with pytest.raises(typer.Exit) as exc:
            cli.probes(bad)
        assert exc.value.exit_code == 2
