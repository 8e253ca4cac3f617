"""HumanEval's scorer on a sandboxed worker, called by lm-eval in its own process for each document.

Upstream's `utils.pass_at_k` loads HF evaluate's code_eval from the hub (so it fails air-gapped) and runs the
programs in threads of lm-eval's own process under `reliability_guard`, which limits Python, not the process.
These functions replace upstream's two (gate.checks.accuracy.code_tasks): each program is built as code_eval
builds it, the candidate, a newline and the test (`{{test}}\\ncheck({{entry_point}})`, the task's target), and
runs in gate.worker.sandbox; pass@k is code_eval's unbiased estimator.
"""

from __future__ import annotations

from math import prod
from statistics import fmean

from gate.worker import sandbox


def build_predictions(resps: list[list[str]], docs: list[dict[str, str]]) -> list[list[str]]:
    """Upstream's filter: the prompt (the function's signature and docstring) completed by each response."""
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs, strict=True)]


def pass_at_k(
    references: list[str], predictions: list[list[str]], k: list[int] | int | None = None
) -> dict[str, float]:
    """{"pass@k": ...} over the documents, as code_eval computes it (a k above a document's samples is left out)."""
    ks = [k] if isinstance(k, int) else list(k or [1])
    passed = [
        [sandbox.run(candidate + "\n" + test).passed for candidate in candidates]
        for test, candidates in zip(references, predictions, strict=True)
    ]
    return {
        f"pass@{each}": fmean(estimate(len(runs), sum(runs), each) for runs in passed)
        for each in ks
        if all(len(runs) >= each for runs in passed)
    }


def estimate(n: int, c: int, k: int) -> float:
    """The chance that k of n samples, c of them correct, include a correct one (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - prod(1.0 - k / i for i in range(n - c + 1, n + 1))
