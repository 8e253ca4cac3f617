"""A tiny, randomly initialised Qwen3 with a real tokenizer: for tests and `gate demo`, never for verdicts."""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus(gsm8k_dir: Path | None) -> list[str]:
    if gsm8k_dir is not None and (gsm8k_dir / "train.jsonl").exists():
        lines = (gsm8k_dir / "train.jsonl").read_text().splitlines()[:2000]
        return [" ".join(json.loads(line).values()) for line in lines]
    return ["Question: What is 2 plus 3?\nAnswer: 2 + 3 = 5\n#### 5"] * 50


def build(out_dir: Path, gsm8k_dir: Path | None = None, seed: int = 0) -> Path:
    """Write a ~1 MB random Qwen3 (hidden 64, 2 layers, head_dim 32) and its tokenizer to out_dir."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_corpus(gsm8k_dir), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    wrapped.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(wrapped),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=4096,
        tie_word_embeddings=False,  # tied embeddings make a random model repeat its last prompt token
        eos_token_id=wrapped.eos_token_id,
        pad_token_id=wrapped.pad_token_id,
    )
    model = Qwen3ForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    wrapped.save_pretrained(out_dir)
    return out_dir
