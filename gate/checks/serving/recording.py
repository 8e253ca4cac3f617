"""Recording a serving report: judged here on the server against its reference run, stored with the run's ending
in one transaction."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy.orm import Session

from gate.baselines.models import Baseline
from gate.checks.serving import judge, report
from gate.checks.serving.models import ServingReport
from gate.errors import InvalidInput
from gate.runs import service as runs
from gate.runs.models import Run, RunStatus, Score

KIND = "serving"
ARTIFACT = "serving.json"
# The headline figures kept as the run's scores (task "c=<concurrency>", the mean over rounds, stderr their
# standard error): the export, the run's detail and the model history read them without knowing the kind.
SCORED = (
    "output_throughput",
    "request_throughput",
    "total_token_throughput",
    "per_request_decode_tok_s",
    "mean_ttft_ms",
    "mean_tpot_ms",
    "mean_itl_ms",
    "mean_e2el_ms",
    "p99_ttft_ms",
    "p99_tpot_ms",
)


def thresholds(baseline: Baseline | None) -> judge.Thresholds:
    """The baseline's serving settings (its `checks.serving`), or the defaults with no reference run."""
    settings = (baseline.checks or {}).get(KIND) if baseline is not None else None
    try:
        return judge.Thresholds.from_mapping(settings)
    except ValueError as exc:
        assert baseline is not None  # the defaults are valid
        raise InvalidInput(f"baseline {baseline.name!r}: {exc}", field="baseline") from None


def reference_run(options: dict[str, Any], limits: judge.Thresholds) -> int | None:
    """The run judged against: the spec's own reference_run, else the baseline's."""
    named = options.get("reference_run")
    return int(named) if named is not None else limits.reference_run


def promoted(run: Run) -> dict[str, Any]:
    """What a baseline promoted from this run keeps: the run as the reference of later benchmarks."""
    return {"reference_run": run.id}


def reference(session: Session, run_id: int) -> ServingReport:
    """A reference: a succeeded serving run with a stored report, or InvalidInput saying what it is instead."""
    run = session.get(Run, run_id)
    if run is None:
        raise InvalidInput(f"reference run {run_id} does not exist", field="reference_run")
    found = session.get(ServingReport, run_id)
    if run.kind != KIND or run.status != RunStatus.SUCCEEDED or found is None:
        raise InvalidInput(
            f"reference run {run_id} is a {run.kind} run, {run.status}: a reference is a succeeded serving run",
            field="reference_run",
        )
    return found


def verdict(
    session: Session, checked: dict[str, Any], ref_id: int | None, limits: judge.Thresholds
) -> tuple[str | None, list[str]]:
    """The server's verdict; a reference gone since submission makes the run not comparable, saying so."""
    if ref_id is None:
        return judge.judge(checked, None, None, limits)
    try:
        ref = reference(session, ref_id)
    except InvalidInput as exc:
        return judge.NOT_COMPARABLE, [f"{exc.message}."]
    return judge.judge(checked, ref.report, ref_id, limits)


def record(
    session: Session,
    run_id: int,
    lease: str,
    uploaded: Any,
    environment: dict[str, Any],
    log_tail: str | None,
    model_fingerprint: str | None,
) -> Run:
    """Check, judge and store an uploaded report, ending the run exactly once (a replay returns the run)."""
    run = runs.get(session, run_id)
    runs.check_holder(run, lease)  # a stale worker hears 409 before anything of its report is read
    if run.kind != KIND:
        raise InvalidInput(f"run {run_id} is a {run.kind} run, not a serving run", field="report")
    try:
        checked = report.check(uploaded, run.options)
    except report.BadReport as exc:
        raise InvalidInput(str(exc), field="report") from None
    limits = thresholds(run.baseline)
    ref_id = reference_run(run.options, limits)
    outcome, reasons = verdict(session, checked, ref_id, limits)
    run, won = runs.finish_with_report(
        session,
        run_id,
        lease,
        outcome,
        reasons,
        checked,
        ARTIFACT,
        environment=environment,
        log_tail=log_tail,
        model_fingerprint=model_fingerprint,
    )
    if won:
        session.add(
            ServingReport(
                run_id=run.id,
                outcome=outcome,
                reasons=reasons,
                reference_run_id=ref_id,
                thresholds=limits.ratios(),
                report=checked,
            )
        )
        session.add_all(scores(run.id, checked))
        session.flush()
    return run


def scores(run_id: int, checked: dict[str, Any]) -> list[Score]:
    """Per level, each headline figure's mean over the rounds; n_samples counts completed requests."""
    found = []
    for level in checked["levels"]:
        rounds = level["rounds"]
        for key in SCORED:
            values = [r[key] for r in rounds]
            spread = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None
            found.append(
                Score(
                    run_id=run_id,
                    task=f"c={level['concurrency']}",
                    metric=key,
                    value=statistics.fmean(values),
                    stderr=spread,
                    n_samples=sum(r["completed"] for r in rounds),
                )
            )
    return found


def stored(session: Session, run_id: int) -> ServingReport:
    """A run's serving report, or NotFound saying why there is none."""
    return runs.stored_report(session, ServingReport, run_id, KIND)
