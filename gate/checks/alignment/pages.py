"""What the run page shows for an alignment run: the model card's tables, the verdict, a divergence strip.

`run_context` turns a stored report (the executor's, with its `tokens` map) into plain rows; the template
(templates/checks/alignment/run.html) only formats them. `section` is the dashboard's entry (gate.checks.part).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from gate.checks.alignment import judge, models, strip
from gate.errors import InvalidInput
from gate.runs.models import Run


@dataclass(frozen=True)
class NextToken:
    """One row of the card's next-token table: the prediction after a prompt, on both sides."""

    text: str
    cosine: float  # of the final position's logits: the prediction the row is about
    rel_error: float
    match: bool
    candidate: str  # the predicted token, decoded and quoted (" Paris")
    reference: str


@dataclass(frozen=True)
class Perplexity:
    text: str
    candidate: float | None
    reference: float | None
    rel_diff: float | None


def shown(tokens: dict[str, str], token_id: int) -> str:
    """A token as the card prints it: decoded and quoted, whitespace and control characters visible (" Paris")."""
    decoded = tokens.get(str(token_id))
    return json.dumps(decoded, ensure_ascii=False) if decoded is not None else f"#{token_id}"


def _comparisons(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = dict(report.get("comparisons") or {})
    if report.get("noise_floor"):
        found[judge.NOISE_FLOOR] = report["noise_floor"]
    return found


def next_tokens(comparison: dict[str, Any], tokens: dict[str, str]) -> list[NextToken]:
    rows = []
    for text in comparison["texts"]:
        if text["kind"] != "next_token":
            continue
        last = text["positions"][-1]  # the next_token probe's final position: the prediction after the prompt
        rows.append(
            NextToken(
                text=text["name"],
                cosine=last["cosine"],
                rel_error=last["rel_error"],
                match=last["top1_match"],
                candidate=shown(tokens, last["candidate_top1"]),
                reference=shown(tokens, last["reference_top1"]),
            )
        )
    return rows


def perplexities(comparison: dict[str, Any]) -> list[Perplexity]:
    return [
        Perplexity(t["name"], t["candidate_ppl"], t["reference_ppl"], t["ppl_rel_diff"])
        for t in comparison["texts"]
        if t["kind"] == "text"
    ]


def _summary(rows: list[Perplexity], how: str) -> Perplexity | None:
    """The card's mean and median rows: of each column, the difference column included (not recomputed)."""
    if not rows or any(r.candidate is None or r.reference is None or r.rel_diff is None for r in rows):
        return None
    of = statistics.fmean if how == "mean" else statistics.median
    return Perplexity(
        how,
        of(r.candidate for r in rows if r.candidate is not None),
        of(r.reference for r in rows if r.reference is not None),
        of(r.rel_diff for r in rows if r.rel_diff is not None),
    )


def _strip(comparison: dict[str, Any], text: dict[str, Any], tokens: dict[str, str]) -> strip.Strip:
    titles = []
    for j, p in enumerate(text["positions"]):
        actual = shown(tokens, p["token"]) if p["token"] >= 0 else "(the next token)"
        delta = (
            f", Δ logprob {p['candidate_logprob'] - p['reference_logprob']:+.3g}"
            if p["candidate_logprob"] is not None and p["reference_logprob"] is not None
            else ""
        )
        titles.append(
            f"position {j + 1}: {actual} · KL {p['kl']:.3g}, cosine {p['cosine']:.6f}{delta} · top-1 "
            f"{shown(tokens, p['candidate_top1'])} vs {shown(tokens, p['reference_top1'])}"
        )
    positions = text["positions"]
    return strip.geometry([p["kl"] for p in positions], [not p["top1_match"] for p in positions], titles)


def _thresholds(report: dict[str, Any]) -> dict[str, Any]:
    """The limits the verdict used: the stored ones, else the defaults the worker's executor judged with."""
    stored = report.get("thresholds")
    return dict(stored) if stored else asdict(judge.Thresholds())


def run_context(report: dict[str, Any], text: str | None = None, comparison: str | None = None) -> dict[str, Any]:
    """The alignment section of a run page; text and comparison pick the strip's (and the tables') subject."""
    tokens: dict[str, str] = report.get("tokens") or {}
    comparisons = _comparisons(report)
    context: dict[str, Any] = {
        "outcome": report.get("outcome"),
        "reasons": report.get("reasons") or [],
        "thresholds": _thresholds(report),
        "noise_floor": report.get("noise_floor") is not None,
        "sides": report.get("sides") or [],
        "three_way": report.get("three_way"),
        "comparisons": list(comparisons),
    }
    if not comparisons:  # not comparable before any side ran (precision, tokenizer): the verdict says why
        return context
    chosen = comparison or next(iter(comparisons))
    if chosen not in comparisons:
        raise InvalidInput(f"comparison must be one of: {', '.join(comparisons)}", field="comparison")
    compared = comparisons[chosen]
    texts = {t["name"]: t for t in compared["texts"]}
    # by default the strip shows where the two sides part most: the text with the largest mean KL
    subject = text or max(compared["texts"], key=lambda t: t["kl_mean"])["name"]
    if subject not in texts:
        raise InvalidInput(f"text must name one of the probe's {len(texts)} texts, not {subject!r}", field="text")
    ppl = perplexities(compared)
    context.update(
        comparison=chosen,
        basis=compared["cosine_basis"],
        candidate=compared["candidate"],
        reference=compared["reference"],
        overall=compared["overall"],
        next_tokens=next_tokens(compared, tokens),
        perplexity=ppl,
        perplexity_mean=_summary(ppl, "mean"),
        perplexity_median=_summary(ppl, "median"),
        texts=list(texts),
        text=subject,
        strip=_strip(compared, texts[subject], tokens),
    )
    return context


def stored_report(session: Session, run: Run) -> dict[str, Any] | None:
    """The run's report as the server judged it, or None before the worker has uploaded one."""
    row = session.get(models.AlignmentReport, run.id)
    if row is None:
        return None
    return {**row.report, "outcome": row.outcome, "reasons": row.reasons, "thresholds": row.thresholds}


def section(session: Session, run: Run, text: str | None, comparison: str | None) -> dict[str, Any] | None:
    """The dashboard's entry: the section's context, or None while the run has no report."""
    report = stored_report(session, run)
    return run_context(report, text, comparison) if report is not None else None
