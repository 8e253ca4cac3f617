"""No Docker engine runs here: check that every command docker-compose.yml runs is a real `gate` command."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from gate.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_every_compose_command_exists() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = [s["command"] for s in services.values() if "command" in s]
    assert len(commands) == 3
    runner = CliRunner()
    for command in commands:
        assert command[0] == "gate"
        # --help after the sub-command path checks it exists and parses its options' names
        path = [part for part in command[1:] if not part.startswith("-")][:2]
        result = runner.invoke(app, [*path[: 2 if path[0] == "db" else 1], "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in (part.split("=")[0] for part in command[1:] if part.startswith("--")):
            assert option in result.output, (command, option)


def test_ascend_worker_has_the_model_card_environment() -> None:
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker-ascend"]
    env = worker["environment"]
    assert env["TASK_QUEUE_ENABLE"] == "1"
    assert env["PYTORCH_NPU_ALLOC_CONF"] == "expandable_segments:True"
    assert env["VLLM_ASCEND_RT_DEVICES"] == "0,1"
    assert "/dev/davinci_manager" in worker["devices"]
    assert any("/usr/local/Ascend/driver" in v for v in worker["volumes"])


def test_dockerfile_cmd_is_a_gate_command() -> None:
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert '"gate", "serve"' in cmd
