"""Code-executing tasks on a sandboxed worker: lm-eval's own task config, scored by gate.checks.accuracy.code_eval.

Upstream's humaneval.yaml cannot be `include:`d air-gapped: loading it imports the utils.py its `!function` tags
name, and that module loads HF evaluate's code_eval from the hub when imported. So the override is upstream's
file itself, read as data, with its two functions pointed at ours: prompt, generation settings, filters, the task's
name and its version stay upstream's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# task -> its config relative to lm_eval/tasks; lm-eval's other code-executing tasks have no sandboxed scorer yet
SANDBOXED = {"humaneval": "humaneval/humaneval.yaml"}
FUNCTIONS = {
    "utils.pass_at_k": "gate.checks.accuracy.code_eval.pass_at_k",
    "utils.build_predictions": "gate.checks.accuracy.code_eval.build_predictions",
}


class Function(str):
    """A `!function module.name` reference, written back as one."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_constructor("!function", lambda loader, node: Function(loader.construct_scalar(node)))  # type: ignore[arg-type]
_Dumper.add_representer(Function, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def config(upstream: Path) -> dict[str, Any]:
    """Upstream's config of a sandboxed task (its file), its functions replaced by ours."""
    return _retarget(yaml.load(upstream.read_text(), Loader=_Loader))  # a SafeLoader


def _retarget(value: Any) -> Any:
    if isinstance(value, Function):
        if value not in FUNCTIONS:  # upstream changed: scoring it by our functions could be wrong
            raise ValueError(f"lm-eval's code task names {value}, which gate has no sandboxed replacement for")
        return Function(FUNCTIONS[value])
    if isinstance(value, dict):
        return {key: _retarget(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_retarget(item) for item in value]
    return value


def dump(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
