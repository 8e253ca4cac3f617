"""Plain data for the dashboard's pages. Templates only format what these functions return."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from gate import checks, i18n
from gate.baselines import service as baselines
from gate.baselines.models import Baseline, BaselineScore
from gate.checks.accuracy import judge as gate_verdict
from gate.checks.accuracy.models import SampleRecord
from gate.dashboard import chart, estimate
from gate.db import utcnow
from gate.errors import NotFound
from gate.runs import queries
from gate.runs.models import Run, RunStatus, Score, TaskVerdict, Worker
from gate.verdicts import stats as gate_stats
from gate.verdicts import trail

TRUNCATION_WARN_SHARE = 0.1  # above this share of answers at the token cap the score says more about the cap


def latest_verdicts(session: Session) -> list[Run]:
    """The newest judged run per model and baseline."""
    newest = (
        select(func.max(Run.id)).where(Run.verdict.is_not(None)).group_by(Run.model, Run.baseline_id).scalar_subquery()
    )
    return list(
        session.scalars(
            select(Run)
            .where(Run.id.in_(newest))
            .options(selectinload(Run.verdicts), selectinload(Run.baseline))
            .order_by(Run.model)
        )
    )


def active_runs(session: Session) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .options(selectinload(Run.worker))
            .order_by(Run.status.desc(), Run.priority.desc(), Run.id)
            .limit(100)
        )
    )


def workers(session: Session, offline_after_s: float, lease_s: float) -> list[dict[str, Any]]:
    """Each worker with the last time it was heard from. A busy worker renews its run's lease, not its own row
    (Worker.last_seen_at moves only when it asks for work), so its last word is the lease's last renewal."""
    running = session.execute(
        select(Run.worker_id, Run.id, Run.lease_expires_at).where(Run.status == RunStatus.RUNNING)
    ).all()
    busy = {worker_id: (run_id, expires) for worker_id, run_id, expires in running}
    now = utcnow()
    found = []
    for w in session.scalars(select(Worker).order_by(Worker.name)):
        run_id, expires = busy.get(w.id, (None, None))
        seen = max(w.last_seen_at, expires - timedelta(seconds=lease_s)) if expires is not None else w.last_seen_at
        seen_s = max((now - seen).total_seconds(), 0.0)
        found.append({"worker": w, "online": seen_s < offline_after_s, "run_id": run_id, "seen_s_ago": seen_s})
    return found


@dataclass(frozen=True)
class Truncation:
    """Answers of one task that ran into the generation cap (the accuracy worker counts them)."""

    answers: int
    at_token_cap: int
    max_gen_toks: int
    share: float

    @property
    def warn(self) -> bool:
        return self.share > TRUNCATION_WARN_SHARE


def truncation(run: Run) -> dict[str, Truncation]:
    """Per task, from what the worker recorded; entries it could not have written are left out."""
    found = {}
    for task, stats in (run.generation_stats or {}).items():
        try:
            found[task] = Truncation(
                answers=int(stats["answers"]),
                at_token_cap=int(stats["at_token_cap"]),
                max_gen_toks=int(stats["max_gen_toks"]),
                share=float(stats["truncated_share"]),
            )
        except (TypeError, KeyError, ValueError):
            continue
    return found


@dataclass(frozen=True)
class Spread:
    """The standard error and 95 % interval of a gated delta, as the run report shows them."""

    se_pp: float | None
    interval: tuple[float, float] | None
    from_baseline: bool  # the run's own SE was 0 or missing: the baseline's binomial SE at the run's n stands in


