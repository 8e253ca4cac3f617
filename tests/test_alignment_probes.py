"""Probe sets and spec checks: the card's texts, GSM8K questions, user texts, and one-sentence refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gate.checks.alignment import execute, probes

GSM8K_DIR = Path(os.environ.get("GATE_GSM8K_DIR", Path(__file__).resolve().parents[2] / "shared/data/gsm8k"))
ROOT = Path(__file__).resolve().parents[1]


def test_card_set_has_the_cards_prompts_and_six_texts() -> None:
    card = probes.card()
    assert [p.text for p in card if p.kind == "next_token"] == list(probes.NEXT_TOKEN_PROMPTS)
    texts = [p for p in card if p.kind == "text"]
    assert [p.name for p in texts][:2] == ["The capital of France is...", "Water is composed of two..."]
    assert all(2 <= p.text.count(". ") + 1 <= 3 for p in texts)


def test_gsm8k_set_reads_the_first_questions() -> None:
    first = json.loads((GSM8K_DIR / "test.jsonl").read_text().splitlines()[0])["question"]
    chosen = probes.select({"set": "gsm8k", "n": 3, "dir": str(GSM8K_DIR)})
    assert [p.name for p in chosen] == ["gsm8k-0", "gsm8k-1", "gsm8k-2"]
    assert chosen[0].text == first


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("one text", "probes.texts must be a non-empty list of strings."),
        (["ok"] * 65, "probes.texts holds 65 texts; at most 64 are allowed."),
        (["ok", "x" * 4001], "probes.texts[1] has 4001 characters; at most 4000 are allowed."),
        (["bell\x07"], "probes.texts[0] contains the control character '\\x07'."),
        (["  "], "probes.texts[0] must be a non-empty string."),
    ],
)
def test_bad_user_texts_are_refused_in_one_sentence(texts: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        probes.select({"set": "texts", "texts": texts})
    assert str(caught.value) == message


def test_user_texts_keep_newlines_and_tabs() -> None:
    assert probes.user_texts(["a\n\tb"])[0].text == "a\n\tb"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "the alignment spec must be an object."),
        ({"candidate": {"model": "m"}, "seed": 1}, "the alignment spec has unknown keys: seed."),
        ({}, 'candidate must be an object such as {"model": "/models/qwen3"}.'),
        (
            {"candidate": {"model": "m", "backend": "tgi"}},
            "candidate.backend must be one of hf, vllm, vllm-ascend, openai, not 'tgi'.",
        ),
        (
            {"candidate": {"model": "m"}, "reference": {"dtype": "int8"}},
            "reference.dtype must be one of float32, bfloat16, float16, not 'int8'.",
        ),
        ({"candidate": {"model": "m"}, "top_k": 5}, "top_k must be an integer from 20 to 1000, got 5."),
        (
            {"candidate": {"model": "tiny", "backend": "openai", "engine_args": {"base_url": "http://10.0.0.1"}}},
            "candidate.engine_args.base_url is not allowed: the openai backend uses the worker's server.",
        ),
        (
            {"candidate": {"model": "m"}, "precisions": ["bfloat16"]},
            'precisions must be ["float32", "bfloat16"] or ["float32", "float16"].',
        ),
        (
            {"candidate": {"model": "m"}, "probes": {"set": "mmlu"}},
            "probes.set must be card, gsm8k or texts, not 'mmlu'.",
        ),
        (
            {"candidate": {"model": "m"}, "probes": {"set": "gsm8k", "n": 0, "dir": "."}},
            "probes.n must be between 1 and 64, got 0.",
        ),
    ],
)
def test_bad_specs_are_refused_in_one_sentence(spec: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        execute.execute(spec, tmp_path)
    assert str(caught.value) == message


def test_side_process_refuses_a_bad_spec_with_one_line(tmp_path: Path) -> None:
    spec = {"backend": "hf", "model": "m", "dtype": "float32", "device": "cpu", "top_k": 10, "texts": []}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "gate.checks.alignment.sides", str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr == "error: top_k must be an integer of at least 20, got 10.\n"
    assert not (tmp_path / "out.json").exists()
