"""Two reports of one model side by side (before and after a driver upgrade): each figure both measured (pure).

A row is (figure, detail, a, b, the runs that measured them); `figure` is one of FIGURES, which the page names in
the reader's language; the detail is an identifier (a task, a concurrency level, a package) and stays as it is.
"""

from __future__ import annotations

from typing import Any

FIGURES = (
    "verdict",
    "check",
    "score",
    "cosine",
    "top1",
    "ppl_diff",
    "throughput",
    "decode",
    "tpot",
    "version",
    "driver",
    "kv_cache",
    "load",
)


def _row(figure: str, detail: str, a: Any, b: Any, run_a: int | None, run_b: int | None) -> dict[str, Any]:
    change = b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) else None
    return {"figure": figure, "detail": detail, "a": a, "b": b, "change": change, "run_a": run_a, "run_b": run_b}


def _get(report: dict[str, Any], *path: str) -> Any:
    found: Any = report
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def _levels(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {level["concurrency"]: level for level in (_get(report, "serving", "levels") or [])}


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    found = [_row("verdict", "", a["qualification"]["verdict"], b["qualification"]["verdict"], None, None)]
    checks_a, checks_b = {c["name"]: c for c in a["checks"]}, {c["name"]: c for c in b["checks"]}
    for name in [*checks_a, *(n for n in checks_b if n not in checks_a)]:
        left, right = checks_a.get(name, {}), checks_b.get(name, {})
        found.append(
            _row("check", name, left.get("verdict"), right.get("verdict"), left.get("run_id"), right.get("run_id"))
        )
    # every accuracy benchmark's rows, each from its own run; a task only one side measured still shows
    scores_a = {(v["task"], v["metric"]): v for v in _get(a, "accuracy", "verdicts") or []}
    scores_b = {(v["task"], v["metric"]): v for v in _get(b, "accuracy", "verdicts") or []}
    for scored in [*scores_a, *(k for k in scores_b if k not in scores_a)]:
        left, right = scores_a.get(scored, {}), scores_b.get(scored, {})
        found.append(
            _row(
                "score",
                " ".join(scored),
                left.get("candidate"),
                right.get("candidate"),
                left.get("run_id"),
                right.get("run_id"),
            )
        )
    overall_a, overall_b = _get(a, "alignment", "overall") or {}, _get(b, "alignment", "overall") or {}
    for figure, key in (("cosine", "cosine_mean"), ("top1", "top1_match_rate"), ("ppl_diff", "ppl_rel_diff_mean")):
        if key in overall_a or key in overall_b:
            found.append(
                _row(
                    figure,
                    "",
                    overall_a.get(key),
                    overall_b.get(key),
                    _get(a, "alignment", "run_id"),
                    _get(b, "alignment", "run_id"),
                )
            )
    levels_a, levels_b = _levels(a), _levels(b)
    for concurrency in sorted(levels_a.keys() | levels_b.keys()):
        left, right = levels_a.get(concurrency, {}), levels_b.get(concurrency, {})
        for figure, key in (("throughput", "output_throughput"), ("decode", "decode_rate"), ("tpot", "tpot_ms")):
            found.append(
                _row(
                    figure,
                    f"c={concurrency}",
                    left.get(key),
                    right.get(key),
                    _get(a, "serving", "run_id"),
                    _get(b, "serving", "run_id"),
                )
            )
    env_a, env_b = a.get("environment") or {}, b.get("environment") or {}
    for name in sorted((env_a.get("versions") or {}).keys() | (env_b.get("versions") or {}).keys()):
        found.append(
            _row(
                "version",
                name,
                _get(env_a, "versions", name),
                _get(env_b, "versions", name),
                env_a.get("run_id"),
                env_b.get("run_id"),
            )
        )
    for figure, key in (("driver", "driver"), ("driver", "cann")):
        if env_a.get(key) or env_b.get(key):
            found.append(_row(figure, key, env_a.get(key), env_b.get(key), env_a.get("run_id"), env_b.get("run_id")))
    memory_a, memory_b = a.get("memory") or {}, b.get("memory") or {}
    for figure, key in (("kv_cache", "kv_cache_gib"), ("load", "model_load_s")):
        if memory_a.get(key) is not None or memory_b.get(key) is not None:
            found.append(
                _row(figure, "", memory_a.get(key), memory_b.get(key), memory_a.get("run_id"), memory_b.get("run_id"))
            )
    return found
