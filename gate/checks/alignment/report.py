"""A probe report as a worker uploads it, checked strictly before any figure of it reaches a verdict (pure).

The server judges the figures itself, so what is checked here is that every figure the judge and the pages read is
present, finite and possible (a cosine in [-1, 1], shares in [0, 1], KL >= 0, perplexity > 0), that the
comparisons are the ones the run's spec asks for, and that no part is unboundedly large.
"""

from __future__ import annotations

import math
from typing import Any

from gate.checks.alignment import probes, spec

ROUNDING = 1e-9  # float64 rounding: a cosine of 1 + 1e-16, or a KL of -1e-17 between identical rows, is possible
MAX_POSITIONS = 16_384  # per text: MAX_CHARS characters are far fewer tokens
MAX_REASONS = 100
MAX_TEXT_CHARS = 10_000  # a reason, a decoded token, a name
MAX_TOKENS = 1_000_000  # entries of the decoded-token map
MAX_SIDES = 4
BASES = ("full-vocabulary logits", "union of top-k log-probabilities")


class BadReport(ValueError):
    """An uploaded report that is malformed or holds an impossible figure."""


def _number(value: Any, where: str, low: float = -math.inf, high: float = math.inf, none: bool = False) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadReport(f"{where} must be a finite number, got {value!r}.")
    if not low - ROUNDING <= value <= high + ROUNDING:
        raise BadReport(f"{where} is {value!r}, outside [{low:g}, {high:g}].")


