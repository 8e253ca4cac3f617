"""The registry of check kinds: kind -> its package, named as a string so the worker never imports the server.

Each package holds `models` (its tables), `endpoints` (a `router`) and `worker` (what a worker executes for a
claimed run of that kind), beside its pure reading and judging modules.
"""

from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

KINDS = {
    "accuracy": "gate.checks.accuracy",
    "alignment": "gate.checks.alignment",
    "serving": "gate.checks.serving",
    "smoke": "gate.checks.smoke",
}


def part(kind: str, module: str) -> ModuleType:
    """One conventional module of a kind's package, e.g. part("accuracy", "worker")."""
    return import_module(f"{KINDS[kind]}.{module}")


def has_part(kind: str, module: str) -> bool:
    """Whether a registered kind's package holds an optional module: `pages` (its section of the run page,
    templates/checks/<kind>/run.html) or `cli` (`commands`: name -> typer command)."""
    return kind in KINDS and find_spec(f"{KINDS[kind]}.{module}") is not None
