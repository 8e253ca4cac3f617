"""The rooms of gate/ import one way: core knows nothing of HTTP or SQL; the worker never touches the store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATE = Path(__file__).resolve().parents[1] / "gate"
FORBIDDEN = {
    "core": (
        "fastapi",
        "starlette",
        "sqlalchemy",
        "httpx",
        "gate.store",
        "gate.api",
        "gate.web",
        "gate.worker",
        "gate.cli",
    ),
    "store": ("fastapi", "starlette", "httpx", "gate.api", "gate.web", "gate.worker", "gate.cli"),
    "worker": ("sqlalchemy", "fastapi", "gate.store", "gate.api", "gate.web", "gate.cli"),
    "api": ("gate.web", "gate.worker", "gate.cli"),
    "web": ("gate.worker", "gate.cli"),
}


def imports(path: Path) -> set[str]:
    """Absolute names of the modules path imports; `from ..store import runs` counts as gate.store.runs."""
    package = ["gate", *path.relative_to(GATE).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            names |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_imports_point_one_way(room: str) -> None:
    files = sorted((GATE / room).rglob("*.py"))
    assert files
    for path in files:
        bad = {
            name
            for name in imports(path)
            for prefix in FORBIDDEN[room]
            if name == prefix or name.startswith(prefix + ".")
        }
        assert not bad, f"{path.relative_to(GATE)} imports {sorted(bad)}"
