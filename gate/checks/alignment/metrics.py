"""Position-by-position comparison of two side records (pure numpy): cosine, relative error, KL, top-k, perplexity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import numpy as np

from gate.checks.alignment.record import Position, SideRecord

FULL_BASIS = "full-vocabulary logits"
UNION_BASIS = "union of top-k log-probabilities"
PROBABILITY_FLOOR = 1e-12  # stands in for a zero probability in KL, so one empty bucket gives a large, finite KL
ROWS_PER_BLOCK = 16  # full-logits rows compared at a time: about 6 float64 arrays of 16 x vocab (117 MB for Qwen3)


Side = tuple[SideRecord, "np.ndarray | None"]  # a record and its full logits, where it has them


class NotComparable(ValueError):
    """Two side records that cannot be compared position by position."""


class Comparison(TypedDict):
    """Candidate against reference: the sides, the basis of cosine and KL, per text and overall figures."""

    candidate: dict[str, Any]  # backend, model, dtype, device of each side
    reference: dict[str, Any]
    cosine_basis: str  # FULL_BASIS or UNION_BASIS
    texts: list[dict[str, Any]]
    overall: dict[str, Any]


def not_comparable(candidate: SideRecord, reference: SideRecord) -> str | None:
    """Why two records cannot be compared position by position, or None when they can."""
    if candidate["tokenizer_fingerprint"] != reference["tokenizer_fingerprint"]:
        return "the two sides use different tokenizers"
    if [(t["name"], t["kind"]) for t in candidate["texts"]] != [(t["name"], t["kind"]) for t in reference["texts"]]:
        return "the two sides were given different probe texts"
    for cand, ref in zip(candidate["texts"], reference["texts"], strict=True):
        if cand["token_ids"] != ref["token_ids"]:
            return f"the two sides were given different token ids for {ref['name']!r}"
        if [p["token"] for p in cand["positions"]] != [p["token"] for p in ref["positions"]]:
            return f"the two sides predicted different positions of {ref['name']!r}"
    return None


def _union_vectors(cand: Position, ref: Position) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' log-probabilities over the union of their top-k tokens.

    A token missing from one side's top-k gets that side's k-th log-probability: its true value is at most that,
    so the filled value is an upper bound, and the cosine, relative error and KL computed from it are estimates.
    """
    top_c = {int(t): lp for t, lp in cand["top"]}
    top_r = {int(t): lp for t, lp in ref["top"]}
    fill_c, fill_r = cand["top"][-1][1], ref["top"][-1][1]
    union = sorted(top_c.keys() | top_r.keys())
    return np.array([top_c.get(t, fill_c) for t in union]), np.array([top_r.get(t, fill_r) for t in union])


def _bucketed(logprobs: np.ndarray) -> np.ndarray:
    """A distribution over the union's tokens plus one "rest" bucket holding the mass outside it."""
    probs = np.exp(logprobs)
    rest = max(1.0 - probs.sum(), 0.0)
    dist = np.append(probs, rest)
    return dist / dist.sum()  # the filled upper bounds can push the union past 1: renormalise


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats; zero entries of q count as PROBABILITY_FLOOR."""
    mask = p > 0
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], PROBABILITY_FLOOR)))))


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    shifted = rows - rows.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two zero rows are identical (1.0)."""
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    dots = np.sum(a * b, axis=-1)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(dots == 0, 1.0, 0.0))


def _full_rows(cand: np.ndarray, ref: np.ndarray, start: int, count: int) -> Iterator[tuple[float, float, float]]:
    """Cosine, relative error and KL(ref || cand) of full-logits rows start..start+count, a block at a time."""
    for offset in range(start, start + count, ROWS_PER_BLOCK):
        stop = min(offset + ROWS_PER_BLOCK, start + count)
        a = np.asarray(cand[offset:stop], dtype=np.float64)
        b = np.asarray(ref[offset:stop], dtype=np.float64)
        cosines = _cosine(a, b)
        errors = np.linalg.norm(a - b, axis=-1) / np.maximum(np.linalg.norm(b, axis=-1), np.finfo(float).tiny)
        log_r, log_c = _log_softmax(b), _log_softmax(a)
        kls = np.sum(np.exp(log_r) * (log_r - log_c), axis=-1)
        yield from zip(cosines.tolist(), errors.tolist(), kls.tolist(), strict=True)


def _union_row(cand: Position, ref: Position) -> tuple[float, float, float]:
    a, b = _union_vectors(cand, ref)
    error = float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), np.finfo(float).tiny))
    return float(_cosine(a, b)), error, _kl(_bucketed(b), _bucketed(a))


def _perplexity(positions: list[Position]) -> float | None:
    """exp(-mean log-probability of the actual tokens); None where no position has an actual token."""
    logprobs = [p["logprob"] for p in positions if p["token"] >= 0 and p["logprob"] is not None]
    return float(np.exp(-np.mean(logprobs))) if logprobs else None


def _relative(candidate: float | None, reference: float | None) -> float | None:
    if candidate is None or reference is None:
        return None
    return abs(candidate - reference) / reference


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _summary(candidate: SideRecord) -> dict[str, Any]:
    return {key: candidate[key] for key in ("backend", "model", "dtype", "device")}


