"""How many answers ran into the generation cap. A thinking model that never closes its reasoning block ends
there too; a low score with a high truncation rate is a configuration problem, not a port regression."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gate.checks.accuracy.results import SAMPLES_NAME

log = logging.getLogger("gate.worker")
LM_EVAL_DEFAULT_MAX_GEN_TOKS = 256


def truncation(samples: list[Path], tokenizer_source: str | None, max_gen_toks: int | None) -> dict[str, Any]:
    """Per task: answers counted, answers at the token cap, and their share. Empty without a tokenizer."""
    if tokenizer_source is None:
        return {}
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    except Exception as exc:  # no tokenizer means no statistic, never a failed run
        log.warning("no tokenizer from %s, truncation not measured: %s", tokenizer_source, exc)
        return {}
    cap = max_gen_toks or LM_EVAL_DEFAULT_MAX_GEN_TOKS
    stats: dict[str, Any] = {}
    for path in samples:
        match = SAMPLES_NAME.search(path.name)
        task = match.group("task") if match else path.stem
        seen: set[int] = set()
        at_cap = 0
        # bytes: str.splitlines() would also split on U+2028 and friends inside the JSON strings
        for line in path.read_bytes().splitlines():
            row = json.loads(line)
            if row["doc_id"] in seen:
                continue  # one line per filter; the generation is the same
            seen.add(row["doc_id"])
            response = row["resps"][0][0] if row.get("resps") else ""
            if len(tokenizer(response, add_special_tokens=False)["input_ids"]) >= cap - 1:
                at_cap += 1
        stats[task] = {
            "answers": len(seen),
            "at_token_cap": at_cap,
            "max_gen_toks": cap,
            "truncated_share": at_cap / len(seen) if seen else 0.0,
        }
    return stats
