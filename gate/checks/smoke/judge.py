"""The smoke verdict: the model answered every prompt (pure).

A prompt passes when its generation holds at least one token besides the stop token: some text. An empty answer
after a closed reasoning block is still output, and so is reasoning cut off at max_tokens; an empty generation (no
token, or the stop token alone) is not. What the text says is for a person to read on the run page, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PASS, FAIL = "pass", "fail"  # gate's verdict words
SHOWN_CHARS = 60  # of a prompt, in a sentence


def shown(prompt: str) -> str:
    """A prompt as a sentence quotes it: its first characters, on one line."""
    line = " ".join(prompt.split())
    return line if len(line) <= SHOWN_CHARS else line[: SHOWN_CHARS - 1] + "…"


def empty(output: Mapping[str, Any]) -> bool:
    """Whether a prompt produced nothing: no completion token, or none that is text."""
    return output["completion_tokens"] == 0 or output["text"] == ""


def judge(outputs: Sequence[Mapping[str, Any]], max_tokens: int) -> tuple[str, list[str]]:
    """pass or fail, and one sentence per finding: each prompt that produced nothing, else a summary and a note
    for each answer cut off at max_tokens inside its reasoning."""
    silent = [f'prompt {i} ("{shown(o["prompt"])}") produced no output.' for i, o in enumerate(outputs, 1) if empty(o)]
    if silent:
        return FAIL, silent
    cut = [
        f'prompt {i} ("{shown(o["prompt"])}") reached max_tokens ({max_tokens}) inside its reasoning: no answer yet.'
        for i, o in enumerate(outputs, 1)
        if o["finish_reason"] == "length" and o["reasoning"] is not None and not o["answer"]
    ]
    return PASS, [f"all {len(outputs)} prompt(s) produced output.", *cut]
