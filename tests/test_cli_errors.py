"""Every command answers bad input with one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port


def gate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate.cli", *args],
        cwd=cwd,
        env={**os.environ, "GATE_DATABASE_URL": f"sqlite:///{cwd / 'gate.db'}", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def bad_yaml(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "broken.yaml").write_text("name: [unclosed\n")
    return {"GATE_BASELINES_DIR": str(folder)}


CASES = [
    ("db upgrade, Postgres unreachable", ["db", "upgrade"],
     {"GATE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}, "error: cannot use the database at "),
    ("db upgrade, bad URL scheme", ["db", "upgrade"], {"GATE_DATABASE_URL": "mysql+nosuch://h/db"},
     "error: GATE_DATABASE_URL is not a database URL gate can use"),
    ("db upgrade, unknown revision", ["db", "upgrade", "--revision", "nope"], {},
     "error: the migration failed: Can't locate revision identified by 'nope'"),
    ("baselines load, missing folder", ["baselines", "load"], {"GATE_BASELINES_DIR": "/no/such"},
     "error: the baselines folder /no/such does not exist"),
    ("baselines load, bad YAML", ["baselines", "load"], bad_yaml, "error: "),
    ("token create, unknown scope", ["token", "create", "--name", "x", "--scope", "root"], {}, "error: "),
    ("token revoke, unknown name", ["token", "revoke", "nobody"], {}, "error: "),
    ("submit, server away", ["submit", "--server", "http://127.0.0.1:{port}", "--token", "t", "--model", "/m",
     "--baseline", "qwen3-4b-thinking-2507"], {}, "error: "),
    ("import, no such file", ["import", "/no/such/results.json", "--server", "http://127.0.0.1:{port}",
     "--token", "t"], {}, "error: "),
    ("webhooks create-source without a server key", ["webhooks", "create-source", "--name", "s", "--kind",
     "github"], {"GATE_SECRET_KEY": ""}, "error: "),
    ("worker, --once with --max-runs 3", ["worker", "--server", "http://127.0.0.1:{port}", "--token", "t",
     "--backend", "hf", "--once", "--max-runs", "3"], {},
     "error: Invalid value for --once: it means --max-runs 1; give one of the two"),
    ("a bad GATE_ variable", ["db", "upgrade"], {"GATE_LEASE_S": "soon"}, "error: bad configuration: GATE_LEASE_S"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "args", "env", "starts"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_sentence(what: str, args: list[str], env, starts: str, tmp_path: Path) -> None:
    environment = env(tmp_path) if callable(env) else env
    port = str(free_port())
    result = gate(tmp_path, *(a.replace("{port}", port) for a in args), **environment)
    assert result.returncode == 2, (what, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = gate(tmp_path, "--debug", "db", "upgrade", "--revision", "nope")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_help_is_plain_and_whole() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gate.cli", "worker", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--openai-tokenizer " in result.stdout  # not cut at 80 columns
    assert "╭" not in result.stdout  # plain help, not rich panels
    assert not re.search(r"<(bool|str|list\[str\]|path|float)>", result.stdout), result.stdout  # metavars are words
