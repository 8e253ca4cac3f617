"""The side record: what one backend at one precision returns for a probe (the contract every side writes)."""

from __future__ import annotations

from typing import Literal, TypedDict

Kind = Literal["next_token", "text"]


class Position(TypedDict):
    """One prediction: positions[j] of a text predicts token_ids[j + 1] from token_ids[: j + 1]."""

    # The id of the token that actually follows; -1 on a next_token probe's extra final position (not known).
    token: int
    # Natural-log probability of `token`; None where token is -1 (readers ignore it there).
    logprob: float | None
    # The k most likely next tokens, best first: [[token_id, logprob], ...] with k = the side's top_k.
    top: list[list[float]]


class TextRecord(TypedDict):
    """One probe text, tokenized once by the reference side's tokenizer and fed to every side as is."""

    name: str  # the probe's name, the same on every side
    kind: Kind  # next_token: a prompt whose continuation matters; text: a passage whose perplexity matters
    token_ids: list[int]  # tokenizer(text, add_special_tokens=False).input_ids: no BOS or template added
    # len(token_ids) - 1 positions (the first token has no prediction: nothing precedes it), plus one final
    # position (token -1) for a next_token probe: the prediction of the token after the prompt.
    positions: list[Position]


class _SideRequired(TypedDict):
    backend: str  # hf, vllm, vllm-ascend or openai
    model: str  # the model path or name the side loaded
    dtype: str  # float32, bfloat16 or float16: the precision the side computed in
    device: str  # cpu, cuda, npu, or the server's URL for openai
    top_k: int  # entries in every `top` list (at least 20)
    full_logits: bool  # whether `logits_file` holds every position's full-vocabulary logits
    # sha256 over the tokenizer's vocabulary, merges, added and special tokens (tokens.fingerprint): equal for the
    # same tokenizer files, different for another tokenizer. A backend may leave it "": sides.run then fills it
    # from engine_args["tokenizer"] or the model.
    tokenizer_fingerprint: str
    texts: list[TextRecord]  # in the probe's order


class SideRecord(_SideRequired, total=False):
    """One backend+dtype run over the probe's token ids; full logits never go into JSON."""

    # Path of a float32 .npy of shape [total positions, vocab]: row i is the i-th position of the texts taken in
    # order (next_token final positions included); present only where full_logits is true (hf).
    logits_file: str
