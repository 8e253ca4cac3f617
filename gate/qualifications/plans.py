"""Plans: the named lists of checks a qualification runs, and how one request becomes each check's run (pure).

A request names the model and how it is served once; each check takes what applies to it (the engine arguments
serve alignment, serving and smoke alike; lm-eval's options are accuracy's own) and may be tuned under its name.
The kinds' own spec checks (gate.checks.<kind>.spec, through the registry) validate the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The model card's plan: the GSM8K gate, logit alignment against the reference, the serving table, sample outputs.
PLANS: dict[str, tuple[str, ...]] = {"card": ("accuracy", "alignment", "serving", "smoke")}
DEFAULT_PLAN = "card"
ACCURACY_TASKS = ["gsm8k"]
ACCURACY_FEWSHOT = 5  # the gate's protocol: GSM8K 5-shot
# qualification_checks.name is String(64): "accuracy:" and the task must fit
CHECK_NAME_MAX = 64
SERVING_BACKENDS = ("vllm", "vllm-ascend", "openai")  # a serving benchmark needs an OpenAI-compatible server


@dataclass(frozen=True)
class Planned:
    """One check's run, before the kind's own spec check: what runs.RunRequest is made of."""

    name: str
    kind: str
    backend: str
    tasks: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    gated: bool = True


def _tuning(request: dict[str, Any], name: str) -> dict[str, Any]:
    tuned = request.get(name) or {}
    if not isinstance(tuned, dict):
        raise ValueError(f"{name} must be an object of that check's settings.")
    return dict(tuned)


def _served(request: dict[str, Any]) -> dict[str, Any]:
    """How the model is served, for the checks that serve it: only what the request named."""
    keys = ("device", "dtype", "engine_args")
    return {key: request[key] for key in keys if request.get(key) is not None}


def accuracy(request: dict[str, Any], fewshot: Mapping[str, int | None]) -> list[Planned]:
    """One run per benchmark: lm-eval's --num_fewshot applies to every task of a run, and the baselines' protocols
    differ per benchmark. A lone task keeps the check's name "accuracy", at its baseline entry's n-shot (`fewshot`)
    or the gate's 5-shot; each of several is "accuracy:TASK" at its baseline entry's n-shot, or lm-eval's default
    where the baseline has none. A num_fewshot the request names applies to every task."""
    tuned = _tuning(request, "accuracy")
    tasks = list(tuned.pop("tasks", None) or ACCURACY_TASKS)
    if len(tasks) == 1:
        protocol = fewshot.get(tasks[0])
        options = {"num_fewshot": ACCURACY_FEWSHOT if protocol is None else protocol, **tuned}
        return [Planned("accuracy", "accuracy", request["backend"], tasks, options)]
    twice = sorted({task for task in tasks if tasks.count(task) > 1})
    if twice:
        raise ValueError(f"accuracy names task {', '.join(twice)} twice.")
    too_long = [task for task in tasks if len(check_name(task)) > CHECK_NAME_MAX]
    if too_long:
        limit = CHECK_NAME_MAX - len(check_name(""))
        raise ValueError(f"accuracy task {too_long[0]} is longer than {limit} characters, the most a check name holds.")
    planned = []
    for task in tasks:
        shots = {"num_fewshot": fewshot[task]} if fewshot.get(task) is not None else {}
        planned.append(Planned(check_name(task), "accuracy", request["backend"], [task], {**shots, **tuned}))
    return planned


def check_name(task: str) -> str:
    """The check of one benchmark among several."""
    return f"accuracy:{task}"


def alignment(request: dict[str, Any]) -> Planned:
    tuned = _tuning(request, "alignment")
    served = _served(request)
    candidate = {"model": request["model"], "backend": request["backend"], **served, **(tuned.pop("candidate", {}))}
    return Planned("alignment", "alignment", candidate["backend"], options={"candidate": candidate, **tuned})


def serving(request: dict[str, Any]) -> Planned:
    if request["backend"] not in SERVING_BACKENDS:
        raise ValueError(
            f"the serving check needs backend {', '.join(SERVING_BACKENDS)}, not {request['backend']!r}: "
            'leave it out with "checks".'
        )
    tuned = _tuning(request, "serving")
    served = {k: v for k, v in _served(request).items() if k != "dtype"}
    if request.get("dtype") is not None:  # vLLM takes the precision as an engine argument
        served["engine_args"] = {"dtype": request["dtype"], **served.get("engine_args", {})}
    spec = {"model": request["model"], "backend": request["backend"], "profile": "card", **served, **tuned}
    if request.get("reference_run") is not None:
        spec.setdefault("reference_run", request["reference_run"])
    return Planned("serving", "serving", request["backend"], options=spec)


def smoke(request: dict[str, Any]) -> Planned:
    tuned = _tuning(request, "smoke")
    spec = {"model": request["model"], "backend": request["backend"], **_served(request), **tuned}
    return Planned("smoke", "smoke", request["backend"], options=spec)


BUILDERS = {"alignment": alignment, "serving": serving, "smoke": smoke}
CHECKS = ("accuracy", *BUILDERS)


def expand(plan: str, request: dict[str, Any], fewshot: Mapping[str, int | None] | None = None) -> list[Planned]:
    """The runs of a plan's checks (those `checks` names, in the plan's order), or a one-sentence ValueError.
    `fewshot`: the baseline's n-shot per task, for several accuracy benchmarks."""
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; known: {', '.join(sorted(PLANS))}.")
    chosen = request.get("checks") or list(PLANS[plan])
    unknown = [name for name in chosen if name not in PLANS[plan]]
    if unknown:
        raise ValueError(f"plan {plan!r} has no check {', '.join(unknown)}; it has {', '.join(PLANS[plan])}.")
    if len(set(chosen)) != len(chosen):
        raise ValueError("checks names a check twice.")
    tuned_elsewhere = [name for name in CHECKS if request.get(name) and name not in chosen]
    if tuned_elsewhere:
        raise ValueError(f"{', '.join(tuned_elsewhere)} is tuned but not among the checks to run.")
    planned: list[Planned] = []
    for name in PLANS[plan]:
        if name == "accuracy" and name in chosen:
            planned += accuracy(request, fewshot or {})
        elif name in chosen:
            planned.append(BUILDERS[name](request))
    return planned