def spreads(run: Run) -> dict[str, Spread]:
    """Per gated task. A score of 0 or 1 has a sample SE of 0, and a zero-width interval would claim certainty that
    a handful of questions cannot give: the SE a healthy run would have (the verdict's note) is shown instead."""
    found = {}
    references = {s.task: s for s in (run.baseline.scores if run.baseline else [])}
    for v in run.verdicts:
        d = v.details
        se_pp = d.get("candidate_stderr_pp")
        if se_pp:
            interval = d.get("delta_ci95_pp")
            found[v.task] = Spread(se_pp, tuple(interval) if interval else None, False)
            continue
        reference = references.get(v.task)
        score = next((s for s in run.scores if s.task == v.task and s.metric == d.get("metric")), None)
        n = (score.n_samples if score else None) or (reference.n_samples if reference else None)
        baseline = d.get("baseline")
        if not n or baseline is None or not 0 < baseline < 1:
            found[v.task] = Spread(None, None, False)
            continue
        healthy_pp = math.sqrt(baseline * (1 - baseline) / n) * 100
        reference_pp = (reference.stderr or 0.0) * 100 if reference else 0.0
        found[v.task] = Spread(healthy_pp, gate_stats.delta_interval(v.delta_pp, healthy_pp, reference_pp), True)
    return found


def estimate_chart(run: Run) -> estimate.EstimateChart | None:
    """A sharded run's running estimate against the band of its one gated task, while it runs and after."""
    found = trail.parsed(run.estimate)
    entry = next((s for s in run.baseline.scores if s.task in run.tasks), None) if run.baseline else None
    if found is None or entry is None:
        return None
    return estimate.geometry(found, entry.score, entry.tolerance_pp, entry.two_sided)


def gated_verdicts(session: Session, run_ids: list[int]) -> dict[int, TaskVerdict]:
    """The first gated task's verdict of each run (its score, delta and baseline), in one query."""
    found: dict[int, TaskVerdict] = {}
    for verdict in session.scalars(select(TaskVerdict).where(TaskVerdict.run_id.in_(run_ids)).order_by(TaskVerdict.id)):
        found.setdefault(verdict.run_id, verdict)
    return found


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    run_id: int
    value: float
    verdict: str  # pass, fail, not_comparable, or none when not judged
    at: datetime | None


def history_chart(
    points: list[queries.HistoryPoint], gated: BaselineScore | None
) -> tuple[chart.Chart, list[ChartPoint]]:
    geometry = chart.geometry(
        [p.value for p in points],
        gated.score if gated else None,
        gated.tolerance_pp if gated else None,
        gated.two_sided if gated else True,
        [p.at for p in points],
    )
    plotted = [
        ChartPoint(x=x, y=y, run_id=p.run_id, value=p.value, verdict=p.verdict or "none", at=p.at)
        for p, (x, y) in zip(points, geometry.points, strict=True)
    ]
    return dataclasses.replace(geometry, axis_label=_axis_label(geometry, points)), plotted


def _axis_label(geometry: chart.Chart, points: list[queries.HistoryPoint]) -> str:
    """chart.dates's axis label in the page's language (chart.py is pure: it knows no catalog). Its ticks are times
    of day (12:03) when every run is of one day, whose UTC date the label then names."""
    times = [p.at for p in points if p.at is not None]
    if not geometry.axis_label or not times:
        return geometry.axis_label
    if geometry.date_ticks and ":" in geometry.date_ticks[0].label:
        day = times[0].astimezone(timezone.utc).date().isoformat()
        return i18n.gettext("time of run on %(day)s (UTC)", day=day)
    return i18n.gettext("date of run (UTC)")


def model_page(session: Session, model: str, baseline_name: str | None) -> dict[str, Any]:
    runs_of_model = list(
        session.scalars(
            select(Run).where(Run.model == model).options(selectinload(Run.baseline)).order_by(Run.id.desc()).limit(200)
        )
    )
    if not runs_of_model:
        raise NotFound(f"no run of a model named {model!r}")
    chosen = (
        baselines.get(session, baseline_name)
        if baseline_name
        else next((r.baseline for r in runs_of_model if r.baseline is not None), None)
    )
    gated = next((s for s in chosen.scores if s.task == "gsm8k"), chosen.scores[0]) if chosen else None
    task = gated.task if gated else "gsm8k"
    metric, points = queries.history(session, model, task, gated.metric if gated else None, 500)
    geometry, plotted = history_chart(points, gated)
    other: dict[tuple[str, str], list[tuple[Run, Score]]] = {}
    for run in runs_of_model:
        if not run.tasks:  # a kind with its own section (below) keeps its figures as scores too: not benchmarks
            continue
        for score in run.scores:
            if score.task != task:
                other.setdefault((score.task, score.metric), []).append((run, score))
    return {
        "model": model,
        "baseline": chosen,
        "gated": gated,
        "task": task,
        "metric": metric,
        "chart": geometry,
        "plotted": plotted,
        "points": points[::-1],
        "other": other,
        "runs": runs_of_model,
        "sections": [  # each kind's own history of this model, where its pages have one
            (kind, section)
            for kind in checks.KINDS
            if checks.has_part(kind, "pages") and hasattr(checks.part(kind, "pages"), "model_section")
            for section in [checks.part(kind, "pages").model_section(session, model)]
            if section is not None
        ],
    }


