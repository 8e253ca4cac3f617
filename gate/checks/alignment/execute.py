"""The alignment probe on a worker: tokenize once, run each side in a fresh process, compare, judge, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gate.checks.alignment import judge, metrics, probes
from gate.checks.alignment.record import SideRecord
from gate.checks.alignment.sides import BACKENDS, DTYPES, MIN_TOP_K
from gate.errors import GateError

MAX_TOP_K = 1000  # top lists travel as JSON: k entries per position
SIDE_TIMEOUT_S = 3600.0  # one side's process, model load included
STDERR_TAIL = 2000  # characters of a failed side's stderr kept in the error


class SideFailed(GateError):
    """A side of the alignment probe failed."""


def _side(raw: Any, role: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f'{role} must be an object such as {{"model": "/models/qwen3"}}.')
    side = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
    unknown = sorted(side.keys() - {"model", "backend", "dtype", "device", "engine_args"})
    if unknown:
        raise ValueError(f"{role} has unknown keys: {', '.join(unknown)}.")
    if not isinstance(side.get("model"), str) or not side["model"]:
        raise ValueError(f"{role}.model must name a model.")
    if side["backend"] not in BACKENDS:
        raise ValueError(f"{role}.backend must be one of {', '.join(BACKENDS)}, not {side['backend']!r}.")
    if side["dtype"] not in DTYPES:
        raise ValueError(f"{role}.dtype must be one of {', '.join(DTYPES)}, not {side['dtype']!r}.")
    if not isinstance(side["engine_args"], dict):
        raise ValueError(f"{role}.engine_args must be an object.")
    return side


def check(spec: Any) -> dict[str, Any]:
    """The probe spec with its defaults filled in, or a one-sentence ValueError."""
    if not isinstance(spec, dict):
        raise ValueError("the alignment spec must be an object.")
    unknown = sorted(spec.keys() - {"candidate", "reference", "precisions", "probes", "top_k"})
    if unknown:
        raise ValueError(f"the alignment spec has unknown keys: {', '.join(unknown)}.")
    candidate = _side(
        spec.get("candidate"), "candidate", {"backend": "hf", "dtype": "float32", "device": "cpu", "engine_args": {}}
    )
    reference_defaults = {"model": candidate["model"], "backend": "hf", "dtype": "float32", "device": "cpu"}
    reference = _side(spec.get("reference", {}), "reference", {**reference_defaults, "engine_args": {}})
    precisions = spec.get("precisions")
    if precisions is not None and (
        not isinstance(precisions, list)
        or len(precisions) != 2
        or "float32" not in precisions
        or len(set(precisions)) != 2
        or not set(precisions) <= set(DTYPES)
    ):
        raise ValueError('precisions must be ["float32", "bfloat16"] or ["float32", "float16"].')
    top_k = spec.get("top_k", MIN_TOP_K)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not MIN_TOP_K <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be an integer from {MIN_TOP_K} to {MAX_TOP_K}, got {top_k!r}.")
    return {
        "candidate": candidate,
        "reference": reference,
        "precisions": precisions,
        "probes": spec.get("probes") or {"set": "card"},
        "top_k": top_k,
    }


def _subprocess(python: str, args: list[str], env: Mapping[str, str], what: str) -> float:
    """Run `python -m gate.checks.alignment.sides ARGS`; seconds taken, or SideFailed with the stderr's end."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [python, "-m", "gate.checks.alignment.sides", *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=SIDE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise SideFailed(f"{what} ran past {SIDE_TIMEOUT_S:.0f} s.") from exc
    if done.returncode != 0:
        raise SideFailed(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-STDERR_TAIL:]}")
    return time.monotonic() - started


def _environment(env: Mapping[str, str] | None, device: str) -> dict[str, str]:
    child = dict(os.environ if env is None else env)
    if device == "cpu":
        child.setdefault("OMP_NUM_THREADS", "1")  # torch's default threads on a small machine: 5-20x slower, erratic
    return child


def _tokenize(
    texts: list[probes.ProbeText], spec: dict[str, Any], work_dir: Path, python: str, env: Mapping[str, str] | None
) -> tuple[str, list[dict[str, Any]], bool]:
    """Token ids by the reference's tokenizer, once for every side: (fingerprint, side inputs, same tokenizer?)."""
    candidate, reference = spec["candidate"]["model"], spec["reference"]["model"]
    (work_dir / "texts.json").write_text(json.dumps([t.text for t in texts]))
    others = [candidate] if candidate != reference else []
    args = ["--tokenize", reference, str(work_dir / "texts.json"), str(work_dir / "tokens.json"), *others]
    _subprocess(python, args, _environment(env, "cpu"), "tokenizing the probe")
    tokenized = json.loads((work_dir / "tokens.json").read_text())
    fingerprint = tokenized["tokenizer_fingerprint"]
    inputs = []
    for text, ids in zip(texts, tokenized["token_ids"], strict=True):
        if len(ids) < (1 if text.kind == "next_token" else 2):
            raise ValueError(f"the probe text {text.name!r} is {len(ids)} token(s) long, too short to predict.")
        inputs.append({"name": text.name, "kind": text.kind, "token_ids": ids})
    return fingerprint, inputs, all(fp == fingerprint for fp in tokenized["fingerprints"].values())


