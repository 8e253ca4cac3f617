"""The alignment probe end to end on the tiny Qwen3 with real hf sides in their own processes (CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.checks.alignment import execute, judge
from tests import alignment_models

SHORT = {"set": "texts", "texts": ["Natalia sold clips to 48 of her friends in April.", "What is 2 plus 3?"]}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return alignment_models.build(tmp_path_factory.mktemp("alignment-models"))


@pytest.fixture(scope="module")
def floor_report(models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """hf against hf in both precisions: the card's three-way table and the noise floor."""
    spec = {"candidate": {"model": models["tiny"]}, "precisions": ["float32", "bfloat16"]}
    return execute.execute(spec, tmp_path_factory.mktemp("floor"))


def test_fp32_against_fp32_is_identical_and_passes_the_fixed_thresholds(floor_report: dict[str, Any]) -> None:
    name = "candidate float32 vs reference float32"
    comparison = floor_report["comparisons"][name]
    assert comparison["cosine_basis"] == "full-vocabulary logits"
    overall = comparison["overall"]
    assert overall["cosine_min"] == pytest.approx(1.0, abs=1e-12)
    assert overall["ppl_rel_diff_max"] == 0.0
    assert overall["kl_mean"] == pytest.approx(0.0, abs=1e-12)
    assert overall["top1_match_rate"] == 1.0
    assert overall["texts"] == 10 and overall["positions"] > 60
    predictions = [t["prediction"] for t in comparison["texts"] if t["kind"] == "next_token"]
    assert len(predictions) == 4 and all(p["match"] for p in predictions)
    assert judge.judge({name: comparison}) == ("pass", ["1 comparison(s) within the fixed thresholds."])


def test_bf16_differs_a_little_and_passes_the_noise_floor(floor_report: dict[str, Any]) -> None:
    assert floor_report["outcome"] == "pass", floor_report["reasons"]
    json.dumps(floor_report, allow_nan=False)  # the report travels as JSON as it is
    assert floor_report["reasons"] == ["3 comparison(s) within the noise floor."]
    floor = floor_report["noise_floor"]["overall"]
    assert 0 < floor["kl_mean"] < 0.01
    assert 0 < floor["ppl_rel_diff_max"] < 0.05
    assert 0.99 < floor["cosine_mean"] < 1.0
    assert list(floor_report["three_way"]) == [
        "candidate float32 vs reference float32",
        "candidate bfloat16 vs reference float32",
        "candidate bfloat16 vs reference bfloat16",
        "noise floor",
    ]
    same = floor_report["three_way"]["candidate bfloat16 vs reference bfloat16"]
    assert same["ppl_rel_diff_max"] == 0.0  # one machine, one precision: bit-identical
    assert (
        floor_report["three_way"]["candidate bfloat16 vs reference float32"] == floor_report["three_way"]["noise floor"]
    )


def test_a_perturbed_layer_fails_the_gate(models: dict[str, str], tmp_path: Path) -> None:
    spec = {"candidate": {"model": models["perturbed"]}, "reference": {"model": models["tiny"]}, "probes": SHORT}
    report = execute.execute(spec, tmp_path)
    assert report["outcome"] == "fail"
    assert report["reasons"][0].startswith(
        "candidate float32 vs reference float32: the most likely token agrees at "
    ), report["reasons"]
    assert [side["role"] for side in report["sides"]] == ["candidate", "reference"]


def test_another_tokenizer_is_not_comparable(models: dict[str, str], tmp_path: Path) -> None:
    spec = {"candidate": {"model": models["other"]}, "reference": {"model": models["tiny"]}, "probes": SHORT}
    report = execute.execute(spec, tmp_path)
    assert report["outcome"] == "not_comparable"
    assert report["reasons"] == [f"not comparable: {models['other']} and {models['tiny']} use different tokenizers."]
    assert report["sides"] == []


def test_cross_precision_without_a_floor_runs_nothing(models: dict[str, str], tmp_path: Path) -> None:
    report = execute.execute({"candidate": {"model": models["tiny"], "dtype": "bfloat16"}}, tmp_path)
    assert report["outcome"] == "not_comparable"
    assert "differ in precision and no noise floor was measured" in report["reasons"][0]
    assert not list(tmp_path.iterdir())


def test_a_missing_model_fails_the_run_with_the_sides_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(execute.SideFailed) as caught:
        execute.execute({"candidate": {"model": str(missing)}, "probes": SHORT}, tmp_path / "work")
    assert str(caught.value) == f"tokenizing the probe failed (exit 2): error: no model folder at {missing}."


def test_a_side_asks_the_workers_own_server_named_after_the_check(models: dict[str, str], tmp_path: Path) -> None:
    """A run may not name an address; the worker adds its own server (warm engine, --openai-base-url) after the
    spec's check, and the side asks it (here nothing listens: the side's sentence names the address)."""
    spec = {"candidate": {"model": models["tiny"], "backend": "openai"}, "probes": SHORT}
    with pytest.raises(ValueError, match=r"candidate\.engine_args\.base_url is not allowed"):
        execute.execute({**spec, "candidate": {**spec["candidate"], "engine_args": {"base_url": "http://x"}}}, tmp_path)
    server = {"candidate": {"base_url": "http://127.0.0.1:9/v1", "served_model_name": "tiny"}}  # discard: refused
    with pytest.raises(execute.SideFailed, match=r"the vLLM server at http://127\.0\.0\.1:9/v1 did not answer"):
        execute.execute(spec, tmp_path / "work", servers=server)
