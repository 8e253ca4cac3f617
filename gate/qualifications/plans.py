"""Plans: the named lists of checks a qualification runs, and how one request becomes each check's run (pure).

A request names the model and how it is served once; each check takes what applies to it (the engine arguments
serve alignment, serving and smoke alike; lm-eval's options are accuracy's own) and may be tuned under its name.
The kinds' own spec checks (gate.checks.<kind>.spec, through the registry) validate the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The model card's plan: the GSM8K gate, logit alignment against the reference, the serving table, sample outputs.
PLANS: dict[str, tuple[str, ...]] = {"card": ("accuracy", "alignment", "serving", "smoke")}
DEFAULT_PLAN = "card"
# a plan's check name -> the kind of run that carries it out (the card's names are the kinds')
KIND_OF = {"accuracy": "accuracy", "alignment": "alignment", "serving": "serving", "smoke": "smoke"}
ACCURACY_TASKS = ["gsm8k"]
ACCURACY_FEWSHOT = 5  # the gate's protocol: GSM8K 5-shot
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


def accuracy(request: dict[str, Any]) -> Planned:
    tuned = _tuning(request, "accuracy")
    tasks = tuned.pop("tasks", None) or ACCURACY_TASKS
    options = {"num_fewshot": ACCURACY_FEWSHOT, **tuned}
    return Planned("accuracy", "accuracy", request["backend"], list(tasks), options)


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


BUILDERS = {"accuracy": accuracy, "alignment": alignment, "serving": serving, "smoke": smoke}


def expand(plan: str, request: dict[str, Any]) -> list[Planned]:
    """The runs of a plan's checks (those `checks` names, in the plan's order), or a one-sentence ValueError."""
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; known: {', '.join(sorted(PLANS))}.")
    chosen = request.get("checks") or list(PLANS[plan])
    unknown = [name for name in chosen if name not in PLANS[plan]]
    if unknown:
        raise ValueError(f"plan {plan!r} has no check {', '.join(unknown)}; it has {', '.join(PLANS[plan])}.")
    if len(set(chosen)) != len(chosen):
        raise ValueError("checks names a check twice.")
    tuned_elsewhere = [name for name in BUILDERS if request.get(name) and name not in chosen]
    if tuned_elsewhere:
        raise ValueError(f"{', '.join(tuned_elsewhere)} is tuned but not among the checks to run.")
    return [BUILDERS[name](request) for name in PLANS[plan] if name in chosen]
