"""Plain data for the dashboard's pages. Templates only format what these functions return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from gate.core import verdict as gate_verdict
from gate.store import baselines, queries
from gate.store.models import Baseline, Run, RunStatus, SampleRecord, Worker, utcnow

CHART_W, CHART_H, CHART_PAD = 720, 260, 36


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


def workers(session: Session, offline_after_s: float) -> list[dict[str, Any]]:
    busy = dict(session.execute(select(Run.worker_id, Run.id).where(Run.status == RunStatus.RUNNING)).all())
    now = utcnow()
    return [
        {
            "worker": w,
            "online": (now - w.last_seen_at).total_seconds() < offline_after_s,
            "run_id": busy.get(w.id),
            "seen_s_ago": int((now - w.last_seen_at).total_seconds()),
        }
        for w in session.scalars(select(Worker).order_by(Worker.name))
    ]


@dataclass(frozen=True)
class Chart:
    """Coordinates for an SVG score chart: points, the baseline line and its tolerance band."""

    points: list[dict[str, Any]]
    baseline_y: float | None
    band: tuple[float, float] | None  # y of the top and bottom of the band
    y_ticks: list[tuple[float, str]]
    width: int = CHART_W
    height: int = CHART_H
    pad: int = CHART_PAD


def chart(points: list[queries.HistoryPoint], baseline: float | None, tolerance_pp: float | None) -> Chart:
    values = [p.value for p in points] + ([baseline] if baseline is not None else [])
    if baseline is not None and tolerance_pp is not None:
        values += [baseline - tolerance_pp / 100, baseline + tolerance_pp / 100]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = max(hi - lo, 0.01)
    lo, hi = lo - span * 0.1, hi + span * 0.1

    def y(value: float) -> float:
        return CHART_PAD + (hi - value) / (hi - lo) * (CHART_H - 2 * CHART_PAD)

    step = (CHART_W - 2 * CHART_PAD) / max(len(points) - 1, 1)
    plotted = [
        {
            "x": CHART_PAD + i * step,
            "y": y(p.value),
            "run_id": p.run_id,
            "value": p.value,
            "verdict": p.verdict or "none",
            "at": p.at,
        }
        for i, p in enumerate(points)
    ]
    band = None
    if baseline is not None and tolerance_pp is not None:
        band = (y(baseline + tolerance_pp / 100), y(baseline - tolerance_pp / 100))
    ticks = [(y(lo + (hi - lo) * k / 4), f"{(lo + (hi - lo) * k / 4) * 100:.1f}") for k in range(5)]
    return Chart(points=plotted, baseline_y=y(baseline) if baseline is not None else None, band=band, y_ticks=ticks)


def model_page(session: Session, model: str, baseline_name: str | None) -> dict[str, Any]:
    runs_of_model = list(
        session.scalars(
            select(Run).where(Run.model == model).options(selectinload(Run.baseline)).order_by(Run.id.desc()).limit(200)
        )
    )
    chosen = (
        baselines.get(session, baseline_name)
        if baseline_name
        else next((r.baseline for r in runs_of_model if r.baseline is not None), None)
    )
    gated = next((s for s in chosen.scores if s.task == "gsm8k"), chosen.scores[0]) if chosen else None
    task = gated.task if gated else "gsm8k"
    metric, points = queries.history(session, model, task, gated.metric if gated else None, 500)
    other = {}
    for run in runs_of_model:
        for score in run.scores:
            if score.task != task:
                other.setdefault((score.task, score.metric), []).append((run, score))
    return {
        "model": model,
        "baseline": chosen,
        "gated": gated,
        "task": task,
        "metric": metric,
        "chart": chart(points, gated.score if gated else None, gated.tolerance_pp if gated else None),
        "points": points[::-1],
        "other": other,
        "runs": runs_of_model,
    }


def comparison(session: Session, a: Run, b: Run, only_flips: bool = True) -> dict[str, Any]:
    """Per-benchmark deltas of b against a, the questions that flipped, and the paired test."""
    rows = []
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
        sample_a = _samples(session, a.id, row["task"], flt)
        sample_b = _samples(session, b.id, row["task"], flt)
        result = gate_verdict.pair(
            {k: s.correct for k, s in sample_b.items()}, {k: s.correct for k, s in sample_a.items()}
        )
        if result is None:
            continue
        paired[(row["task"], row["metric"])] = result
        for key in sorted(sample_a.keys() & sample_b.keys(), key=lambda k: sample_a[k].doc_id):
            if sample_a[key].correct != sample_b[key].correct:
                flips.append({"task": row["task"], "metric": row["metric"], "a": sample_a[key], "b": sample_b[key]})
    same_weights = (
        None
        if a.model_fingerprint is None or b.model_fingerprint is None
        else (a.model_fingerprint == b.model_fingerprint)
    )
    return {"a": a, "b": b, "rows": rows, "flips": flips, "paired": paired, "same_weights": same_weights}


def _samples(session: Session, run_id: int, task: str, flt: str) -> dict[str, SampleRecord]:
    rows = session.scalars(
        select(SampleRecord).where(SampleRecord.run_id == run_id, SampleRecord.task == task, SampleRecord.filter == flt)
    )
    return {s.doc_hash: s for s in rows if s.doc_hash}


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
    return judged.verdict if judged is not None else "unknown"


def baselines_page(session: Session) -> list[dict[str, Any]]:
    result = []
    for baseline in baselines.all_baselines(session):
        gated = session.scalars(select(Run).where(Run.baseline_id == baseline.id).order_by(Run.id.desc()).limit(20))
        count = session.scalar(select(func.count()).select_from(Run).where(Run.baseline_id == baseline.id))
        result.append({"baseline": baseline, "runs": list(gated), "count": count})
    return result