def _run_side(
    role: str,
    side: dict[str, Any],
    dtype: str,
    inputs: list[dict[str, Any]],
    top_k: int,
    work_dir: Path,
    python: str,
    env: Mapping[str, str] | None,
) -> tuple[metrics.Side, dict[str, Any]]:
    """One side in a fresh process: its record with its logits (memory-mapped), and its line in the report."""
    name = f"{role}-{dtype}"
    (work_dir / f"{name}.spec.json").write_text(json.dumps({**side, "dtype": dtype, "top_k": top_k, "texts": inputs}))
    out = work_dir / f"{name}.json"
    args = [str(work_dir / f"{name}.spec.json"), str(out)]
    seconds = _subprocess(python, args, _environment(env, side["device"]), f"the {name} side")
    record: SideRecord = json.loads(out.read_text())
    summary = {
        "role": role,
        **{key: record[key] for key in ("backend", "model", "dtype", "device", "top_k", "full_logits")},
        "positions": sum(len(t["positions"]) for t in record["texts"]),
        "seconds": round(seconds, 3),
        "record": str(out),
    }
    logits = record.get("logits_file")
    return (record, np.load(logits, mmap_mode="r") if logits else None), summary


def execute(
    spec: Any,
    work_dir: Path,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    gsm8k_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the probe spec in work_dir and return its JSON-able report (outcome and reasons included)."""
    spec = check(spec)
    texts = probes.select(spec["probes"], gsm8k_dir)
    candidate, reference, precisions = spec["candidate"], spec["reference"], spec["precisions"]
    report: dict[str, Any] = {
        "spec": spec,
        "probe": [{"name": t.name, "kind": t.kind, "text": t.text} for t in texts],
        "sides": [],
        "comparisons": {},
    }
    if precisions is None and candidate["dtype"] != reference["dtype"]:
        reason = judge.precision_mismatch("the probe", candidate["dtype"], reference["dtype"])
        return {**report, "outcome": judge.NOT_COMPARABLE, "reasons": [reason]}
    work_dir.mkdir(parents=True, exist_ok=True)
    report["tokenizer_fingerprint"], inputs, same_tokenizer = _tokenize(texts, spec, work_dir, python, env)
    if not same_tokenizer:
        reason = f"not comparable: {candidate['model']} and {reference['model']} use different tokenizers."
        return {**report, "outcome": judge.NOT_COMPARABLE, "reasons": [reason]}

    # precisions run four sides (candidate and reference, each in float32 and the low precision), else two
    dtypes = ("float32", next(p for p in precisions if p != "float32")) if precisions else None
    plan = [
        (role, side, dtype)
        for role, side in (("candidate", candidate), ("reference", reference))
        for dtype in (dtypes or (side["dtype"],))
    ]
    sides = []
    for role, side, dtype in plan:
        ran, summary = _run_side(role, side, dtype, inputs, spec["top_k"], work_dir, python, env)
        sides.append(ran)
        report["sides"].append(summary)
    floor = None
    try:
        if dtypes is None:
            name = f"candidate {candidate['dtype']} vs reference {reference['dtype']}"
            report["comparisons"] = {name: metrics.compare_sides(*sides)}
        else:
            report["comparisons"], floor = metrics.three_way(*sides)
            report["noise_floor"] = floor
            table = {**report["comparisons"], "noise floor": floor}
            report["three_way"] = {name: _row(comparison) for name, comparison in table.items()}
    except metrics.NotComparable as exc:  # a side's own tokenizer or inputs differed from what it was given
        return {**report, "outcome": judge.NOT_COMPARABLE, "reasons": [str(exc)]}
    report["outcome"], report["reasons"] = judge.judge(report["comparisons"], floor)
    return report


def _row(comparison: metrics.Comparison) -> dict[str, Any]:
    """One line of the card's three-way table."""
    overall = comparison["overall"]
    keys = ("cosine_mean", "top1_match_rate", "top5_overlap_mean", "ppl_rel_diff_mean", "ppl_rel_diff_max", "kl_mean")
    return {key: overall[key] for key in keys}
