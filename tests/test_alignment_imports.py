"""The alignment folder's arrows: its pure parts need numpy at most, nothing imports torch at module level, only the
OpenAI-server side speaks HTTP, only the server's parts (tables, routes, recording) know the web and the database,
and nothing reaches into the old tiers (gate.core, gate.store, gate.api, gate.web)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "gate" / "checks" / "alignment"
PURE = ("record.py", "probes.py", "metrics.py", "judge.py")
HEAVY = ("torch", "torch_npu", "transformers", "vllm")
OLD_TIERS = ("gate.core", "gate.store", "gate.api", "gate.web")
SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy")
SERVER = ("models.py", "endpoints.py", "recording.py", "schemas.py", "pages.py")
NO_HTTP = (*PURE, "execute.py", "sides.py")  # only the OpenAI-server side speaks HTTP


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def matches(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {name for name in names for prefix in prefixes if name == prefix or name.startswith(prefix + ".")}


@pytest.mark.parametrize("path", sorted(FOLDER.glob("*.py")), ids=lambda p: p.name)
def test_module_imports_point_one_way(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert not matches(imported(tree), OLD_TIERS)
    if path.name not in SERVER:
        assert not matches(imported(tree), SERVER_ONLY), f"{path.name} runs on workers, not only on the server"
    top_level = imported(
        ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], type_ignores=[])
    )
    assert not matches(top_level, HEAVY), f"{path.name} imports a heavy engine at module level"
    if path.name in NO_HTTP:
        assert not matches(imported(tree), ("httpx",))
    if path.name in PURE:
        assert not matches(imported(tree), HEAVY), f"{path.name} is pure but imports an engine"
