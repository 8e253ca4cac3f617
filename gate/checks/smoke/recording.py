"""Recording a smoke report: judged here on the server, stored with the run's ending in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gate.checks.smoke import judge, report
from gate.checks.smoke.models import SmokeReport
from gate.errors import InvalidInput
from gate.runs import service as runs
from gate.runs.models import Run

KIND = "smoke"
ARTIFACT = "smoke.json"


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
        article = "an" if run.kind[:1] in "aeiou" else "a"
        raise InvalidInput(f"run {run_id} is {article} {run.kind} run, not a smoke run", field="report")
    try:
        checked = report.check(uploaded, run.options)
    except report.BadReport as exc:
        raise InvalidInput(str(exc), field="report") from None
    outcome, reasons = judge.judge(checked["outputs"], checked["sampling"]["max_tokens"])
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
        session.add(SmokeReport(run_id=run.id, outcome=outcome, reasons=reasons, report=checked))
        session.flush()
    return run


def stored(session: Session, run_id: int) -> SmokeReport:
    """A run's smoke report, or NotFound saying why there is none."""
    return runs.stored_report(session, SmokeReport, run_id, KIND)
