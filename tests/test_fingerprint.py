"""The model fingerprint on real files: what it reads, what it ignores, and when its index may be trusted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest

from gate.worker import modelref
from gate.worker.fingerprint import RACY_NS, decides_answers, fingerprint, model_files
from gate.worker.modelref import ModelUnavailable

SHARD = 3 << 20  # bytes per weight shard


def write_model(root: Path, seed: bytes = b"a") -> Path:
    """A model folder as hub downloads look: two weight shards, their index, config, tokenizer and a README."""
    root.mkdir(parents=True, exist_ok=True)
    for i in (1, 2):
        (root / f"model-0000{i}-of-00002.safetensors").write_bytes(blake3.blake3(seed + bytes([i])).digest(SHARD))
    (root / "model.safetensors.index.json").write_text('{"weight_map": {}}')
    (root / "config.json").write_text('{"model_type": "qwen3"}')
    (root / "generation_config.json").write_text('{"temperature": 0.6}')
    (root / "tokenizer.json").write_text('{"model": {}}')
    (root / "tokenizer_config.json").write_text("{}")
    (root / "chat_template.jinja").write_text("{{ messages }}")
    (root / "README.md").write_text("# a model card")
    return root


def settle() -> None:
    """Let the files age past the racy window: only then may their digests be indexed."""
    time.sleep(RACY_NS / 1e9 + 0.1)


def test_the_deciding_set() -> None:
    deciding = [
        "model.safetensors",
        "model-00001-of-00003.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "consolidated.pth",
        "weights.pt",
        "qwen3-4b-q8_0.gguf",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "merges.txt",
        "qwen.tiktoken",
        "chat_template.jinja",
        "chat_template.json",
        "additional_chat_templates/tool_use.jinja",
        "modeling_custom.py",
        "quant_model_description.json",
        "hf_quant_config.json",
        "original/consolidated.00.pth",
    ]
    ignored = [
        "README.md",
        "LICENSE",
        ".gitattributes",
        "figures/benchmark.png",
        "results.json",
        "trainer_state.json",
        ".git/lfs/objects/ab/cd/abcd",
        ".cache/huggingface/download/model.safetensors.metadata",
        ".cache/huggingface/model.safetensors",
    ]
    assert [name for name in deciding if not decides_answers(name)] == []
    assert [name for name in ignored if decides_answers(name)] == []


def test_a_change_of_content_changes_the_fingerprint(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m")
    before = fingerprint(model)
    assert len(before.digest) == 64 and before.digest == before.digest.lower()
    assert [name for name, _ in before.files] == [
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    with (model / "model-00002-of-00002.safetensors").open("r+b") as f:  # one bit of one weight
        f.seek(SHARD // 2)
        byte = f.read(1)[0]
        f.seek(SHARD // 2)
        f.write(bytes([byte ^ 1]))
    assert fingerprint(model).digest != before.digest
    (model / "chat_template.jinja").write_text("{{ messages | reverse }}")
    assert len({before.digest, fingerprint(model).digest}) == 2


def test_the_same_content_elsewhere_has_the_same_fingerprint(tmp_path: Path) -> None:
    a = write_model(tmp_path / "a")
    b = tmp_path / "builds" / "b"
    shutil.copytree(a, b)
    assert fingerprint(a).digest == fingerprint(b).digest
    assert fingerprint(a).digest != fingerprint(write_model(tmp_path / "c", seed=b"c")).digest
    (b / "model.safetensors").symlink_to(b / "model-00001-of-00002.safetensors")  # a file more is a change
    assert fingerprint(b).digest != fingerprint(a).digest


def test_a_file_that_decides_nothing_is_ignored(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m")
    before = fingerprint(model).digest
    (model / "README.md").write_text("# a new model card")
    (model / "results.json").write_text("{}")
    (model / ".git").mkdir()
    (model / ".git" / "model.safetensors").write_bytes(b"a stale copy")
    assert fingerprint(model).digest == before


def test_the_index_is_reused_while_nothing_changed(tmp_path: Path) -> None:
    model, index = write_model(tmp_path / "m"), tmp_path / "work" / "fingerprints.json"
    settle()
    first = fingerprint(model, index)
    assert len(first.hashed) == 8
    again = fingerprint(model, index)
    assert again.hashed == () and again.digest == first.digest
    # the digests really come from the index: a forged entry is believed while the file's stat matches
    entries = json.loads(index.read_text())
    config = str(model / "config.json")
    entries["files"][config]["blake3"] = "0" * 64
    index.write_text(json.dumps(entries))
    assert fingerprint(model, index).digest != first.digest


def test_a_file_rewritten_in_place_with_its_old_mtime_is_read_again(tmp_path: Path) -> None:
    model, index = write_model(tmp_path / "m"), tmp_path / "fingerprints.json"
    settle()
    first = fingerprint(model, index)
    shard = model / "model-00001-of-00002.safetensors"
    old = os.stat(shard)
    with shard.open("r+b") as f:  # same size, same inode, mtime put back: only ctime tells
        f.write(b"\xff" * 16)
    os.utime(shard, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = os.stat(shard)
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    second = fingerprint(model, index)
    assert second.hashed == ("model-00001-of-00002.safetensors",)
    assert second.digest != first.digest


def test_a_file_replaced_by_another_is_read_again(tmp_path: Path) -> None:
    model, index = write_model(tmp_path / "m"), tmp_path / "fingerprints.json"
    settle()
    first = fingerprint(model, index)
    shard = model / "model-00002-of-00002.safetensors"
    old = os.stat(shard)
    replacement = tmp_path / "new.safetensors"  # a build that writes a new file and renames it over the old
    replacement.write_bytes(blake3.blake3(b"b").digest(SHARD))
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(replacement, shard)
    assert os.stat(shard).st_ino != old.st_ino and os.stat(shard).st_size == old.st_size
    settle()
    second = fingerprint(model, index)
    assert second.hashed == ("model-00002-of-00002.safetensors",) and second.digest != first.digest
    (model / "config.json").write_text('{"model_type": "qwen3", "x": 1}')  # size changed
    assert fingerprint(model, index).hashed == ("config.json",)


def test_a_freshly_written_file_is_not_indexed(tmp_path: Path) -> None:
    """Within the racy window a second write could keep the same ctime: such digests are never stored."""
    model, index = write_model(tmp_path / "m"), tmp_path / "fingerprints.json"
    fingerprint(model, index)
    assert len(fingerprint(model, index).hashed) == 8


def test_an_unreadable_index_is_started_anew(tmp_path: Path) -> None:
    model, index = write_model(tmp_path / "m"), tmp_path / "fingerprints.json"
    index.write_text("{not json")
    settle()
    assert len(fingerprint(model, index).hashed) == 8
    assert fingerprint(model, index).hashed == ()


def test_what_cannot_be_fingerprinted_is_the_users_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("nothing here")
    with pytest.raises(ModelUnavailable, match="holds no model files"):
        fingerprint(tmp_path / "empty")
    broken = write_model(tmp_path / "broken")
    (broken / "model-00003-of-00003.safetensors").symlink_to(tmp_path / "missing-blob")
    with pytest.raises(ModelUnavailable, match="broken link"):
        model_files(broken)
    with pytest.raises(ModelUnavailable, match="not in this worker's hub cache"):
        modelref.local_folder("acme/not-downloaded-anywhere")


def test_a_hub_id_is_fingerprinted_from_the_local_hub_cache(tmp_path: Path) -> None:
    """A hub cache laid out as huggingface_hub writes it (refs/main names a snapshot of links to blobs), read by
    a worker process that has it as its HF_HUB_CACHE."""
    source = write_model(tmp_path / "source")
    repo = tmp_path / "hub" / "models--acme--port"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for path in source.iterdir():
        blob = repo / "blobs" / blake3.blake3(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(Path("../../blobs") / blob.name)
    script = (
        "import sys\n"
        "from gate.worker import fingerprint, modelref\n"
        "for revision in (None, sys.argv[1], 'v2'):\n"
        "    try:\n"
        "        folder = modelref.local_folder('acme/port', revision)\n"
        "        print(folder, fingerprint.fingerprint(folder).digest)\n"
        "    except modelref.ModelUnavailable as exc:\n"
        "        print(exc)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    lines = subprocess.run(
        [sys.executable, "-c", script, commit], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    expected = f"{snapshot} {fingerprint(source).digest}"
    assert lines[:2] == [expected, expected]
    assert lines[2] == (
        "acme/port at revision v2 is not in this worker's hub cache "
        "(workers run offline: download it first, or pass a local path)"
    )
