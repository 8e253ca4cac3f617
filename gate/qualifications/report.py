"""A qualification's report as plain data: every figure of the model card, each with the run that measured it.

The page (templates/qualifications/report.html), the Markdown export (gate.qualifications.markdown) and
`GET /api/v1/qualifications/{id}/report` all read this one structure, so they cannot disagree. Each kind's
figures come from its own `pages` part (through the registry), as its run page shows them.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from sqlalchemy.orm import Session

from gate import checks
from gate.qualifications import service, verdict
from gate.qualifications.models import Qualification
from gate.runs.models import Run, RunStatus

# the model's configuration as the card lists it (config.json), then its generation defaults
CONFIG_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "num_hidden_layers",
    "vocab_size",
    "max_position_embeddings",
    "rope_theta",
    "rms_norm_eps",
    "tie_word_embeddings",
)
ENVIRONMENT_FROM = ("smoke", "serving", "alignment", "accuracy")  # the first that ran the candidate says


def plain(value: Any) -> Any:
    """Dataclass rows (the kinds' page rows) as dicts, recursively: the report is JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _section(session: Session, run: Run) -> dict[str, Any] | None:
    if run.status != RunStatus.SUCCEEDED or not checks.has_part(run.kind, "pages"):
        return None
    found = checks.part(run.kind, "pages").section(session, run, None, None)
    return plain(found) if found is not None else None


def _accuracy(benchmarks: list[tuple[str, Run]]) -> dict[str, Any]:
    """Every accuracy benchmark's verdict rows in one table, each row naming its check and run; `benchmarks` says
    how each run ended (a run that judged no task says why). The first run's id and verdict stay at the top, as
    a single-benchmark report always had them."""
    each = [
        {"check": name, "run_id": run.id, "verdict": run.verdict, "verdict_reason": run.verdict_reason}
        for name, run in benchmarks
    ]
    return {
        **{key: each[0][key] for key in ("run_id", "verdict", "verdict_reason")},
        "benchmarks": each,
        "verdicts": [
            {"check": name, "run_id": run.id, "task": v.task, "outcome": v.outcome, **v.details}
            for name, run in benchmarks
            for v in run.verdicts
        ],
        "scores": [
            {
                "check": name,
                "run_id": run.id,
                "task": s.task,
                "metric": s.metric,
                "value": s.value,
                "stderr": s.stderr,
                "n_samples": s.n_samples,
            }
            for name, run in benchmarks
            for s in run.scores
        ],
    }


def _alignment(run: Run, section: dict[str, Any]) -> dict[str, Any]:
    keys = ("outcome", "reasons", "comparison", "candidate", "reference", "overall", "next_tokens", "perplexity")
    return {
        "run_id": run.id,
        **{key: section.get(key) for key in keys},
        "perplexity_mean": section.get("perplexity_mean"),
        "perplexity_median": section.get("perplexity_median"),
        "three_way": section.get("three_way"),
    }


def _serving(run: Run, section: dict[str, Any]) -> dict[str, Any]:
    keys = ("outcome", "reasons", "reference_run_id", "vllm_version", "device_kind", "engine_args", "server", "spec")
    return {"run_id": run.id, **{key: section.get(key) for key in keys}, "levels": section.get("rows") or []}


def _smoke(run: Run, section: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "outcome": section.get("outcome"),
        "sampling": {row["name"]: row["value"] for row in section.get("sampling") or []},
        "outputs": section.get("outputs") or [],
    }


def _model_config(session: Session, run: Run) -> dict[str, Any] | None:
    """The model's configuration as the smoke run read it from the files (values as stored, not as shown)."""
    found = checks.part(run.kind, "recording").stored(session, run.id).report.get("model_config")
    if not found:
        return None
    config = found["config"]
    return {
        "run_id": run.id,
        "config": {key: config.get(key) for key in CONFIG_KEYS},
        "architectures": config.get("architectures"),
        "generation_config": found.get("generation_config") or {},
    }


def _environment(by_kind: dict[str, Run], q: Qualification) -> dict[str, Any] | None:
    run = next((by_kind[k] for k in ENVIRONMENT_FROM if k in by_kind and by_kind[k].environment), None)
    if run is None or run.environment is None:
        return None
    env = run.environment
    engine_args = q.request.get("engine_args") or {}
    device = env.get("device") or {}
    return {
        "run_id": run.id,
        "device": device.get("name"),
        "device_kind": device.get("kind"),
        "device_count": device.get("count"),
        "device_memory": device.get("memory"),
        "driver": device.get("driver"),
        "cann": device.get("cann"),
        "cpu": env.get("cpu"),
        "cpu_cores": env.get("cpu_cores"),
        "memory_gib": env.get("memory_gib"),
        "python": env.get("python"),
        "versions": {k: v for k, v in (env.get("versions") or {}).items() if v},
        "precision": q.request.get("dtype") or engine_args.get("dtype") or "auto",
        "mode": "eager" if engine_args.get("enforce_eager") else "graph",
    }


def _commands(q: Qualification) -> list[dict[str, Any]]:
    """Each check's commands as shell lines, in the order its worker ran them."""
    found = []
    for c in q.checks:
        ran = (c.run.environment or {}).get("commands") or []
        lines = []
        for command in ran:
            exports = [f"export {k}={shlex.quote(str(v))}" for k, v in sorted(command.get("env", {}).items())]
            lines.append("\n".join([*exports, shlex.join(command["argv"])]))
        if lines:
            found.append({"check": c.name, "run_id": c.run_id, "commands": lines})
    return found


def _memory(serving: dict[str, Any] | None, environment: dict[str, Any] | None) -> dict[str, Any] | None:
    server = (serving or {}).get("server") or {}
    if not server and not environment:
        return None
    return {
        "run_id": (serving or {}).get("run_id"),
        "model_memory_gib": server.get("model_memory_gib"),
        "kv_cache_gib": server.get("kv_cache_gib"),
        "kv_cache_tokens": server.get("kv_cache_tokens"),
        "model_load_s": server.get("model_load_s"),
        "engine_init_s": server.get("engine_init_s"),
        "device_memory": (environment or {}).get("device_memory"),
    }


def official(q: Qualification) -> list[dict[str, Any]]:
    """The baseline's published scores, as the card's official baselines table."""
    if q.baseline is None:
        return []
    source = q.baseline.source
    return [
        {"benchmark": s.benchmark, "task": s.task, "metric": s.metric, "score": s.score, "source": source}
        for s in q.baseline.scores
    ]


def summary(session: Session, q: Qualification, offline_after_s: float) -> verdict.Overall:
    return verdict.overall(service.states(session, q, offline_after_s))


def gather(session: Session, q: Qualification, offline_after_s: float) -> dict[str, Any]:
    """The whole report of a qualification, as it stands (a check still running has no section yet)."""
    states = service.states(session, q, offline_after_s)
    found = verdict.overall(states)
    by_kind = {c.run.kind: c.run for c in q.checks}
    sections = {c.name: _section(session, c.run) for c in q.checks}
    report: dict[str, Any] = {
        "qualification": {
            "id": q.id,
            "model": q.model,
            "backend": q.backend,
            "plan": q.plan,
            "baseline": q.baseline.name if q.baseline else None,
            "status": found.status,
            "verdict": found.verdict,
            "reasons": found.reasons,
            "causes": [dataclasses.asdict(cause) for cause in found.causes],
            "created_at": q.created_at.isoformat(),
            "model_fingerprint": next((c.run.model_fingerprint for c in q.checks if c.run.model_fingerprint), None),
        },
        "checks": [
            {
                "name": c.name,
                "kind": c.run.kind,
                "run_id": c.run_id,
                "gated": c.gated,
                "status": c.run.status,
                "verdict": c.run.verdict,
                "backend": c.run.backend,
                "labels": c.run.labels,
                "failure_reason": c.run.failure_reason,
                "waiting": state.waiting,
            }
            for c, state in zip(q.checks, states, strict=True)
        ],
        "environment": _environment(by_kind, q),
        "samples": None,
        "alignment": None,
        "accuracy": None,
        "serving": None,
        "model_config": None,
        "official_baselines": official(q),
        "commands": _commands(q),
    }
    accuracy = [(c.name, c.run) for c in q.checks if c.run.kind == "accuracy" and c.run.status == RunStatus.SUCCEEDED]
    if accuracy:
        report["accuracy"] = _accuracy(accuracy)
    for c in q.checks:
        section, run = sections[c.name], c.run
        if run.kind == "accuracy" or section is None:
            continue
        if run.kind == "alignment":
            report["alignment"] = _alignment(run, section)
        elif run.kind == "serving":
            report["serving"] = _serving(run, section)
        elif run.kind == "smoke":
            report["samples"] = _smoke(run, section)
            report["model_config"] = _model_config(session, run)
    report["memory"] = _memory(report["serving"], report["environment"])
    return report
