"""How a thinking model's raw output divides into its reasoning (the <think> block) and its answer (pure).

One rule for every reader: the dashboard showing lm-eval's samples, and the smoke check's worker and server.
"""

from __future__ import annotations

import re

OPEN = "<think>"
THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def split_thinking(text: str | None, opened: bool = False) -> tuple[str | None, str]:
    """(reasoning, answer) of a raw model output: the <think> block apart from what follows it. A block never
    closed is all reasoning (the output was cut off inside it). opened: the prompt itself ended with <think>
    (Qwen3-Thinking-2507's chat template opens the block), so the output starts inside it."""
    if opened:
        text = OPEN + (text or "")
    if not text:
        return None, text or ""
    match = THINK.search(text)
    if match is None:
        return None, text
    return match.group(1).strip(), (text[: match.start()] + text[match.end() :]).strip()
