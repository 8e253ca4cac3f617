"""What the run page shows for a serving run: the model card's table per concurrency level, the server's figures,
the sweep's throughput-latency curve, and the verdict with the reference's figures.

`run_context` turns stored reports into plain rows; the template (templates/checks/serving/run.html) only formats
them. `section` is the dashboard's entry (gate.checks.part).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.checks.serving import curve, models, spec
from gate.runs.models import Run, RunStatus


@dataclass(frozen=True)
class Row:
    """One concurrency level: each figure the mean over the level's rounds."""

    concurrency: int
    input_len: float  # tokens per request
    output_len: float
    output_throughput: float  # tok/s, all requests together
    throughput_low: float  # the rounds' spread
    throughput_high: float
    decode_rate: float  # tok/s of one request: output tokens / its end-to-end latency (the card's 234.59)
    request_throughput: float  # req/s
    latency_s: float  # mean end-to-end latency of a request
    e2el_p90_ms: float
    e2el_p99_ms: float
    tpot_ms: float
    tpot_p90_ms: float
    tpot_p99_ms: float
    ttft_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    itl_ms: float
    itl_p90_ms: float
    itl_p99_ms: float
    failed: int  # requests, over all rounds
    rounds: int
    reference_throughput: float | None  # the reference's mean at this level, when it measured it
    reference_tpot_ms: float | None


def _mean(rounds: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in rounds)


def _length(rounds: list[dict[str, Any]], key: str, profile: int) -> float:
    """Tokens per completed request, as the benchmark counted them (total_*_tokens), else the profile's."""
    done = sum(r["completed"] for r in rounds)
    totals = [r.get(key) for r in rounds]
    if done and all(isinstance(t, (int, float)) for t in totals):
        return sum(totals) / done  # type: ignore[arg-type]  # checked just above
    return float(profile)


def rows(report: dict[str, Any], reference: dict[str, Any] | None) -> list[Row]:
    theirs = {level["concurrency"]: level["rounds"] for level in (reference or {}).get("levels", [])}
    found = []
    for level in report["levels"]:
        r = level["rounds"]
        ref = theirs.get(level["concurrency"])
        throughputs = [x["output_throughput"] for x in r]
        found.append(
            Row(
                concurrency=level["concurrency"],
                input_len=_length(r, "total_input_tokens", spec.INPUT_LEN),
                output_len=_length(r, "total_output_tokens", spec.OUTPUT_LEN),
                output_throughput=statistics.fmean(throughputs),
                throughput_low=min(throughputs),
                throughput_high=max(throughputs),
                decode_rate=_mean(r, "per_request_decode_tok_s"),
                request_throughput=_mean(r, "request_throughput"),
                latency_s=_mean(r, "mean_e2el_ms") / 1000,
                e2el_p90_ms=_mean(r, "p90_e2el_ms"),
                e2el_p99_ms=_mean(r, "p99_e2el_ms"),
                tpot_ms=_mean(r, "mean_tpot_ms"),
                tpot_p90_ms=_mean(r, "p90_tpot_ms"),
                tpot_p99_ms=_mean(r, "p99_tpot_ms"),
                ttft_ms=_mean(r, "mean_ttft_ms"),
                ttft_p90_ms=_mean(r, "p90_ttft_ms"),
                ttft_p99_ms=_mean(r, "p99_ttft_ms"),
                itl_ms=_mean(r, "mean_itl_ms"),
                itl_p90_ms=_mean(r, "p90_itl_ms"),
                itl_p99_ms=_mean(r, "p99_itl_ms"),
                failed=sum(x["failed"] for x in r),
                rounds=len(r),
                reference_throughput=_mean(ref, "output_throughput") if ref else None,
                reference_tpot_ms=_mean(ref, "mean_tpot_ms") if ref else None,
            )
        )
    return found


def _points(report: dict[str, Any]) -> list[tuple[int, float, float]]:
    return [
        (
            level["concurrency"],
            _mean(level["rounds"], "output_throughput"),
            _mean(level["rounds"], "mean_e2el_ms") / 1000,
        )
        for level in report["levels"]
    ]


def run_context(
    report: dict[str, Any], judged: dict[str, Any], reference: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The serving section of a run page. judged: outcome, reasons, reference_run_id, thresholds as stored."""
    levels = rows(report, reference)
    swept = len(levels) > 1
    return {
        **judged,
        "spec": report["spec"],
        "vllm_version": report["vllm_version"],
        "device_kind": report["device_kind"],
        "engine_args": report["engine_args"],
        "server": report["server"],
        "rows": levels,
        "reference_server": (reference or {}).get("server"),
        # a curve needs two levels; the reference's is drawn beside it when it measured the same profile
        "curve": curve.geometry(_points(report), _points(reference) if reference else []) if swept else None,
    }


def section(session: Session, run: Run, text: str | None, comparison: str | None) -> dict[str, Any] | None:
    """The dashboard's entry: the section's context, or None while the run has no report."""
    row = session.get(models.ServingReport, run.id)
    if row is None:
        return None
    ref = session.get(models.ServingReport, row.reference_run_id) if row.reference_run_id is not None else None
    judged = {
        "outcome": row.outcome,
        "reasons": row.reasons,
        "reference_run_id": row.reference_run_id,
        "thresholds": row.thresholds,
    }
    return run_context(row.report, judged, ref.report if ref is not None else None)


HISTORY_RUNS = 200  # the model page's most recent serving runs


@dataclass(frozen=True)
class HistoryRow:
    run: Run
    concurrency: int
    output_throughput: float  # mean over the rounds, tokens/s, all requests together
    per_request_decode_tok_s: float
    mean_tpot_ms: float


def model_section(session: Session, model: str) -> dict[str, Any] | None:
    """The model page's serving history: per device kind, each run's figures at each level, newest first."""
    found = session.execute(
        select(Run, models.ServingReport)
        .join(models.ServingReport, models.ServingReport.run_id == Run.id)
        .where(Run.model == model, Run.status == RunStatus.SUCCEEDED)
        .order_by(Run.id.desc())
        .limit(HISTORY_RUNS)
    ).all()
    by_device: dict[str, list[HistoryRow]] = {}
    for run, row in found:
        for level in row.report["levels"]:
            rounds = level["rounds"]
            by_device.setdefault(row.report["device_kind"], []).append(
                HistoryRow(
                    run=run,
                    concurrency=level["concurrency"],
                    output_throughput=_mean(rounds, "output_throughput"),
                    per_request_decode_tok_s=_mean(rounds, "per_request_decode_tok_s"),
                    mean_tpot_ms=_mean(rounds, "mean_tpot_ms"),
                )
            )
    return {"by_device": by_device} if by_device else None
