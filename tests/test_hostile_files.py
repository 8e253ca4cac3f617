"""Hostile lm-eval files: each is refused with a 4xx or stored exactly as written, never a 500, and an impossible
number never reaches a verdict. The starting point is a real lm-eval 0.4.7 MMLU file (a gated task)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

REAL = json.loads((Path(__file__).parent / "fixtures/lmeval/v0.4.7-mmlu-0shot-llama-3.2-3b.json").read_text())
BASELINE = "qwen3-4b-thinking-2507"


def post(client: TestClient, headers: dict, content: bytes | str) -> Any:
    files = [("results", ("results_2026-11-25T10-00-00.json", content, "application/json"))]
    return client.post("/api/v1/runs/import", files=files, data={"baseline": BASELINE}, headers=headers)


def with_value(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(REAL)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


IMPOSSIBLE = [
    (("results", "mmlu", "acc,none"), 1.7, "not a share in [0, 1]"),
    (("results", "mmlu", "acc,none"), -0.5, "not a share in [0, 1]"),
    (("results", "mmlu", "acc,none"), 1e300, "not a share in [0, 1]"),
    (("results", "mmlu", "acc_stderr,none"), -3, "cannot be negative"),
    (("n-samples", "mmlu_anatomy"), {"original": -135, "effective": -135}, "impossible count"),
    (("results", "../../../etc/passwd"), {"acc,none": 0.5}, "not an lm-eval task name"),
    (("results", 'a"; filename="evil.html'), {"acc,none": 0.5}, "not an lm-eval task name"),
    (("results", "mm\x00lu"), {"acc,none": 0.5}, "not an lm-eval task name"),
    (("results", "<script>"), {"acc,none": 0.5}, "not an lm-eval task name"),
]


@pytest.mark.parametrize(("path", "value", "says"), IMPOSSIBLE, ids=[f"{p[-1]}={v!r}" for p, v, _ in IMPOSSIBLE])
def test_impossible_numbers_and_names_are_refused(client: TestClient, auth: dict, path, value, says: str) -> None:
    response = post(client, auth["submit"], json.dumps(with_value(path, value)))
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert client.get("/api/v1/runs", headers=auth["read"]).json()["runs"] == []


def test_repeated_keys_and_deep_nesting_are_refused(client: TestClient, auth: dict) -> None:
    text = json.dumps(REAL)
    repeated = text.replace('"acc,none": 0.5410910126762569', '"acc,none": 0.9, "acc,none": 0.5410910126762569', 1)
    assert repeated != text
    response = post(client, auth["submit"], repeated)
    assert response.status_code == 422 and "repeats the key 'acc,none'" in response.json()["detail"]
    deep = post(client, auth["submit"], "[" * 100_000 + "]" * 100_000)
    assert deep.status_code == 422 and "nested too deeply" in deep.json()["detail"]


HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=30),
    st.sampled_from(["\x00", "N/A", "../x", "a\r\nb", "<b>", "", "5", "true"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
PATHS = st.sampled_from(
    [
        ("results", "mmlu", "acc,none"),
        ("results", "mmlu", "acc_stderr,none"),
        ("results", "mmlu_anatomy", "acc,none"),
        ("n-samples", "mmlu_anatomy", "effective"),
        ("n-samples", "mmlu_anatomy"),
        ("n-shot", "mmlu_anatomy"),
        ("group_subtasks", "mmlu"),
        ("config", "model_args"),
        ("config", "model"),
        ("config", "limit"),
        ("model_name",),
        ("versions", "mmlu"),
        ("configs", "mmlu_anatomy"),
        ("results",),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, value=HOSTILE)
@example(path=("results", "mmlu_anatomy", "acc,none"), value=2**53 + 1)  # no float holds it: refused, not rounded
@example(path=("results", "mmlu", "acc_stderr,none"), value=1.3407807929942597e154)  # squared, no float holds it
def test_hostile_files_are_refused_or_stored_exactly(client: TestClient, auth: dict, path, value) -> None:
    document = with_value(path, value)
    response = post(client, auth["submit"], json.dumps(document))
    assert response.status_code in (201, 413, 422), response.text
    if response.status_code != 201:
        return
    run = response.json()
    written = {(task, key): v for task, m in document["results"].items() for key, v in m.items() if "," in key}
    for score in run["scores"]:
        assert written[(score["task"], score["metric"])] == score["value"]  # stored exactly as the file says
    for verdict in run["verdicts"]:
        assert 0 <= verdict["details"]["candidate"] <= 1  # an impossible number never reaches a verdict
