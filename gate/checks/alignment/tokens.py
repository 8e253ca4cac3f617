"""Tokenization, done once per probe, and the tokenizer fingerprint that decides whether two sides are comparable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def fingerprint(tokenizer: Any) -> str:
    """sha256 of a transformers tokenizer's vocabulary, merges, added and special tokens (canonical JSON)."""
    parts: dict[str, Any] = {
        "vocab": sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0])),
        "added": sorted(tokenizer.get_added_vocab().items(), key=lambda item: (item[1], item[0])),
        "special": {key: str(value) for key, value in sorted(tokenizer.special_tokens_map.items())},
        "merges": None,
    }
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast tokenizers: the merges decide how text splits into the same vocabulary
        parts["merges"] = json.loads(backend.to_str())["model"].get("merges")
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def local(model: str) -> str:
    """model, or a one-sentence ValueError where it is a path with nothing there (not a hub name to resolve)."""
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().is_dir():
        raise ValueError(f"no model folder at {model}.")
    return model


def load(model: str) -> Any:
    """The model's own tokenizer (transformers, imported here only)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(local(model))


def encode(model: str, texts: list[str], others: list[str] | None = None) -> dict[str, Any]:
    """Token ids per text and the tokenizer fingerprint of model, plus the fingerprints of the other models."""
    tokenizer = load(model)
    # add_special_tokens=False: no BOS or chat template, so every backend sees exactly these ids and no more.
    token_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    return {
        "tokenizer_fingerprint": fingerprint(tokenizer),
        "token_ids": token_ids,
        "fingerprints": {other: fingerprint(load(other)) for other in others or []},
    }


def decode(model: str, ids: list[int]) -> dict[str, str]:
    """Each token id's own text by model's tokenizer (e.g. " Paris"), keyed by str(id) as JSON keys are."""
    tokenizer = load(model)
    return {str(token): tokenizer.decode([token]) for token in sorted(set(ids))}
