"""The generating process's parts: reading a model's configuration files as transformers 4 and 5 write them, the
server's chat answers, the hf penalties, the sampling a generation_config.json chooses, and its exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gate.checks.smoke import generate, spec
from tests import smoke_models


def write(folder: Path, config: dict[str, Any], generation: dict[str, Any] | None = None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if generation is not None:
        (folder / "generation_config.json").write_text(json.dumps(generation))
    return str(folder)


def test_the_cards_config_as_transformers_4_wrote_it(tmp_path: Path) -> None:
    # Qwen3-4B-Thinking-2507's config.json: rope_theta at the top level, torch_dtype
    card = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "torch_dtype": "bfloat16",
        "hidden_size": 2560, "intermediate_size": 9728, "num_attention_heads": 32, "num_key_value_heads": 8,
        "num_hidden_layers": 36, "vocab_size": 151936, "max_position_embeddings": 262144, "rope_theta": 5000000,
        "rope_scaling": None, "rms_norm_eps": 1e-06, "tie_word_embeddings": True, "head_dim": 128,
    }  # fmt: skip
    generation = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "eos_token_id": [151645, 151643]}
    found = generate.model_config(write(tmp_path / "card", card, generation))
    assert found == {
        "config": {
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "dtype": "bfloat16", "hidden_size": 2560,
            "intermediate_size": 9728, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 36,
            "vocab_size": 151936, "max_position_embeddings": 262144, "rope_theta": 5000000, "rms_norm_eps": 1e-06,
            "tie_word_embeddings": True,
        },
        "generation_config": generation,
    }  # fmt: skip


def test_rope_theta_where_transformers_5_and_multimodal_files_keep_it(tmp_path: Path) -> None:
    nested = {"dtype": "float32", "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}
    assert generate.model_config(write(tmp_path / "v5", nested))["config"]["rope_theta"] == 10000.0  # type: ignore[index]
    per_layer = {"rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}}
    assert generate.model_config(write(tmp_path / "layers", per_layer))["config"]["rope_theta"] == 1e6  # type: ignore[index]
    scaled = {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}}
    assert generate.model_config(write(tmp_path / "yarn", scaled))["config"]["rope_theta"] == 1e6  # type: ignore[index]
    multimodal = {"architectures": ["Qwen3VLForConditionalGeneration"], "text_config": {"hidden_size": 2048}}
    found = generate.model_config(write(tmp_path / "vl", multimodal))
    assert found is not None and found["config"]["hidden_size"] == 2048 and found["generation_config"] is None
    assert generate.model_config(str(tmp_path / "nowhere")) is None
    assert generate.model_config(None) is None


def test_a_chat_answer_becomes_an_output() -> None:
    # vLLM 0.32's /v1/chat/completions answer, shortened
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.", "reasoning": None},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
    }  # fmt: skip
    assert generate.parse_chat(answer, "What is the capital of France?", False) == {
        "prompt": "What is the capital of France?",
        "text": "Paris.",
        "reasoning": None,
        "answer": "Paris.",
        "finish_reason": "stop",
        "prompt_tokens": 14,
        "completion_tokens": 3,
    }


@pytest.mark.parametrize(
    ("opened", "text"),
    [(True, "France's capital.\n</think>\n\nParis."), (False, "<think>France's capital.\n</think>\n\nParis.")],
)
def test_a_servers_reasoning_parser_split_is_joined_again(opened: bool, text: str) -> None:
    message = {"content": "\n\nParis.", "reasoning_content": "France's capital.\n"}  # older vLLM's field name
    answer = {
        "choices": [{"message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9},
    }
    output = generate.parse_chat(answer, "q", opened)
    assert (output["text"], output["reasoning"], output["answer"]) == (text, "France's capital.", "Paris.")


def test_a_strange_answer_is_one_sentence() -> None:
    with pytest.raises(generate.GenerationFailed) as failed:
        generate.parse_chat({"choices": []}, "q", False)
    assert str(failed.value).startswith("the server's answer has no choices[0].message and usage:")


def test_the_chat_request_names_every_parameter_so_the_server_fills_none() -> None:
    sampling = spec.effective(spec.check({"model": "m", "sampling": {"seed": 3}})["sampling"], {"top_k": 20})
    body = generate.chat_request("tiny", "hi", sampling)
    assert body == {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": 1.0,
        "top_k": 20,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
        "seed": 3,
    }


def test_presence_and_frequency_penalties_count_generated_tokens_only() -> None:
    import torch

    process = generate.penalties(prompt_len=2, presence=0.5, frequency=0.25)
    ids = torch.tensor([[5, 7, 5, 5, 3]])  # prompt 5, 7; generated 5, 5, 3
    scores = process(ids, torch.zeros(1, 8))
    assert scores[0].tolist() == [0.0, 0.0, 0.0, -0.75, 0.0, -1.0, 0.0, 0.0]


def test_a_generation_config_top_k_of_1_makes_sampling_greedy(tiny_model: Path, tmp_path: Path) -> None:
    """The file's top_k reaches transformers: sampling at 0.7 from the one most likely token is greedy decoding."""
    greedy = smoke_models.real_report(str(tiny_model), temperature=0.0)
    narrowed = tmp_path / "top-k-1"
    shutil.copytree(tiny_model, narrowed)
    config = json.loads((tiny_model / "generation_config.json").read_text())
    (narrowed / "generation_config.json").write_text(json.dumps({**config, "top_k": 1}))
    sampled = smoke_models.real_report(str(narrowed))
    assert sampled["sampling"]["top_k"] == 1 and sampled["sampling"]["temperature"] == 0.7
    assert [o["text"] for o in sampled["outputs"]] == [o["text"] for o in greedy["outputs"]]


def test_bad_input_exits_2_in_one_line(tmp_path: Path) -> None:
    job = {"spec": {"model": "/m", "sampling": {"top_n": 1}}}
    done = smoke_models.generate(job, tmp_path / "bad")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: sampling has unknown keys: top_n; known: temperature, max_tokens, top_p, top_k, seed."
    )
    missing = smoke_models.generate(
        {"spec": {"model": str(tmp_path / "absent")}, "model": str(tmp_path / "absent")}, tmp_path / "m"
    )
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith("error: ")
