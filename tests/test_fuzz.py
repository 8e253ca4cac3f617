"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may produce a 500."""

from __future__ import annotations

from itertools import product

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gate.app import create_app
from gate.settings import Settings
from tests.conftest import make_token

EXAMPLES_PER_OPERATION = 60  # derandomized: CI is reproducible; raise it locally to hunt


def test_no_input_gives_a_server_error(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    token = make_token(url, "fuzzer", "admin")
    # with a secret key, so that the webhook endpoint verifies signatures instead of answering "not configured"
    app = create_app(Settings(database_url=url, max_upload_bytes=1024 * 1024, secret_key="fuzz-server-key-0123456789"))
    with TestClient(app):  # runs the lifespan: migrations, baselines, reaper
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation, mode in product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                # a long-poll only slows the fuzzer down
                if case.path.endswith("/claim") and isinstance(case.body, dict):
                    case.body["wait_s"] = 0
                if case.path.endswith("/watch"):
                    case.query = {**(case.query or {}), "wait_s": 0}
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid ones
