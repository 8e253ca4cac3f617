"""Probe sets: the model card's prompts and texts, the first GSM8K test questions, or texts a user supplies."""

from __future__ import annotations

import itertools
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from gate.checks.alignment.record import Kind

MAX_TEXTS = 64
GSM8K_DEFAULT_N = 8
MAX_CHARS = 4000  # per text: a probe checks numerics, not long-context behaviour
ALLOWED_CONTROL = {"\n", "\t"}

# The card's next-token prompts (its "输入文本" table).
NEXT_TOKEN_PROMPTS = (
    "The capital of France is",
    "The chemical symbol for water is H",
    "In mathematics, 2 + 2 =",
    "The largest planet in our solar system is",
)

# The card gives only the openings of its six perplexity texts; the rest is ours, in the same plain register.
CARD_TEXTS = (
    "The capital of France is Paris, a city on the river Seine. It is known for the Eiffel Tower, the Louvre "
    "museum and its many cafes. Millions of people visit it every year.",
    "Water is composed of two hydrogen atoms and one oxygen atom. At sea level it boils at 100 degrees Celsius "
    "and freezes at 0 degrees. Most of the Earth's surface is covered by it.",
    "Machine learning is a subset of artificial intelligence in which computers learn patterns from data. Instead "
    "of following fixed rules, a model improves as it sees more examples.",
    "Python is a high-level programming language known for its readable syntax. It is widely used for web "
    "development, data analysis and scientific computing.",
    "The solar system has eight planets that orbit the Sun. The four inner planets are rocky, while the four outer "
    "planets are giants made mostly of gas and ice. Jupiter is the largest of them.",
    "William Shakespeare wrote many plays, including Hamlet, Macbeth and Romeo and Juliet. He was born in "
    "Stratford-upon-Avon in 1564. His works are still performed around the world.",
)


@dataclass(frozen=True)
class ProbeText:
    """One probe input: its name in reports, what it measures, and the raw text."""

    name: str
    kind: Kind
    text: str


def _opening(text: str, words: int = 5) -> str:
    return " ".join(text.split()[:words]) + "..."


def card() -> list[ProbeText]:
    """The model card's four next-token prompts and six perplexity texts."""
    prompts = [ProbeText(text, "next_token", text) for text in NEXT_TOKEN_PROMPTS]
    return prompts + [ProbeText(_opening(text), "text", text) for text in CARD_TEXTS]


def gsm8k(data_dir: Path, n: int) -> list[ProbeText]:
    """The first n GSM8K test questions, read from data_dir/test.jsonl."""
    if not 1 <= n <= MAX_TEXTS:
        raise ValueError(f"probes.n must be between 1 and {MAX_TEXTS}, got {n}.")
    path = data_dir / "test.jsonl"
    if not path.is_file():
        raise ValueError(f"no GSM8K test file at {path}.")
    with path.open() as f:
        questions = [json.loads(line)["question"] for line in itertools.islice(f, n)]
    return [ProbeText(f"gsm8k-{i}", "text", question) for i, question in enumerate(questions)]


def user_texts(texts: object) -> list[ProbeText]:
    """Texts a user supplies, checked: at most 64, each 1-4000 characters, no control characters but newline and tab."""
    if not isinstance(texts, list) or not texts:
        raise ValueError("probes.texts must be a non-empty list of strings.")
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"probes.texts holds {len(texts)} texts; at most {MAX_TEXTS} are allowed.")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"probes.texts[{i}] must be a non-empty string.")
        if len(text) > MAX_CHARS:
            raise ValueError(f"probes.texts[{i}] has {len(text)} characters; at most {MAX_CHARS} are allowed.")
        bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROL), None)
        if bad is not None:
            raise ValueError(f"probes.texts[{i}] contains the control character {bad!r}.")
    return [ProbeText(f"text-{i}", "text", text) for i, text in enumerate(texts)]


def select(probes: object, gsm8k_dir: Path | None = None) -> list[ProbeText]:
    """The probe texts a spec's `probes` names: {set: card} (default), {set: gsm8k, n, dir} or {set: texts, texts}."""
    if probes is None:
        return card()
    if not isinstance(probes, dict):
        raise ValueError('probes must be an object such as {"set": "card"}.')
    name = probes.get("set", "card")
    if name == "card":
        return card()
    if name == "gsm8k":
        n = probes.get("n", GSM8K_DEFAULT_N)
        if not isinstance(n, int) or isinstance(n, bool):
            raise ValueError("probes.n must be an integer.")
        folder = probes.get("dir", gsm8k_dir)
        if folder is None:
            raise ValueError("probes.dir must name the local GSM8K folder for the gsm8k probe set.")
        return gsm8k(Path(folder), n)
    if name == "texts":
        return user_texts(probes.get("texts"))
    raise ValueError(f"probes.set must be card, gsm8k or texts, not {name!r}.")
