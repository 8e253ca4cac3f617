"""One side of a probe, run in a process of its own: `python -m gate.checks.alignment.sides SPEC.json OUT.json`.

SPEC: {backend, model, dtype, device, top_k, texts: [{name, kind, token_ids}], engine_args}. OUT gets a SideRecord
(record.py) and, for hf, OUT's full logits beside it as `<OUT stem>.logits.npy`. `--tokenize MODEL TEXTS.json OUT.json
[OTHER_MODEL ...]` writes the token ids of TEXTS (a JSON list of strings) and the tokenizer fingerprints instead;
`--decode MODEL IDS.json OUT.json` writes {str(id): text} for a JSON list of token ids.
Exit codes: 0 done, 2 bad input (one sentence on stderr), 1 the side failed.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from gate.checks.alignment import tokens
from gate.checks.alignment.record import Position, SideRecord, TextRecord
from gate.checks.alignment.spec import BACKENDS, DTYPES, MIN_TOP_K

HF_DEVICES = ("cpu", "cuda", "npu")


def check(spec: Any) -> dict[str, Any]:
    """The spec, validated with one-sentence errors."""
    if not isinstance(spec, dict):
        raise ValueError("the side spec must be a JSON object.")
    for key in ("backend", "model", "dtype", "device", "top_k", "texts"):
        if key not in spec:
            raise ValueError(f"the side spec lacks {key!r}.")
    if spec["backend"] not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {spec['backend']!r}.")
    if spec["dtype"] not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {spec['dtype']!r}.")
    if spec["backend"] == "hf" and spec["device"] not in HF_DEVICES:
        raise ValueError(f"the hf backend runs on {', '.join(HF_DEVICES)}, not {spec['device']!r}.")
    if not isinstance(spec.setdefault("engine_args", {}), dict):
        raise ValueError("engine_args must be an object.")
    top_k = spec["top_k"]
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < MIN_TOP_K:
        raise ValueError(f"top_k must be an integer of at least {MIN_TOP_K}, got {top_k!r}.")
    texts = spec["texts"]
    if not isinstance(texts, list) or not texts:
        raise ValueError("texts must be a non-empty list.")
    for i, text in enumerate(texts):
        ids = text.get("token_ids") if isinstance(text, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(t, int) and t >= 0 for t in ids):
            raise ValueError(f"texts[{i}].token_ids must be a non-empty list of token ids.")
        if text.get("kind") not in ("next_token", "text"):
            raise ValueError(f"texts[{i}].kind must be next_token or text.")
        if text["kind"] == "text" and len(ids) < 2:
            raise ValueError(f"texts[{i}] has {len(ids)} token; a text needs at least 2 to be predicted.")
    return spec


def position_count(text: dict[str, Any]) -> int:
    """Predictions a text yields: one per token after the first, plus the next token after a prompt."""
    return len(text["token_ids"]) - 1 + (text["kind"] == "next_token")


def run_hf(spec: dict[str, Any], out: Path) -> SideRecord:
    """Teacher-forced forward passes with transformers: one per text over its full ids, full logits kept."""
    import numpy as np
    import torch

    if spec["device"] == "npu":
        import torch_npu  # noqa: F401  (registers the npu device with torch, as the card's set-up does)
    from transformers import AutoModelForCausalLM

    top_k = spec["top_k"]
    tokenizer = tokens.load(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(
        spec["model"], dtype=getattr(torch, spec["dtype"]), **spec["engine_args"]
    )
    model = model.to(spec["device"]).eval()
    logits_path = out.with_name(out.stem + ".logits.npy")
    total = sum(position_count(text) for text in spec["texts"])
    # Written row by row into a file-backed array: memory stays one text's logits, whatever the probe's size.
    full = np.lib.format.open_memmap(logits_path, mode="w+", dtype=np.float32, shape=(total, model.config.vocab_size))
    row = 0
    records: list[TextRecord] = []
    with torch.no_grad():
        for text in spec["texts"]:
            ids = text["token_ids"]
            logits = model(torch.tensor([ids], device=spec["device"])).logits[0].float()
            if text["kind"] == "text":
                logits = logits[:-1]  # the last token's prediction has no actual token to score
            logprobs = torch.log_softmax(logits, dim=-1)
            best = torch.topk(logprobs, top_k, dim=-1)
            actual = ids[1:] + [-1] * (text["kind"] == "next_token")
            # one transfer per text, not one per position: each .item() on an accelerator waits for it
            rows = torch.arange(len(ids) - 1, device=logprobs.device)
            scored = logprobs[rows, torch.tensor(ids[1:], dtype=torch.long, device=logprobs.device)].tolist()
            tops, top_logprobs = best.indices.tolist(), best.values.tolist()
            positions: list[Position] = [
                {
                    "token": token,
                    "logprob": scored[j] if token >= 0 else None,
                    "top": [[t, lp] for t, lp in zip(tops[j], top_logprobs[j], strict=True)],
                }
                for j, token in enumerate(actual)
            ]
            full[row : row + len(actual)] = logits.cpu().numpy()
            row += len(actual)
            records.append({"name": text["name"], "kind": text["kind"], "token_ids": ids, "positions": positions})
    full.flush()
    return {
        "backend": "hf",
        "model": spec["model"],
        "dtype": spec["dtype"],
        "device": spec["device"],
        "top_k": top_k,
        "full_logits": True,
        "tokenizer_fingerprint": tokens.fingerprint(tokenizer),
        "texts": records,
        "logits_file": str(logits_path),
    }


def run(spec: dict[str, Any], out: Path) -> SideRecord:
    """The side record for spec: hf here, the vLLM engine and OpenAI-compatible servers in vllm_side."""
    spec = check(spec)
    if spec["backend"] == "hf":
        return run_hf(spec, out)
    # The vLLM engine and servers enter here only, imported by name: a worker without vLLM never loads them.
    vllm_side = importlib.import_module("gate.checks.alignment.vllm_side")
    record: SideRecord = vllm_side.run(spec)
    if not record["tokenizer_fingerprint"]:  # a server's model is a name: its tokenizer is engine_args' or model's
        record["tokenizer_fingerprint"] = tokens.fingerprint(
            tokens.load(spec["engine_args"].get("tokenizer", spec["model"]))
        )
    return record


def main(argv: list[str]) -> int:
    """The subprocess entry: a side, or the tokenizer step."""
    try:
        if argv[:1] == ["--tokenize"] and len(argv) >= 4:
            texts = json.loads(Path(argv[2]).read_text())
            if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
                raise ValueError("the texts file must hold a JSON list of strings.")
            Path(argv[3]).write_text(json.dumps(tokens.encode(argv[1], texts, argv[4:])))
            return 0
        if argv[:1] == ["--decode"] and len(argv) == 4:
            ids = json.loads(Path(argv[2]).read_text())
            if not isinstance(ids, list) or not all(isinstance(i, int) and i >= 0 for i in ids):
                raise ValueError("the ids file must hold a JSON list of token ids.")
            Path(argv[3]).write_text(json.dumps(tokens.decode(argv[1], ids)))
            return 0
        if len(argv) != 2:
            raise ValueError("usage: python -m gate.checks.alignment.sides SPEC.json OUT.json")
        spec = json.loads(Path(argv[0]).read_text())
        out = Path(argv[1])
        out.write_text(json.dumps(run(spec, out)))
        return 0
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