def _integer(value: Any, where: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadReport(f"{where} must be an integer from {low} to {high}, got {value!r}.")


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise BadReport(f"{where} must be a string of at most {MAX_TEXT_CHARS} characters.")


def _list(value: Any, where: str, most: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > most:
        raise BadReport(f"{where} must be a list of at most {most} entries.")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadReport(f"{where} must be an object.")
    return value


# The figures of a text or of the whole probe: (low, high, may be None)
FIGURES: dict[str, tuple[float, float, bool]] = {
    "cosine_mean": (-1.0, 1.0, False),
    "rel_error_mean": (0.0, math.inf, False),
    "top1_match_rate": (0.0, 1.0, False),
    "top5_overlap_mean": (0.0, 5.0, False),
    "kl_mean": (0.0, math.inf, False),
    "kl_p99": (0.0, math.inf, False),
}
OVERALL: dict[str, tuple[float, float, bool]] = {
    **FIGURES,
    "cosine_min": (-1.0, 1.0, False),
    "candidate_ppl_mean": (0.0, math.inf, True),
    "reference_ppl_mean": (0.0, math.inf, True),
    "candidate_ppl_median": (0.0, math.inf, True),
    "reference_ppl_median": (0.0, math.inf, True),
    "ppl_rel_diff_mean": (0.0, math.inf, True),
    "ppl_rel_diff_max": (0.0, math.inf, True),
}
TEXT: dict[str, tuple[float, float, bool]] = {
    **FIGURES,
    "candidate_ppl": (0.0, math.inf, True),
    "reference_ppl": (0.0, math.inf, True),
    "ppl_rel_diff": (0.0, math.inf, True),
}


def _figures(data: Any, shape: dict[str, tuple[float, float, bool]], where: str) -> dict[str, Any]:
    data = _object(data, where)
    for key, (low, high, none) in shape.items():
        if key not in data:
            raise BadReport(f"{where} lacks {key}.")
        _number(data[key], f"{where}.{key}", low, high, none)
        if "ppl" in key and not key.startswith("ppl") and data[key] is not None and data[key] <= 0:
            raise BadReport(f"{where}.{key} is {data[key]!r}: a perplexity is greater than 0.")
    return data


def _position(data: Any, where: str) -> None:
    data = _object(data, where)
    _integer(data.get("token"), f"{where}.token", -1, 2**31 - 1)
    _number(data.get("cosine"), f"{where}.cosine", -1.0, 1.0)
    _number(data.get("rel_error"), f"{where}.rel_error", 0.0)
    _number(data.get("kl"), f"{where}.kl", 0.0)
    if not isinstance(data.get("top1_match"), bool):
        raise BadReport(f"{where}.top1_match must be true or false.")
    _integer(data.get("top5_overlap"), f"{where}.top5_overlap", 0, 5)
    for side in ("candidate", "reference"):
        _number(data.get(f"{side}_logprob"), f"{where}.{side}_logprob", high=0.0, none=True)
        _integer(data.get(f"{side}_top1"), f"{where}.{side}_top1", 0, 2**31 - 1)


def _comparison(data: Any, where: str) -> None:
    data = _object(data, where)
    for side in ("candidate", "reference"):
        if _object(data.get(side), f"{where}.{side}").get("dtype") not in spec.DTYPES:
            raise BadReport(f"{where}.{side}.dtype must be one of {', '.join(spec.DTYPES)}.")
    if data.get("cosine_basis") not in BASES:
        raise BadReport(f"{where}.cosine_basis must be one of: {'; '.join(BASES)}.")
    _figures(data.get("overall"), OVERALL, f"{where}.overall")
    for i, text in enumerate(_list(data.get("texts"), f"{where}.texts", probes.MAX_TEXTS)):
        at = f"{where}.texts[{i}]"
        _figures(text, TEXT, at)
        _text(text.get("name"), f"{at}.name")
        for j, position in enumerate(_list(text.get("positions"), f"{at}.positions", MAX_POSITIONS)):
            _position(position, f"{at}.positions[{j}]")


def expected_comparisons(checked: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The comparisons a checked spec's probe reports: name -> (candidate dtype, reference dtype)."""
    precisions = checked["precisions"]
    if precisions is None:
        pair = (checked["candidate"]["dtype"], checked["reference"]["dtype"])
        return {f"candidate {pair[0]} vs reference {pair[1]}": pair}
    low = next(p for p in precisions if p != "float32")
    pairs = [("float32", "float32"), (low, "float32"), (low, low)]
    return {f"candidate {c} vs reference {r}": (c, r) for c, r in pairs}


def check(report: Any, checked: dict[str, Any]) -> dict[str, Any]:
    """The report, if it is one of the probe the checked spec describes with only possible figures; else BadReport."""
    report = _object(report, "the report")
    if report.get("spec") != checked:
        raise BadReport("the report is for another probe spec than the run's.")
    for i, reason in enumerate(_list(report.get("reasons"), "the report's reasons", MAX_REASONS)):
        _text(reason, f"reasons[{i}]")
    tokens = _object(report.get("tokens", {}), "tokens")
    if len(tokens) > MAX_TOKENS:
        raise BadReport(f"tokens has more than {MAX_TOKENS} entries.")
    for key, text in tokens.items():
        if not key.isdigit():
            raise BadReport(f"tokens must be keyed by token ids, not {key[:50]!r}.")
        _text(text, f"tokens[{key}]")
    for i, entry in enumerate(_list(report.get("probe"), "probe", probes.MAX_TEXTS)):
        _text(_object(entry, f"probe[{i}]").get("name"), f"probe[{i}].name")
        ids = _list(entry.get("token_ids", []), f"probe[{i}].token_ids", MAX_POSITIONS)
        if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids):
            raise BadReport(f"probe[{i}].token_ids must be token ids.")
    _list(report.get("sides"), "sides", MAX_SIDES)
    comparisons = _object(report.get("comparisons"), "comparisons")
    if not comparisons:
        if report.get("outcome") != "not_comparable" or not report["reasons"]:
            raise BadReport("a report without comparisons must say why the sides are not comparable.")
        return report
    expected = expected_comparisons(checked)
    if sorted(comparisons) != sorted(expected):
        raise BadReport(
            f"the report compares {', '.join(sorted(comparisons))}; the spec asks for {', '.join(expected)}."
        )
    for name, comparison in comparisons.items():
        _comparison(comparison, f"comparisons[{name!r}]")
        dtypes = (comparison["candidate"]["dtype"], comparison["reference"]["dtype"])
        if dtypes != expected[name]:
            raise BadReport(f"comparisons[{name!r}] compares {dtypes[0]} with {dtypes[1]}, not what its name says.")
    if checked["precisions"] is not None:
        if "noise_floor" not in report:
            raise BadReport("a probe of two precisions must report its noise floor.")
        _comparison(report["noise_floor"], "noise_floor")
    elif report.get("noise_floor") is not None:
        raise BadReport("a probe of one precision has no noise floor.")
    return report
