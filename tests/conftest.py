"""Shared fixtures: a database per test on SQLite and Postgres, an app on it, tokens, real lm-eval outputs."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gate import migrate
from gate.app import create_app
from gate.auth import tokens
from gate.baselines import service as stored_baselines
from gate.baselines.files import read_dir
from gate.db import make_engine, make_session_factory, transaction
from gate.notifications import inbound as webhooks
from gate.notifications import signatures
from gate.settings import Settings

POSTGRES_URL = os.environ.get("GATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"
GSM8K_DIR = Path(os.environ.get("GATE_GSM8K_DIR", SHARED / "data" / "gsm8k"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a Postgres schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gate.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh Postgres schema of its own (a deployment's), dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, lease_s=30, reaper_interval_s=0.5)


@pytest.fixture
def sessions(database_url: str):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory, write=True) as session:
        stored_baselines.load(session, read_dir(Settings().baselines_dir))
    yield factory
    engine.dispose()


def make_token(database_url: str, name: str, *scopes: str) -> str:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine), write=True) as session:
        secret = tokens.create(session, name, list(scopes))
    engine.dispose()
    return secret


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def auth(client: TestClient, settings: Settings) -> dict[str, dict[str, str]]:
    """Authorization headers per scope."""
    return {
        scope: {"Authorization": f"Bearer {make_token(settings.database_url, scope, scope)}"}
        for scope in ("read", "submit", "worker", "admin")
    }


# --- real lm-eval outputs, made once per test session --------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gate.worker.tiny_model import build

    return build(tmp_path_factory.mktemp("tiny-qwen3"), GSM8K_DIR)


@pytest.fixture(scope="session")
def gsm8k_overrides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gate.checks.accuracy.datasets import write_overrides

    folder = tmp_path_factory.mktemp("local-data")
    return write_overrides({"gsm8k": GSM8K_DIR}, folder / "tasks", folder / "mirror").include_path


@pytest.fixture(scope="session")
def tiny_smoke_run(tiny_model: Path, gsm8k_overrides: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real lm-eval `hf` run of the random tiny Qwen3 on 8 GSM8K questions (a smoke run: limit)."""
    from tests.lmeval_runs import run_lm_eval

    args = [
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model},dtype=float32",
        "--include_path",
        str(gsm8k_overrides),
        "--tasks",
        "gsm8k",
        "--num_fewshot",
        "5",
        "--limit",
        "8",
        "--batch_size",
        "8",
        "--gen_kwargs",
        "max_gen_toks=32",
    ]
    return run_lm_eval(args, tmp_path_factory.mktemp("tiny-run"))


def _gold_run(correct: int, tiny_model: Path, overrides: Path, out: Path):
    from tests.lmeval_runs import gold_server, run_lm_eval

    with gold_server(GSM8K_DIR, correct) as server:
        args = [
            "--model",
            "local-completions",
            "--model_args",
            f"model=gold,base_url={server.url},tokenizer={tiny_model},tokenizer_backend=huggingface,"
            "num_concurrent=8,max_retries=1,tokenized_requests=False",
            "--include_path",
            str(overrides),
            "--tasks",
            "gsm8k",
            "--num_fewshot",
            "5",
        ]
        return run_lm_eval(args, out)


@pytest.fixture(scope="session")
def gold_run_927(tiny_model: Path, gsm8k_overrides: Path, tmp_path_factory: pytest.TempPathFactory):
    """A full real GSM8K run scoring 927/1319 = 0.7028 (within 2 pp of 0.703)."""
    return _gold_run(927, tiny_model, gsm8k_overrides, tmp_path_factory.mktemp("gold-927"))


@pytest.fixture(scope="session")
def gold_run_880(tiny_model: Path, gsm8k_overrides: Path, tmp_path_factory: pytest.TempPathFactory):
    """A full real GSM8K run scoring 880/1319 = 0.6672 (3.6 pp below 0.703)."""
    return _gold_run(880, tiny_model, gsm8k_overrides, tmp_path_factory.mktemp("gold-880"))


WEBHOOK_KEY = "test-server-key-0123456789"  # GATE_SECRET_KEY of the webhook tests
WEBHOOK_RUN = {
    "model": "acme/port",
    "baseline": "qwen3-4b-thinking-2507",
    "tasks": ["gsm8k"],
    "backend": "hf",
    "ci": {
        "repository": "acme/port",
        "commit": "0123abc0123abc0123abc0123abc0123abc0123a",
        "branch": "main",
        "pipeline_url": "https://ci/1",
    },
}


def webhook_settings(database_url: str, **overrides: object) -> Settings:
    """Settings that take webhooks and send notifications fast (a 0.2 s retry schedule) to loopback receivers."""
    defaults: dict[str, object] = {
        "secret_key": WEBHOOK_KEY,
        "callback_allowed_hosts": "127.0.0.1,localhost",
        "callback_allow_private": True,
        "delivery_poll_s": 0.1,
        "delivery_schedule_s": "0.2,0.2,0.2,0.2",
    }
    return Settings(database_url=database_url, **{**defaults, **overrides})


@pytest.fixture
def app_client(database_url: str) -> Iterator[tuple[TestClient, dict]]:
    """An app with webhook_settings, with a token per scope."""
    with TestClient(create_app(webhook_settings(database_url))) as client:
        headers = {
            s: {"Authorization": f"Bearer {make_token(database_url, s, s)}"}
            for s in ("read", "submit", "worker", "admin")
        }
        yield client, headers


def add_source(client: TestClient, name: str, kind: str) -> bytes:
    """A CI source; returns its secret."""
    with transaction(client.app.state.sessions, write=True) as session:
        source = webhooks.create_source(session, name, kind)
        return signatures.derive_secret(WEBHOOK_KEY, source.name, source.nonce)


def finish(client: TestClient, headers: dict, run_id: int, lmeval_run: tuple[Path, list[Path]]) -> None:
    """What a worker does: claim the run and upload a real lm-eval output."""
    lease = client.post(
        "/api/v1/workers/claim", json={"name": "w", "backend": "hf", "wait_s": 0}, headers=headers["worker"]
    ).json()
    assert lease["run_id"] == run_id
    results, samples = lmeval_run
    files = [("results", (results.name, results.read_bytes()))] + [
        ("samples", (s.name, s.read_bytes())) for s in samples
    ]
    done = client.post(
        f"/api/v1/workers/runs/{run_id}/complete",
        data={"lease": lease["lease"]},
        files=files,
        headers=headers["worker"],
    )
    assert done.status_code == 200, done.text


def wait_until(condition, timeout: float = 15):
    """The first truthy value of condition(), polled every 50 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise TimeoutError
