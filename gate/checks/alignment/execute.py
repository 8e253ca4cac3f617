"""The alignment probe on a worker: tokenize once, run each side in a fresh process, compare, judge, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gate.checks.alignment import judge, metrics, probes
from gate.checks.alignment.record import SideRecord
from gate.checks.alignment.spec import check
from gate.errors import GateError

SIDE_TIMEOUT_S = 3600.0  # one side's process, model load included
STDERR_TAIL = 2000  # characters of a failed side's stderr kept in the error
BAD_INPUT = 2  # the sides module's exit code for input it refuses (a user's error, not the machine's)


class SideFailed(GateError):
    """A side of the alignment probe failed."""

    def __init__(self, message: str, code: int | None = None, tail: str = "") -> None:
        super().__init__(message)
        self.exit_code, self.tail = code, tail  # the process's exit code (None: it never ended) and output's end


class Runner(Protocol):
    """Runs one `sides` command to its end, or raises SideFailed; `name` is a file-name-safe label for it."""

    def __call__(self, argv: list[str], env: dict[str, str], name: str, what: str) -> None: ...


def run_subprocess(argv: list[str], env: dict[str, str], name: str, what: str) -> None:
    """The plain runner: subprocess.run with a time limit (the worker passes one its agent supervises)."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SIDE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SideFailed(f"{what} ran past {SIDE_TIMEOUT_S:.0f} s.") from exc
    if done.returncode != 0:
        tail = done.stderr.strip()[-STDERR_TAIL:]
        raise SideFailed(f"{what} failed (exit {done.returncode}): {tail}", done.returncode, tail)


@dataclass(frozen=True)
class Sides:
    """How this machine starts side processes: the interpreter, its environment and the runner."""

    python: str = sys.executable
    env: Mapping[str, str] | None = None
    runner: Runner = run_subprocess

    def run(self, args: list[str], device: str, name: str, what: str) -> float:
        """`python -m gate.checks.alignment.sides ARGS` to its end; the seconds it took."""
        started = time.monotonic()
        argv = [self.python, "-m", "gate.checks.alignment.sides", *args]
        self.runner(argv, _environment(self.env, device), name, what)
        return time.monotonic() - started


def _environment(env: Mapping[str, str] | None, device: str) -> dict[str, str]:
    child = dict(os.environ if env is None else env)
    if device == "cpu":
        child.setdefault("OMP_NUM_THREADS", "1")  # torch's default threads on a small machine: 5-20x slower, erratic
    return child


def _tokenize(
    texts: list[probes.ProbeText], spec: dict[str, Any], work_dir: Path, sides: Sides
) -> tuple[str, list[dict[str, Any]], bool]:
    """Token ids by the reference's tokenizer, once for every side: (fingerprint, side inputs, same tokenizer?)."""
    candidate, reference = spec["candidate"]["model"], spec["reference"]["model"]
    (work_dir / "texts.json").write_text(json.dumps([t.text for t in texts]))
    others = [candidate] if candidate != reference else []
    args = ["--tokenize", reference, str(work_dir / "texts.json"), str(work_dir / "tokens.json"), *others]
    sides.run(args, "cpu", "tokenize", "tokenizing the probe")
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
    sides: Sides,
) -> tuple[metrics.Side, dict[str, Any]]:
    """One side in a fresh process: its record with its logits (memory-mapped), and its line in the report."""
    name = f"{role}-{dtype}"
    (work_dir / f"{name}.spec.json").write_text(json.dumps({**side, "dtype": dtype, "top_k": top_k, "texts": inputs}))
    out = work_dir / f"{name}.json"
    args = [str(work_dir / f"{name}.spec.json"), str(out)]
    seconds = sides.run(args, side["device"], name, f"the {name} side")
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


def _decode(
    reference: str, inputs: list[dict[str, Any]], records: list[SideRecord], work_dir: Path, sides: Sides
) -> dict[str, str]:
    """The text of every probe token and every side's top-1 prediction, by the reference's tokenizer."""
    ids = {token for text in inputs for token in text["token_ids"]}
    ids |= {int(p["top"][0][0]) for record in records for text in record["texts"] for p in text["positions"]}
    (work_dir / "ids.json").write_text(json.dumps(sorted(ids)))
    args = ["--decode", reference, str(work_dir / "ids.json"), str(work_dir / "decoded.json")]
    sides.run(args, "cpu", "decode", "decoding the probe's tokens")
    decoded: dict[str, str] = json.loads((work_dir / "decoded.json").read_text())
    return decoded


def execute(
    spec: Any,
    work_dir: Path,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    gsm8k_dir: Path | None = None,
    runner: Runner = run_subprocess,
    servers: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Run the probe spec in work_dir and return its JSON-able report (outcome and reasons included).

    servers: by role, the running server a side asks (base_url, served_model_name): the worker's own, added after
    the spec's check, which refuses an address from a run."""
    spec = check(spec)
    for role, server in (servers or {}).items():
        spec[role] = {**spec[role], "engine_args": {**spec[role]["engine_args"], **server}}
    sides = Sides(python, env, runner)
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
    report["tokenizer_fingerprint"], inputs, same_tokenizer = _tokenize(texts, spec, work_dir, sides)
    for entry, text in zip(report["probe"], inputs, strict=True):
        entry["token_ids"] = text["token_ids"]  # what every side was fed: the positions endpoint decodes them
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
    ran_sides = []
    for role, side, dtype in plan:
        ran, summary = _run_side(role, side, dtype, inputs, spec["top_k"], work_dir, sides)
        ran_sides.append(ran)
        report["sides"].append(summary)
    report["tokens"] = _decode(reference["model"], inputs, [record for record, _ in ran_sides], work_dir, sides)
    floor = None
    try:
        if dtypes is None:
            name = f"candidate {candidate['dtype']} vs reference {reference['dtype']}"
            report["comparisons"] = {name: metrics.compare_sides(*ran_sides)}
        else:
            report["comparisons"], floor = metrics.three_way(*ran_sides)
            report["noise_floor"] = floor
            table = {**report["comparisons"], judge.NOISE_FLOOR: floor}
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
