"""deploy/: no cluster runs here. Every kustomization renders (`kubectl kustomize`) into manifests that pass the
Kubernetes API's schemas and say what gate needs; the Slurm script, run with a fake `srun`, starts the right workers.
Commands are checked by parsing them with `gate` itself."""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from fastapi.testclient import TestClient

from gate.app import create_app
from gate.cli import app
from gate.settings import Settings
from gate.worker import client, warm

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SBATCH = ROOT / "deploy" / "slurm" / "gate-worker.sbatch"
KUSTOMIZATIONS = sorted(path.parent.relative_to(K8S).as_posix() for path in K8S.rglob("kustomization.yaml"))
# the oldest Kubernetes still commonly run, and the newest the schemas know
K8S_VERSIONS = ("1.28", kubernetes_validate.latest_version())
SECRET_ENV = ("GATE_DATABASE_URL", "GATE_SECRET_KEY", "GATE_TOKEN", "POSTGRES_PASSWORD")
DRAIN_MARGIN_S = 30.0  # between the worker's longest drain and the kill


@functools.cache
def kustomize(folder: str | Path) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: these tests render deploy/k8s with `kubectl kustomize` (install kubectl)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S / folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return tuple(doc for doc in yaml.safe_load_all(rendered.stdout) if doc)


