"""The vLLM side of an alignment probe: reading vLLM's answers (always), and the real engine and OpenAI server of
vLLM's CPU build against a transformers forward pass on the tiny Qwen3 (marked vllm: GATE_VLLM_PYTHON)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gate.checks.alignment import vllm_side
from gate.checks.alignment.vllm_side import SideError
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
TOP_K = 24  # above vLLM's default max_logprobs (20): the engine raises it itself, the server is started with it
# The engine's model runs in the worker processes vLLM starts, which re-import the main module: hence the guard.
DRIVER = """import json, sys
from gate.checks.alignment import vllm_side
if __name__ == "__main__":
    spec = json.loads(open(sys.argv[1]).read())
    open(sys.argv[2], "w").write(json.dumps(vllm_side.run(spec)))
"""


# ---- reading vLLM's answers: shapes as vLLM 0.32.0 returns them, cut to top_k 2 ----


def test_prompt_logprobs_become_predictions_of_the_next_token() -> None:
    prompt = [None, {7: (-1.5, 2), 3: (-0.5, 1)}, {9: (-0.25, 1), 4: (-2.0, 2)}]
    found = vllm_side.positions([5, 7, 9], "text", prompt, None, 2)
    assert found == [
        {"token": 7, "logprob": -1.5, "top": [[3, -0.5], [7, -1.5]]},
        {"token": 9, "logprob": -0.25, "top": [[9, -0.25], [4, -2.0]]},
    ]


def test_a_next_token_probe_ends_with_the_unknown_next_token() -> None:
    prompt = [None, {7: (-1.5, 2), 3: (-0.5, 1)}]
    found = vllm_side.positions([5, 7], "next_token", prompt, {11: (-0.125, None), 12: (-3.0, None)}, 2)
    assert found[-1] == {"token": -1, "logprob": None, "top": [[11, -0.125], [12, -3.0]]}
    assert len(found) == 2


def test_an_actual_token_outside_the_top_k_is_scored_but_not_listed() -> None:
    # vLLM adds the actual token to the top-k when it ranks lower (k + 1 entries); `rank` is its place in the vocabulary
    prompt = [None, {7: (-6.0, 40), 3: (-0.5, 1), 8: (-1.0, 2)}]
    assert vllm_side.positions([5, 7], "text", prompt, None, 2) == [
        {"token": 7, "logprob": -6.0, "top": [[3, -0.5], [8, -1.0]]}
    ]


def recorded_answer() -> dict[str, Any]:
    """A /v1/completions answer of vLLM 0.32.0 to completion_request([5, 7], top_k=2), the texts shortened."""
    return {
        "choices": [
            {
                "index": 0,
                "text": "x",
                "logprobs": {
                    "text_offset": [0],
                    "token_logprobs": [-0.125],
                    "tokens": ["token_id:11"],
                    "top_logprobs": [{"token_id:11": -0.125, "token_id:12": -3.0}],
                },
                "finish_reason": "length",
                "prompt_logprobs": [
                    None,
                    {
                        "7": {"logprob": -6.0, "rank": 40, "decoded_token": "a"},
                        "3": {"logprob": -0.5, "rank": 1, "decoded_token": "b"},
                        "8": {"logprob": -1.0, "rank": 2, "decoded_token": "c"},
                    },
                ],
            }
        ]
    }


def test_a_recorded_server_answer_reads_as_token_ids() -> None:
    assert vllm_side.parse_completion(recorded_answer(), [5, 7], "next_token", 2) == [
        {"token": 7, "logprob": -6.0, "top": [[3, -0.5], [8, -1.0]]},
        {"token": -1, "logprob": None, "top": [[11, -0.125], [12, -3.0]]},
    ]


def test_bad_server_answers_are_one_sentence() -> None:
    answer = recorded_answer()
    del answer["choices"][0]["prompt_logprobs"]
    with pytest.raises(SideError, match="no choices"):
        vllm_side.parse_completion(answer, [5, 7], "text", 2)
    answer = recorded_answer()
    answer["choices"][0]["logprobs"]["top_logprobs"] = [{"x": -0.1, "y": -0.2}]  # strings: token ids not asked for
    with pytest.raises(SideError, match="return_tokens_as_token_ids"):
        vllm_side.parse_completion(answer, [5, 7], "next_token", 2)
    with pytest.raises(SideError, match="no logprob for token 9 at position 1"):
        vllm_side.parse_completion(recorded_answer(), [5, 9], "text", 2)
    with pytest.raises(SideError, match="scored 2 positions of a 3-token text"):
        vllm_side.parse_completion(recorded_answer(), [5, 7, 9], "text", 2)
    with pytest.raises(SideError, match="fewer than top_k 5"):
        vllm_side.parse_completion(recorded_answer(), [5, 7], "text", 5)


def test_an_unreachable_server_is_one_sentence() -> None:
    spec = {
        "backend": "openai",
        "model": "tiny",
        "dtype": "float32",
        "device": "cpu",
        "top_k": 20,
        "texts": [{"name": "a", "kind": "text", "token_ids": [1, 2]}],
        "engine_args": {"base_url": f"http://127.0.0.1:{free_port()}"},
    }
    with pytest.raises(SideError, match=r"^the vLLM server at http://127\.0\.0\.1:\d+ did not answer"):
        vllm_side.run(spec)
    with pytest.raises(SideError, match=r"needs engine_args\.base_url"):
        vllm_side.run({**spec, "engine_args": {}})


def test_the_side_environment_per_backend_and_device() -> None:
    cpu = vllm_side.environment("vllm", "cpu")
    assert cpu["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert cpu["HF_HUB_OFFLINE"] == "1"
    assert vllm_side.environment("vllm", "cuda:1")["CUDA_VISIBLE_DEVICES"] == "1"
    ascend = vllm_side.environment("vllm-ascend", "npu:0,1")
    assert {k: ascend[k] for k in ascend if k not in cpu} == {
        "TASK_QUEUE_ENABLE": "1",
        "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True",
        "ASCEND_RT_VISIBLE_DEVICES": "0,1",
        "VLLM_ASCEND_RT_DEVICES": "0,1",
    }
    assert "ASCEND_RT_VISIBLE_DEVICES" not in vllm_side.environment("vllm-ascend", "npu")
    with pytest.raises(ValueError, match="runs on an NPU"):
        vllm_side.environment("vllm-ascend", "cpu")
    with pytest.raises(ValueError, match="by number"):
        vllm_side.environment("vllm-ascend", "npu:0;rm")
    with pytest.raises(ValueError, match="unknown vLLM backend"):
        vllm_side.environment("hf", "cpu")


def test_engine_arguments_keep_the_spec_and_add_what_a_probe_needs() -> None:
    spec = {"model": "/m", "dtype": "bfloat16", "top_k": 32, "engine_args": {"max_model_len": 512}}
    assert vllm_side.engine_kwargs(spec) == {
        "model": "/m",
        "dtype": "bfloat16",
        "max_model_len": 512,
        "max_logprobs": 32,
        "logprobs_mode": "raw_logprobs",
    }


# ---- the real vLLM CPU build ----


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    return python


@pytest.fixture(scope="module")
def probe_texts(tiny_model: Path) -> list[dict[str, Any]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 plus 3?"}, {"role": "assistant", "content": "5"}], tokenize=False
    )
    texts = [
        ("capital", "next_token", "The capital of France is"),
        ("water", "text", "Water is composed of two hydrogen atoms and one oxygen atom, bound together."),
        ("chat", "text", chat),  # <|im_start|> and <|im_end|> inside the text
    ]
    return [
        {"name": name, "kind": kind, "token_ids": tokenizer(text, add_special_tokens=False).input_ids}
        for name, kind, text in texts
    ]


def side_spec(tiny_model: Path, texts: list[dict[str, Any]], backend: str, **engine_args: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        "model": str(tiny_model),
        "dtype": "float32",
        "device": "cpu",
        "top_k": TOP_K,
        "texts": texts,
        "engine_args": engine_args,
    }


@pytest.fixture(scope="module")
def engine_record(
    vllm_python: str, tiny_model: Path, probe_texts: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The engine side, run as the worker runs it: the vLLM environment's python in a subprocess."""
    work = tmp_path_factory.mktemp("vllm-engine")
    (work / "driver.py").write_text(DRIVER)
    spec = side_spec(tiny_model, probe_texts, "vllm", max_model_len=512, enforce_eager=True)
    (work / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, **vllm_side.environment("vllm", "cpu"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [vllm_python, str(work / "driver.py"), str(work / "spec.json"), str(work / "out.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((work / "out.json").read_text())


def hf_logprobs(tiny_model: Path, token_ids: list[int]) -> Any:
    """transformers' float32 log-softmax over the vocabulary at every prompt position."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([token_ids])).logits[0].float(), dim=-1)


@pytest.mark.vllm
def test_engine_prompt_logprobs_match_transformers(
    engine_record: dict[str, Any],
    tiny_model: Path,
    probe_texts: list[dict[str, Any]],
) -> None:
    assert engine_record["full_logits"] is False and engine_record["top_k"] == TOP_K
    worst, outside_top_k = 0.0, 0
    for text, record in zip(probe_texts, engine_record["texts"], strict=True):
        ids = text["token_ids"]
        assert record["token_ids"] == ids
        reference = hf_logprobs(tiny_model, ids)
        predicted = ids[1:] + [-1] * (text["kind"] == "next_token")
        assert [p["token"] for p in record["positions"]] == predicted
        for j, position in enumerate(record["positions"]):
            top = [int(token) for token, _ in position["top"]]
            assert len(top) == TOP_K
            assert top[0] == int(reference[j].argmax())
            for token, logprob in position["top"]:
                worst = max(worst, abs(logprob - float(reference[j, int(token)])))
            if position["token"] >= 0:
                worst = max(worst, abs(position["logprob"] - float(reference[j, position["token"]])))
                outside_top_k += position["token"] not in top
    assert worst < 1e-3, worst  # measured 9.5e-7 (2026-11-25, vLLM 0.32.0 CPU, float32): one float32 step
    assert outside_top_k > 0  # a random model ranks most actual tokens low: vLLM scored them all the same


@pytest.fixture(scope="module")
def vllm_server(vllm_python: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI-compatible server on loopback, serving the tiny model as `tiny`."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    argv = [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model)]
    argv += ["--served-model-name", "tiny", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"]
    argv += ["--max-logprobs", str(TOP_K), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **vllm_side.environment("vllm", "cpu"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        else:
            raise TimeoutError(f"vLLM's server was not healthy after 240 s: {log.read_text()[-3000:]}")
        yield base
    finally:
        process.terminate()
        process.wait(60)


@pytest.mark.vllm
def test_server_gives_the_engines_numbers(
    vllm_server: str,
    engine_record: dict[str, Any],
    tiny_model: Path,
    probe_texts: list[dict[str, Any]],
) -> None:
    spec = side_spec(tiny_model, probe_texts, "openai", base_url=vllm_server, served_model_name="tiny")
    served = vllm_side.run(spec)
    worst = 0.0
    for by_engine, by_server in zip(engine_record["texts"], served["texts"], strict=True):
        assert [p["token"] for p in by_server["positions"]] == [p["token"] for p in by_engine["positions"]]
        for a, b in zip(by_engine["positions"], by_server["positions"], strict=True):
            assert [t for t, _ in a["top"]] == [t for t, _ in b["top"]]
            if a["token"] >= 0:
                worst = max(worst, abs(a["logprob"] - b["logprob"]))
            worst = max(worst, *(abs(x - y) for (_, x), (_, y) in zip(a["top"], b["top"], strict=True)))
    assert worst < 1e-5, worst  # measured 0.0: one engine; batching (3 texts vs 1 a request) changed nothing
