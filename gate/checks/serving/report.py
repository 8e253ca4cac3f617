"""A serving report as a worker uploads it, checked strictly before any figure of it reaches a verdict (pure).

The server judges the figures itself, so every figure the judge and the pages read must be present, finite and
possible: non-negative, percentiles ordered (median <= p90 <= p99), each round's completed and failed requests
adding up to the spec's prompts; the levels and rounds are the ones the run's spec asks for, and nothing is
unboundedly large.
"""

from __future__ import annotations

import math
from typing import Any

from gate.checks.serving.spec import MAX_CONCURRENCY, MAX_LEVELS, MAX_ROUNDS

MAX_KEYS = 100  # per object: the benchmark's result JSON has about 40 numbers
MAX_TEXT_CHARS = 10_000
METRICS = ("ttft", "tpot", "itl", "e2el")  # each in ms: mean, median, p90, p99
STATISTICS = ("mean", "median", "p90", "p99")
THROUGHPUTS = ("request_throughput", "output_throughput", "total_token_throughput", "per_request_decode_tok_s")
SERVER = ("model_load_s", "model_memory_gib", "kv_cache_gib", "kv_cache_tokens", "engine_init_s")


class BadReport(ValueError):
    """An uploaded report that is malformed or holds an impossible figure."""


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_KEYS:
        raise BadReport(f"{where} must be an object of at most {MAX_KEYS} entries.")
    return value


def _list(value: Any, where: str, most: int) -> list[Any]:
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise BadReport(f"{where} must be a list of 1 to {most} entries.")
    return value


def _number(value: Any, where: str, none: bool = False) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadReport(f"{where} must be a finite number, got {value!r}.")
    if value < 0:
        raise BadReport(f"{where} is {value!r}: it cannot be negative.")


def _count(value: Any, where: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise BadReport(f"{where} must be an integer from 0 to {high}, got {value!r}.")
    return value


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT_CHARS:
        raise BadReport(f"{where} must be a non-empty string of at most {MAX_TEXT_CHARS} characters.")


def _scalars(data: dict[str, Any], where: str) -> None:
    """The benchmark's other entries stay as they came, if small: numbers, short strings, nulls."""
    for key, value in data.items():
        if isinstance(value, str):
            _text(value, f"{where}.{key}")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise BadReport(f"{where}.{key} must be a number, a string or null, not a {type(value).__name__}.")


def _figures(data: Any, where: str, prompts: int) -> None:
    data = _object(data, where)
    _scalars(data, where)
    completed = _count(data.get("completed"), f"{where}.completed", prompts)
    failed = _count(data.get("failed"), f"{where}.failed", prompts)
    if completed + failed != prompts:
        raise BadReport(f"{where}: {completed} completed and {failed} failed requests are not the spec's {prompts}.")
    for key in THROUGHPUTS:
        _number(data.get(key), f"{where}.{key}")
    for metric in METRICS:
        for statistic in STATISTICS:
            _number(data.get(f"{statistic}_{metric}_ms"), f"{where}.{statistic}_{metric}_ms")
        median, p90, p99 = (data[f"{s}_{metric}_ms"] for s in ("median", "p90", "p99"))
        if not median <= p90 <= p99:
            raise BadReport(
                f"{where}: the {metric} percentiles must be ordered median <= p90 <= p99, "
                f"got {median:g}, {p90:g}, {p99:g} ms."
            )


def check(report: Any, checked: dict[str, Any]) -> dict[str, Any]:
    """The report, if it measures the checked spec with only possible figures; else BadReport."""
    report = _object(report, "the report")
    if report.get("spec") != checked:
        raise BadReport("the report is for another serving spec than the run's.")
    if report.get("vllm_version") is not None:  # None: a server that did not say (an openai server may not)
        _text(report["vllm_version"], "vllm_version")
    _text(report.get("device_kind"), "device_kind")
    engine_args = _object(report.get("engine_args"), "engine_args")
    _scalars(engine_args, "engine_args")
    server = _object(report.get("server"), "server")
    for key in SERVER:
        _number(server.get(key), f"server.{key}", none=True)
    levels = _list(report.get("levels"), "levels", MAX_LEVELS)
    concurrencies = []
    for i, level in enumerate(levels):
        at = f"levels[{i}]"
        level = _object(level, at)
        concurrency = _count(level.get("concurrency"), f"{at}.concurrency", MAX_CONCURRENCY)
        if concurrency < 1:
            raise BadReport(f"{at}.concurrency must be at least 1.")
        concurrencies.append(concurrency)
        rounds = _list(level.get("rounds"), f"{at}.rounds", MAX_ROUNDS)
        if len(rounds) != checked["rounds"]:
            raise BadReport(f"{at} has {len(rounds)} round(s); the spec asks for {checked['rounds']}.")
        for j, figures in enumerate(rounds):
            _figures(figures, f"{at}.rounds[{j}]", checked["num_prompts"])
    if concurrencies != checked["concurrencies"]:
        raise BadReport(
            f"the report measures concurrency {concurrencies}; the spec asks for {checked['concurrencies']}."
        )
    return report
