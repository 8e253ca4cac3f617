"""gate/ is laid out by concept, and its imports point one way.

Pure modules know nothing of HTTP or SQL; the worker never reaches the database; the spine knows check kinds
only through the registry (gate.checks.KINDS); and a check kind is its own folder plus one registry line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gate.checks import KINDS

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "gate"
FRAMEWORKS = ("fastapi", "starlette", "sqlalchemy", "httpx")

# Pure: verdicts and statistics, what a check reads and judges, run options, baselines files, notification rules.
PURE = (
    "gate/errors.py",
    "gate/thinking.py",
    "gate/verdicts/*.py",
    "gate/runs/options.py",
    "gate/baselines/files.py",
    "gate/checks/*/results.py",
    "gate/checks/*/profile.py",
    "gate/checks/*/judge.py",
    "gate/checks/*/spec.py",
    "gate/checks/*/report.py",
    "gate/checks/alignment/metrics.py",
    "gate/checks/alignment/record.py",
    "gate/checks/alignment/probes.py",
    "gate/checks/alignment/strip.py",
    "gate/checks/serving/serverlog.py",
    "gate/checks/serving/bench.py",
    "gate/checks/serving/curve.py",
    "gate/dashboard/chart.py",
    "gate/qualifications/plans.py",
    "gate/qualifications/verdict.py",
    "gate/qualifications/words.py",
    "gate/qualifications/markdown.py",
    "gate/qualifications/compare.py",
    "gate/notifications/commit_status.py",
    "gate/notifications/delivery.py",
    "gate/notifications/sealing.py",
    "gate/notifications/signatures.py",
    "gate/notifications/targets.py",
)
WORKER_ROOTS = ("gate/worker/*.py", "gate/checks/*/worker.py")
# What the server loads of each kind (its tables and routes) never starts or links an engine: those enter in the
# worker's processes only.
SERVER_ROOTS = ("gate/app.py", "gate/checks/*/models.py", "gate/checks/*/endpoints.py")
SERVER_FORBIDDEN = ("numpy", "torch", "transformers", "vllm", "lm_eval", "subprocess")
WORKER_FORBIDDEN = ("sqlalchemy", "fastapi", "starlette", "gate.db")
SPINE = (
    "gate/runs/**/*.py",
    "gate/baselines/**/*.py",
    "gate/verdicts/**/*.py",
    "gate/auth/**/*.py",
    "gate/notifications/**/*.py",
    "gate/worker/**/*.py",
    "gate/db.py",
)

# Server modules that still name the accuracy kind directly: lm-eval was gate's only check when they were
# written, and the worker protocol's upload, a run's detail and the dashboard read its files. Each goes behind the
# registry when a second kind needs the same place; the list only shrinks.
NAMES_A_KIND = {
    "gate/runs/service.py": {"gate.checks.accuracy.recording", "gate.checks.accuracy.results"},  # complete()
    "gate/runs/workers.py": {"gate.checks.accuracy.uploads"},  # POST /workers/runs/{id}/complete takes lm-eval files
    "gate/runs/schemas.py": {"gate.checks.accuracy.profile"},  # RunDetail: tasks the baseline does not gate
    "gate/dashboard/routes.py": {"gate.checks.accuracy.profile", "gate.checks.accuracy.queries"},  # samples browser
    "gate/dashboard/views.py": {"gate.checks.accuracy.judge", "gate.checks.accuracy.models"},  # compare, spreads
    "gate/cli/worker.py": {"gate.checks.accuracy.datasets"},  # --local-data: lm-eval task overrides
    "gate/cli/datasets.py": {"gate.checks.accuracy.mirror"},  # `gate datasets check`: lm-eval tasks in a mirror
}


def files(*patterns: str) -> list[Path]:
    found = sorted({path for pattern in patterns for path in ROOT.glob(pattern)})
    assert found, f"no file matches {patterns}"
    return found


def imports(path: Path, at_load: bool = False) -> set[str]:
    """Absolute names of the modules path imports; `from gate.runs import service` counts as gate.runs.service.

    at_load: only the statements at the module's top level, which run when it is imported (not a function's lazy
    import, nor an `if TYPE_CHECKING:` block)."""
    package = ["gate", *path.relative_to(GATE).parent.parts]
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in tree.body if at_load else ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            named = {f"{base}.{alias.name}" for alias in node.names}
            modules = {name for name in named if module_path(name)}
            names |= modules if modules == named else {*modules, base}  # `from package import module` names the module
    return names


def module_path(name: str) -> Path | None:
    """The file of a gate module (a package's __init__.py), or None for a name outside gate or not a module."""
    if name != "gate" and not name.startswith("gate."):
        return None
    relative = Path(*name.split("."))
    for candidate in (ROOT / relative.with_suffix(".py"), ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def kind_of(name: str) -> str | None:
    """The check kind a module name belongs to (gate.checks.<kind>...), or None."""
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["gate", "checks"] else None


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_registered_kind_has_its_parts() -> None:
    for kind, package in KINDS.items():
        assert package == f"gate.checks.{kind}"
        for part in ("models", "endpoints", "worker"):
            assert module_path(f"{package}.{part}"), f"{package} has no {part}.py"


@pytest.mark.parametrize("path", files(*PURE), ids=rel)
def test_pure_modules_import_no_framework_and_no_impure_gate_module(path: Path) -> None:
    pure = {rel(p) for p in files(*PURE)}
    for name in imports(path):
        assert not any(under(name, framework) for framework in FRAMEWORKS), f"{rel(path)} imports {name}"
        target = module_path(name)
        if target is not None and target.name != "__init__.py":
            assert rel(target) in pure, f"{rel(path)} imports {name}, which is not pure"


def test_the_worker_never_reaches_the_database() -> None:
    """The transitive closure of gate imports from the worker and each kind's worker part."""
    seen: dict[Path, Path | None] = {path: None for path in files(*WORKER_ROOTS)}
    todo = list(seen)
    while todo:
        path = todo.pop()
        for name in imports(path):
            bad = [forbidden for forbidden in WORKER_FORBIDDEN if under(name, forbidden)]
            chain = [rel(path)]
            parent = seen[path]
            while parent is not None:
                chain.append(rel(parent))
                parent = seen[parent]
            assert not bad, f"the worker reaches {name} through {' <- '.join(chain)}"
            target = module_path(name)
            if target is not None and target not in seen:
                seen[target] = path
                todo.append(target)
    assert ROOT / "gate/checks/accuracy/command.py" in seen  # the closure does reach through the registry's parts


def test_the_cli_loads_no_asyncio_database_layer() -> None:
    """Worker machines run `gate worker` from an environment of their own (vLLM's, the NPU's), which need not hold
    greenlet: the asyncio reads of the API server (db.async_reader) load SQLAlchemy's asyncio layer and asyncpg
    when made."""
    probe = "import sys, gate.cli; print(sorted({'sqlalchemy.ext.asyncio', 'asyncpg'} & set(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


def test_the_server_never_loads_an_engine_or_starts_a_process() -> None:
    """What importing the app loads: lazy imports inside functions are how the heavy dependencies enter."""
    seen = set(files(*SERVER_ROOTS))
    todo = list(seen)
    while todo:
        path = todo.pop()
        for name in imports(path, at_load=True):
            assert not any(under(name, heavy) for heavy in SERVER_FORBIDDEN), f"{rel(path)} loads {name} on the server"
            target = module_path(name)
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    assert ROOT / "gate/checks/alignment/spec.py" in seen  # submissions are checked on the server
    assert ROOT / "gate/checks/alignment/execute.py" not in seen


@pytest.mark.parametrize("path", files(*SPINE), ids=rel)
def test_the_spine_knows_kinds_only_through_the_registry(path: Path) -> None:
    allowed = NAMES_A_KIND.get(rel(path), set())
    for name in imports(path):
        assert kind_of(name) is None or name in allowed, f"{rel(path)} imports the check kind module {name}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_check_kinds_never_import_one_another(kind: str) -> None:
    for path in files(f"gate/checks/{kind}/**/*.py"):
        others = {name for name in imports(path) if kind_of(name) not in (None, kind)}
        assert not others, f"{rel(path)} imports another kind: {sorted(others)}"


def test_a_kind_is_named_only_in_its_folder_and_its_registry_line() -> None:
    """Adding a check kind touches its own folder and one registry line."""
    registry = GATE / "checks" / "__init__.py"
    for path in files("gate/**/*.py"):
        text = path.read_text()
        for kind in KINDS:
            if path.is_relative_to(GATE / "checks" / kind):
                continue
            mentions = [line for line in text.splitlines() if f"gate.checks.{kind}" in line]
            if path == registry:
                assert len(mentions) == 1, f"the registry names {kind} on {len(mentions)} lines, not one"
                continue
            allowed = NAMES_A_KIND.get(rel(path), set())
            named = {name for name in imports(path) if kind_of(name) == kind}
            assert named <= allowed, f"{rel(path)} names gate.checks.{kind}: {sorted(named - allowed)}"
            stray = [line for line in mentions if not line.lstrip().startswith(("from ", "import "))]
            assert not stray, f"{rel(path)} names gate.checks.{kind} outside an import: {stray}"
