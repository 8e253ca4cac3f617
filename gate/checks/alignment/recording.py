"""Recording a probe's report: judged here on the server, stored with the run's ending in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gate.baselines.models import Baseline
from gate.checks.alignment import judge, report
from gate.checks.alignment.models import AlignmentReport
from gate.errors import InvalidInput
from gate.runs import service as runs
from gate.runs.models import Run, Score

KIND = "alignment"
ARTIFACT = "alignment.json"
# The overall figures kept as the run's scores (task = the comparison): the export, the run's detail and any
# other reader of scores see an alignment run's numbers without knowing the kind.
SCORED = (
    "cosine_mean",
    "cosine_min",
    "rel_error_mean",
    "top1_match_rate",
    "top5_overlap_mean",
    "kl_mean",
    "kl_p99",
    "candidate_ppl_mean",
    "reference_ppl_mean",
    "ppl_rel_diff_mean",
    "ppl_rel_diff_max",
)


def thresholds(baseline: Baseline | None) -> judge.Thresholds:
    """The baseline's alignment thresholds (its `checks.alignment`), or the card's defaults."""
    settings = (baseline.checks or {}).get(KIND) if baseline is not None else None
    try:
        return judge.Thresholds.from_mapping(settings)
    except ValueError as exc:
        assert baseline is not None  # the defaults are valid
        raise InvalidInput(f"baseline {baseline.name!r}: {exc}", field="baseline") from None


def verdict(checked: dict[str, Any], limits: judge.Thresholds) -> tuple[str, list[str]]:
    """The server's own verdict on a checked report; the worker's outcome counts only for a report without
    comparisons, which can only be not comparable."""
    if not checked["comparisons"]:
        return judge.NOT_COMPARABLE, list(checked["reasons"])
    return judge.judge(checked["comparisons"], checked.get("noise_floor"), limits)


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
        raise InvalidInput(f"run {run_id} is a {run.kind} run, not an alignment run", field="report")
    try:
        checked = report.check(uploaded, run.options)
    except report.BadReport as exc:
        raise InvalidInput(str(exc), field="report") from None
    limits = thresholds(run.baseline)
    outcome, reasons = verdict(checked, limits)
    stored = {**checked, "outcome": outcome, "reasons": reasons}
    run, won = runs.finish_with_report(
        session,
        run_id,
        lease,
        outcome,
        reasons,
        stored,
        ARTIFACT,
        environment=environment,
        log_tail=log_tail,
        model_fingerprint=model_fingerprint,
    )
    if won:
        session.add(
            AlignmentReport(run_id=run.id, outcome=outcome, reasons=reasons, thresholds=limits.as_dict(), report=stored)
        )
        session.add_all(scores(run.id, stored))
        session.flush()
    return run


def scores(run_id: int, checked: dict[str, Any]) -> list[Score]:
    """One score per comparison (the noise floor included) and overall figure; n_samples counts positions."""
    compared = dict(checked["comparisons"])
    if checked.get("noise_floor"):
        compared[judge.NOISE_FLOOR] = checked["noise_floor"]
    return [
        Score(run_id=run_id, task=name, metric=key, value=overall[key], n_samples=overall.get("positions"))
        for name, comparison in compared.items()
        for overall in [comparison["overall"]]
        for key in SCORED
        if overall.get(key) is not None
    ]


def stored(session: Session, run_id: int) -> AlignmentReport:
    """A run's alignment report, or NotFound saying why there is none."""
    return runs.stored_report(session, AlignmentReport, run_id, KIND)