def compare(
    candidate: SideRecord,
    reference: SideRecord,
    candidate_logits: np.ndarray | None = None,
    reference_logits: np.ndarray | None = None,
) -> Comparison:
    """Candidate against reference, position by position; full-vocabulary figures when both logits are given."""
    reason = not_comparable(candidate, reference)
    if reason:
        raise NotComparable(f"not comparable: {reason}.")
    full = candidate_logits is not None and reference_logits is not None
    texts: list[dict[str, Any]] = []
    all_positions: list[dict[str, Any]] = []
    row = 0
    for cand_text, ref_text in zip(candidate["texts"], reference["texts"], strict=True):
        pairs = list(zip(cand_text["positions"], ref_text["positions"], strict=True))
        if full:
            assert candidate_logits is not None and reference_logits is not None
            figures = list(_full_rows(candidate_logits, reference_logits, row, len(pairs)))
        else:
            figures = [_union_row(c, r) for c, r in pairs]
        row += len(pairs)
        positions: list[dict[str, Any]] = []
        for (cand, ref), (cosine, error, kl) in zip(pairs, figures, strict=True):
            positions.append(
                {
                    "token": ref["token"],
                    "cosine": cosine,
                    "rel_error": error,
                    "kl": kl,
                    "top1_match": int(cand["top"][0][0]) == int(ref["top"][0][0]),
                    "top5_overlap": len({int(t) for t, _ in cand["top"][:5]} & {int(t) for t, _ in ref["top"][:5]}),
                    "candidate_logprob": cand["logprob"],
                    "reference_logprob": ref["logprob"],
                    "candidate_top1": int(cand["top"][0][0]),
                    "reference_top1": int(ref["top"][0][0]),
                }
            )
        all_positions += positions
        ppl_c, ppl_r = _perplexity(cand_text["positions"]), _perplexity(ref_text["positions"])
        kls = [p["kl"] for p in positions]
        last = positions[-1]
        texts.append(
            {
                "name": ref_text["name"],
                "kind": ref_text["kind"],
                "positions": positions,
                "cosine_mean": _mean([p["cosine"] for p in positions]),
                "rel_error_mean": _mean([p["rel_error"] for p in positions]),
                "top1_match_rate": _mean([float(p["top1_match"]) for p in positions]),
                "top5_overlap_mean": _mean([float(p["top5_overlap"]) for p in positions]),
                "kl_mean": _mean(kls),
                "kl_p99": float(np.percentile(kls, 99)),
                "candidate_ppl": ppl_c,
                "reference_ppl": ppl_r,
                "ppl_rel_diff": _relative(ppl_c, ppl_r),
                # next_token probes: what each side predicts after the prompt (the card's NPU/CPU prediction columns)
                "prediction": (
                    {
                        "candidate": last["candidate_top1"],
                        "reference": last["reference_top1"],
                        "match": last["top1_match"],
                    }
                    if ref_text["kind"] == "next_token"
                    else None
                ),
            }
        )
    return {
        "candidate": _summary(candidate),
        "reference": _summary(reference),
        "cosine_basis": FULL_BASIS if full else UNION_BASIS,
        "texts": texts,
        "overall": _overall(texts, all_positions),
    }


def _overall(texts: list[dict[str, Any]], positions: list[dict[str, Any]]) -> dict[str, Any]:
    kls = [p["kl"] for p in positions]
    cosines = [p["cosine"] for p in positions]
    ppl_c = [t["candidate_ppl"] for t in texts if t["candidate_ppl"] is not None]
    ppl_r = [t["reference_ppl"] for t in texts if t["reference_ppl"] is not None]
    diffs = [t["ppl_rel_diff"] for t in texts if t["ppl_rel_diff"] is not None]
    return {
        "texts": len(texts),
        "positions": len(positions),
        "cosine_mean": _mean(cosines),
        "cosine_min": min(cosines),
        "rel_error_mean": _mean([p["rel_error"] for p in positions]),
        "top1_match_rate": _mean([float(p["top1_match"]) for p in positions]),
        "top5_overlap_mean": _mean([float(p["top5_overlap"]) for p in positions]),
        "kl_mean": _mean(kls),
        "kl_p99": float(np.percentile(kls, 99)),
        "candidate_ppl_mean": _mean(ppl_c),
        "reference_ppl_mean": _mean(ppl_r),
        "candidate_ppl_median": float(np.median(ppl_c)) if ppl_c else None,
        "reference_ppl_median": float(np.median(ppl_r)) if ppl_r else None,
        "ppl_rel_diff_mean": _mean(diffs),
        "ppl_rel_diff_max": max(diffs) if diffs else None,
    }


def compare_sides(candidate: Side, reference: Side) -> Comparison:
    """compare() for (record, logits) pairs."""
    return compare(candidate[0], reference[0], candidate[1], reference[1])


def three_way(
    candidate_high: Side, candidate_low: Side, reference_high: Side, reference_low: Side
) -> tuple[dict[str, Comparison], Comparison]:
    """The card's table (e.g. FP32/FP32, BF16/FP32, BF16/BF16) and the noise floor: reference low vs high precision."""
    high, low = reference_high[0]["dtype"], reference_low[0]["dtype"]
    table = {
        f"candidate {high} vs reference {high}": compare_sides(candidate_high, reference_high),
        f"candidate {low} vs reference {high}": compare_sides(candidate_low, reference_high),
        f"candidate {low} vs reference {low}": compare_sides(candidate_low, reference_low),
    }
    return table, compare_sides(reference_low, reference_high)
