"""The model fingerprint: a digest of the content of every file that decides a model's answers.

A new build written over the same path gets a new fingerprint, so the response cache and the comparison with a
reference run see it as the different model it is. Digests of unchanged files are reused from a small index,
trusted only while the file's size, mtime, ctime, inode and device all stay the same.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from gate.worker.modelref import ModelUnavailable

log = logging.getLogger("gate.worker")
FORMAT = "gate-model-fingerprint-v1"  # changes whenever the set of files or the digest changes meaning
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# Besides the weights: shard indexes, tiktoken vocabularies, chat templates (chat_template.jinja and
# additional_chat_templates/*.jinja) and custom modelling code (trust_remote_code).
DECIDING_SUFFIXES = (*WEIGHT_SUFFIXES, ".index.json", ".tiktoken", ".jinja", ".py")
DECIDING_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "chat_template.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
    }
)
READ_CHUNK = 8 << 20  # bytes per read: large enough for blake3 to spread one update over threads
FILE_THREADS = 4  # files hashed at once (checkpoints come in shards)
# A file changed this close to its hashing could change again within the same timestamp tick, keeping its ctime:
# its digest is not indexed (git's "racily clean" entries). 1 s covers filesystems with whole-second timestamps.
RACY_NS = 1_000_000_000
INDEX_VERSION = 1


def decides_answers(relative: str) -> bool:
    """Whether a file of a model folder (a path relative to it, '/'-separated) can change what the model answers.

    Weights and their shard index, config.json and generation_config.json, tokenizer files, chat templates,
    quantization descriptions (any *quant*.json, e.g. vLLM-Ascend's quant_model_description.json) and custom code.
    Hidden folders (.git, .cache) hold copies and download state, not the model.
    """
    parts = relative.split("/")
    if any(part.startswith(".") for part in parts):
        return False
    name = parts[-1]
    return name in DECIDING_NAMES or name.endswith(DECIDING_SUFFIXES) or (name.endswith(".json") and "quant" in name)


@dataclass(frozen=True)
class Fingerprint:
    digest: str  # 64 lowercase hex characters
    files: tuple[tuple[str, str], ...]  # (path relative to the folder, blake3 of its content), sorted by path
    hashed: tuple[str, ...]  # the files read this time; the others' digests came from the index


def model_files(root: Path) -> list[tuple[str, Path]]:
    """The deciding files under root, sorted by relative path. Links to files are followed (the hub cache's
    snapshots are links to blobs); links to folders are not."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if not decides_answers(relative):
                continue
            if not path.exists():
                raise ModelUnavailable(f"{path} is a broken link: the model at {root} is incomplete")
            if path.is_file():
                found.append((relative, path))
    return sorted(found)


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def file_digest(path: Path) -> str:
    """blake3 of a file's content, read in chunks (a memory map would crash the worker if the file shrank)."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    buffer = memoryview(bytearray(READ_CHUNK))
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            hasher.update(buffer[:n])
    return hasher.hexdigest()


def combine(files: list[tuple[str, str]]) -> str:
    """The folder's digest: blake3 over the sorted (relative path, file digest) pairs."""
    hasher = blake3.blake3(f"{FORMAT}\n".encode())
    for relative, digest in sorted(files):
        hasher.update(f"{relative}\0{digest}\n".encode())
    return hasher.hexdigest()


def _load_index(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("fingerprint index %s is unreadable: starting a new one", path)
        return {}
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _save_index(path: Path, entries: dict[str, Any]) -> None:
    """Write atomically, keeping only entries whose file still has the recorded stat."""
    kept = {}
    for name, entry in entries.items():
        try:
            if _stat_key(os.stat(name)) == entry["stat"]:
                kept[name] = entry
        except OSError:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"version": INDEX_VERSION, "files": kept}))
    os.replace(temporary, path)


def _hash_one(path: Path) -> tuple[str, list[int], bool]:
    """(digest, stat key, whether the digest may be indexed)."""
    read_at = time.time_ns()
    before = os.stat(path)
    digest = file_digest(path)
    after = os.stat(path)
    if _stat_key(before) != _stat_key(after):
        raise ModelUnavailable(f"{path} changed while it was fingerprinted: is a new build still being written?")
    return digest, _stat_key(after), read_at - after.st_ctime_ns > RACY_NS


def fingerprint(root: Path, index_path: Path | None = None) -> Fingerprint:
    """Fingerprint the model folder root, reusing the digests of unchanged files from the index at index_path."""
    files = model_files(root)
    if not files:
        raise ModelUnavailable(f"{root} holds no model files (weights, config.json or tokenizer)")
    index = _load_index(index_path)
    digests: dict[str, str] = {}
    to_hash: list[tuple[str, Path]] = []
    for relative, path in files:
        entry = index.get(str(path.absolute()))
        if entry is not None and entry.get("stat") == _stat_key(os.stat(path)):
            digests[relative] = entry["blake3"]
        else:
            to_hash.append((relative, path))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=FILE_THREADS) as pool:
        hashed = list(pool.map(lambda item: _hash_one(item[1]), to_hash))
    for (relative, path), (digest, stat, indexable) in zip(to_hash, hashed, strict=True):
        digests[relative] = digest
        if indexable:
            index[str(path.absolute())] = {"stat": stat, "blake3": digest}
    if to_hash:
        size = sum(stat[0] for _, stat, _ in hashed)
        log.info("fingerprinted %d file(s), %.2f GB, in %.1f s", len(to_hash), size / 1e9, time.monotonic() - started)
        if index_path is not None:
            _save_index(index_path, index)
    pairs = sorted(digests.items())
    return Fingerprint(digest=combine(pairs), files=tuple(pairs), hashed=tuple(relative for relative, _ in to_hash))