def comparison(session: Session, a: Run, b: Run, only_flips: bool = True) -> dict[str, Any]:
    """Per-benchmark deltas of b against a, the questions that flipped, and the paired test."""
    rows: list[dict[str, Any]] = []
    for score_b in b.scores:
        score_a = next((s for s in a.scores if s.task == score_b.task and s.metric == score_b.metric), None)
        if score_a is not None:
            rows.append(
                {
                    "task": score_b.task,
                    "metric": score_b.metric,
                    "a": score_a.value,
                    "b": score_b.value,
                    "delta_pp": float(gate_verdict.delta_pp(score_b.value, score_a.value)),
                }
            )
    flips, paired = [], {}
    for row in rows:
        flt = row["metric"].split(",", 1)[1]
        # a group (MMLU) pairs over its leaf subtasks' documents; its flips are listed under the leaves' rows
        leaves = ((b.eval_profile or {}).get(row["task"]) or {}).get("subtasks") or []
        sample_a = _samples(session, a.id, leaves or [row["task"]], flt)
        sample_b = _samples(session, b.id, leaves or [row["task"]], flt)
        result = gate_verdict.pair(
            {k: s.correct for k, s in sample_b.items()}, {k: s.correct for k, s in sample_a.items()}
        )
        if result is None:
            continue
        paired[(row["task"], row["metric"])] = result
        if leaves:
            continue
        for key in sorted(sample_a.keys() & sample_b.keys(), key=lambda k: sample_a[k].doc_id):
            if sample_a[key].correct != sample_b[key].correct:
                flips.append({"task": row["task"], "metric": row["metric"], "a": sample_a[key], "b": sample_b[key]})
    same_weights = (
        None
        if a.model_fingerprint is None or b.model_fingerprint is None
        else (a.model_fingerprint == b.model_fingerprint)
    )
    return {"a": a, "b": b, "rows": rows, "flips": flips, "paired": paired, "same_weights": same_weights}


def _samples(session: Session, run_id: int, tasks: list[str], flt: str) -> dict[str, SampleRecord]:
    """A run's per-document outcomes of these tasks, keyed by task and document hash."""
    rows = session.scalars(
        select(SampleRecord).where(
            SampleRecord.run_id == run_id, SampleRecord.task.in_(tasks), SampleRecord.filter == flt
        )
    )
    return {f"{s.task}/{s.doc_hash}": s for s in rows if s.doc_hash}


def badge_state(session: Session, model: str, baseline_name: str | None) -> str:
    """pass / fail / not_comparable from the newest judged run; running while a newer run is under way."""
    query = select(Run).where(Run.model == model).order_by(Run.id.desc()).limit(1)
    if baseline_name is not None:
        query = query.join(Run.baseline).where(Baseline.name == baseline_name)
    latest = session.scalar(query)
    if latest is None:
        return "unknown"
    if latest.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return "running"
    judged = session.scalar(query.where(Run.verdict.is_not(None)))
    return (judged.verdict if judged is not None else None) or "unknown"


def baselines_page(session: Session) -> list[dict[str, Any]]:
    result = []
    for baseline in baselines.all_baselines(session):
        gated = session.scalars(select(Run).where(Run.baseline_id == baseline.id).order_by(Run.id.desc()).limit(20))
        count = session.scalar(select(func.count()).select_from(Run).where(Run.baseline_id == baseline.id))
        result.append({"baseline": baseline, "runs": list(gated), "count": count})
    return result