def one(folder: str, kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in kustomize(folder) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{folder} renders {len(found)} {kind} {name}"
    return found[0]


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {})
    return spec.get("template", {}).get("spec", {}).get("containers", [])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def gate_command(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The parameters a `gate ...` command line would run with, parsed and checked by gate's CLI without running it
    (an unknown option or a bad value raises); `env` is the process's environment (options read GATE_TOKEN)."""
    assert argv[0] == "gate", argv
    for name in [name for name in os.environ if name.startswith("GATE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    command: Any = typer.main.get_command(app)
    args = argv[1:]
    while hasattr(command, "commands"):  # down the sub-command path: `gate db upgrade`
        command, args = command.commands[args[0]], args[1:]
    return command.make_context(command.name, args).params


def drain_s(cancel_grace_s: float) -> float:
    """The longest a worker takes to drain after SIGTERM: stop a serving check's two processes, hand the run back
    (retried for a while), stop the warm engine and wait for its processes to go."""
    return 2 * cancel_grace_s + client.DRAIN_RETRY_S + warm.STOP_GRACE_S + warm.GONE_LIMIT_S


def test_the_kustomizations_are_the_ones_documented() -> None:
    assert KUSTOMIZATIONS == ["base", "overlays/bundled-postgres", "workers/ascend", "workers/nvidia"]
    readme = (ROOT / "README.md").read_text()
    assert all(f"deploy/k8s/{folder}" in readme for folder in KUSTOMIZATIONS)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_every_manifest_passes_the_kubernetes_schemas(folder: str, version: str) -> None:
    for manifest in kustomize(folder):
        try:
            kubernetes_validate.validate(manifest, version, strict=True)  # strict: an unknown field is an error
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{folder}: {manifest['kind']} {manifest['metadata']['name']}: {exc.message} at {exc.path}")


def test_the_api_runs_replicas_probed_on_a_path_the_app_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = one("base", "Deployment", "gate-api")
    assert api["spec"]["replicas"] >= 2
    [container] = containers(api)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    probes = [container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]]
    served = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'gate.db'}"))
    routes = {getattr(route, "path", None) for route in served.routes}
    with TestClient(served) as http:
        for probe in probes:
            assert probe["path"] in routes
            assert http.get(probe["path"]).status_code == 200
            assert probe["port"] in ports
    serve = gate_command(container["command"], {}, monkeypatch)
    assert serve["host"] == "0.0.0.0" and serve["port"] == ports["http"]
    service = one("base", "Service", "gate")
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_migrations_job_runs_gate_db_upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    [container] = containers(one("base", "Job", "gate-migrate"))
    assert container["command"] == ["gate", "db", "upgrade"]
    assert gate_command(container["command"], {}, monkeypatch) == {"revision": "head"}
    assert "secretKeyRef" in env_of(container)["GATE_DATABASE_URL"]["valueFrom"]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_secrets_come_from_secret_key_refs(folder: str) -> None:
    checked = 0
    for manifest in kustomize(folder):
        for container in containers(manifest):
            for name, variable in env_of(container).items():
                if name in SECRET_ENV:
                    assert "value" not in variable and variable["valueFrom"]["secretKeyRef"]["key"], variable
                    checked += 1
                assert "postgresql://" not in str(variable.get("value", "")), variable
    assert checked >= 1


def test_the_bundled_postgres_is_the_one_the_api_reaches() -> None:
    folder = "overlays/bundled-postgres"
    [postgres] = containers(one(folder, "StatefulSet", "gate-postgres"))
    assert one(folder, "Service", "gate-postgres")["spec"]["ports"][0]["port"] == 5432
    [api] = containers(one(folder, "Deployment", "gate-api"))
    ref = env_of(api)["GATE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    secret = one(folder, "Secret", ref["name"])  # the generator's hashed name, which kustomize put in the reference
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == "postgresql://gate:gate@gate-postgres:5432/gate"
    assert "secretKeyRef" in env_of(postgres)["POSTGRES_PASSWORD"]["valueFrom"]


POOLS = {  # folder: the Deployment, its device resource, the backend and label its worker serves
    "workers/ascend": ("gate-worker-ascend", "huawei.com/Ascend910", "vllm-ascend", "ascend910b"),
    "workers/nvidia": ("gate-worker-nvidia", "nvidia.com/gpu", "vllm", "nvidia"),
}


@pytest.mark.parametrize("folder", sorted(POOLS))
def test_each_worker_pool_requests_its_devices_and_drains_in_its_grace_period(
    folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, resource, backend, label = POOLS[folder]
    deployment = one(folder, "Deployment", name)
    [container] = containers(deployment)
    env = {key: "from-a-secret" if "valueFrom" in var else var["value"] for key, var in env_of(container).items()}
    worker = gate_command(container["command"], env, monkeypatch)
    assert worker["backend"] == backend and worker["label"] == [label]
    assert worker["server"] == "http://gate:8000" and worker["token"] == "from-a-secret"
    assert env_of(container)["GATE_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "gate-worker", "key": "token"}
    assert int(container["resources"]["limits"][resource]) == len(worker["devices"].split(","))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= drain_s(worker["cancel_grace_s"]) + DRAIN_MARGIN_S


def test_the_ascend_pool_has_the_model_cards_environment_and_driver_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker-ascend"]
    [container] = containers(one("workers/ascend", "Deployment", "gate-worker-ascend"))
    pod = one("workers/ascend", "Deployment", "gate-worker-ascend")["spec"]["template"]["spec"]
    env = {key: var.get("value") for key, var in env_of(container).items() if key != "GATE_TOKEN"}
    assert env == {key: value for key, value in compose["environment"].items() if key != "GATE_TOKEN"}
    host_paths = {volume["name"]: volume["hostPath"]["path"] for volume in pod["volumes"] if "hostPath" in volume}
    mounted = {host_paths[m["name"]]: m["mountPath"] for m in container["volumeMounts"] if m["name"] in host_paths}
    drivers = [volume.split(":") for volume in compose["volumes"] if volume.startswith(("/usr/local", "/etc"))]
    assert len(drivers) == 5
    assert all(mounted.get(host) == inside for host, inside in drivers), mounted


def test_the_documented_patch_renames_the_ascend_device_resource(tmp_path: Path) -> None:
    """README.md's patch, applied to the Ascend pool in an overlay of its own, as a cluster would."""
    readme = (ROOT / "README.md").read_text()
    blocks = [block.split("```")[0] for block in readme.split("```yaml\n")[1:]]
    [patch] = [block for block in blocks if "huawei.com~1Ascend910" in block]
    overlay = yaml.safe_load(patch)
    overlay["resources"] = [os.path.relpath(K8S / "workers" / "ascend", tmp_path)]  # kustomize takes no absolute one
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    [deployment] = kustomize(tmp_path)
    assert containers(deployment)[0]["resources"]["limits"] == {"huawei.com/npu": 2}


def sbatch(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str], dict]:
    """Run the sbatch script as Slurm would on the batch node, with a fake `srun` that records its arguments and
    environment. Returns the script's result, srun's argv and srun's environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$RECORD/argv"\nenv -0 > "$RECORD/env"\n')
    srun.chmod(0o755)
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "RECORD": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(SBATCH), *args], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    if not (tmp_path / "argv").exists():
        return result, [], {}
    argv = (tmp_path / "argv").read_text().split("\0")[:-1]
    environment = dict(entry.split("=", 1) for entry in (tmp_path / "env").read_text().split("\0") if "=" in entry)
    return result, argv, environment


def directives() -> list[str]:
    """The #SBATCH lines Slurm reads: those before the script's first command."""
    found = []
    for line in SBATCH.read_text().splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            break
        if line.startswith("#SBATCH "):
            found.append(line.removeprefix("#SBATCH "))
    return found


def test_the_sbatch_script_is_bash() -> None:
    checked = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_the_sbatch_script_starts_one_draining_worker_per_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, argv, env = sbatch(
        tmp_path, "--local-data", "gsm8k=/data/gsm8k", GATE_SERVER="http://gate.example:8000", GATE_TOKEN="t0ken"
    )
    assert result.returncode == 0, result.stderr
    at = argv.index("gate")
    assert "--ntasks-per-node=1" in argv[:at]
    assert "t0ken" not in argv and env["GATE_TOKEN"] == "t0ken"  # srun passes the environment on to the worker
    worker = gate_command(argv[at:], env, monkeypatch)
    assert worker["server"] == "http://gate.example:8000" and worker["token"] == "t0ken"
    assert worker["backend"] == "vllm-ascend" and worker["label"] == ["ascend910b"] and worker["devices"] == "0,1"
    assert worker["exit_when_idle_s"] == 600 and worker["local_data"] == ["gsm8k=/data/gsm8k"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker-ascend"]["environment"]
    assert all(env[key] == value for key, value in compose.items() if key != "GATE_TOKEN")
    assert "--ntasks-per-node=1" in directives()
    [signal] = [d for d in directives() if d.startswith("--signal=")]
    match = re.fullmatch(r"--signal=TERM@(\d+)", signal)  # to the job's steps (the workers), not the batch shell
    assert match and int(match[1]) >= drain_s(worker["cancel_grace_s"]) + DRAIN_MARGIN_S


def test_the_sbatch_script_takes_other_devices_and_idle_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, argv, env = sbatch(
        tmp_path, GATE_SERVER="http://g:8000", GATE_TOKEN="t", GATE_DEVICES="0,1,2,3", GATE_EXIT_WHEN_IDLE_S="60"
    )
    worker = gate_command(argv[argv.index("gate") :], env, monkeypatch)
    assert worker["devices"] == "0,1,2,3" and worker["exit_when_idle_s"] == 60
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == env["VLLM_ASCEND_RT_DEVICES"] == "0,1,2,3"


def test_the_sbatch_script_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    result, argv, _ = sbatch(tmp_path, GATE_SERVER="http://g:8000")
    assert result.returncode != 0 and "GATE_TOKEN" in result.stderr
    assert argv == []
