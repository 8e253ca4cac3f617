"""A local dataset mirror: lm-eval's own tasks, each leaf task's `dataset_path` pointed at the mirror's copy.

The mirror is laid out as the hub's client writes a snapshot (`hf download --repo-type dataset ORG/NAME
--local-dir MIRROR/ORG/NAME`). The datasets library reads such a folder as it reads the hub repo (its README's
`configs:` block, or split names inferred from file names), so an override that `include:`s the upstream task file
and changes only `dataset_path` keeps prompts, few-shot, filters, metrics, `dataset_name` and the task's name.
Overrides are written per run for the leaf tasks it names (groups and tags expanded with lm-eval's task index), into
a folder passed as `--include_path`.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gate.checks.accuracy import code_tasks

SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")
# keys a group (or a dict member of one) would pass down over its children's own dataset
DATASET_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset")


class NotInMirror(ValueError):
    """The run names a task whose dataset the worker's mirror does not hold: the user's error, never retried."""


@dataclass(frozen=True)
class Leaf:
    """A task lm-eval evaluates (not a group or tag), and the dataset its config reads."""

    task: str
    upstream: Path | None  # its task file; None when it has none to include (inline, or set by its group)
    dataset: str | None  # dataset_path, a hub id such as cais/mmlu; None when not read through the config
    config: str | None  # dataset_name
    splits: tuple[str, ...]  # every split the config names


@dataclass(frozen=True)
class Gap:
    """Why the mirror cannot serve a leaf: its dataset, config or splits are not there, or it reads no hub dataset."""

    leaf: Leaf
    missing: str  # "dataset", "config", "splits" or "unsupported"
    folder: Path
    splits: tuple[str, ...] = ()  # the missing splits


@dataclass(frozen=True)
class Prepared:
    """A run's tasks pointed at the mirror."""

    include_path: Path  # the overrides, for --include_path
    content: str  # a digest of every file of the run's datasets: the key of their datasets cache


@functools.cache
def _index() -> dict[str, Any]:
    """lm-eval's task index (name -> Entry), built once per process: it reads ~15k task files (10-20 s)."""
    from lm_eval.tasks import TaskManager  # the heavy dependency enters here, lazily

    return TaskManager().task_index


def leaves(name: str) -> list[Leaf]:
    """The leaf tasks a task, group or tag name stands for, as lm-eval expands them."""
    from lm_eval.tasks._index import Kind

    index = _index()
    entry = index.get(name)
    if entry is None:
        raise NotInMirror(f"lm-eval knows no task, group or tag named {name!r}.")
    if entry.kind == Kind.TAG:
        return [leaf for task in sorted(entry.tags) for leaf in leaves(task)]
    if entry.kind == Kind.GROUP:
        if any(key in entry.cfg for key in DATASET_KEYS):
            return [Leaf(f"{name} (its group sets the dataset)", None, None, None, ())]
        return [leaf for member in entry.cfg.get("task", []) for leaf in _members(name, member)]
    cfg = entry.cfg or {}
    if entry.kind != Kind.TASK or "custom_dataset" in cfg or not isinstance(cfg.get("dataset_path"), str):
        return [Leaf(name, None, None, None, ())]
    splits = tuple(dict.fromkeys(cfg[key] for key in SPLIT_KEYS if cfg.get(key)))
    return [Leaf(name, entry.yaml_path, cfg["dataset_path"], cfg.get("dataset_name"), splits)]


def _members(group: str, member: str | dict[str, Any]) -> list[Leaf]:
    """A group's member: a name, or a dict naming a task or group with overrides (inline definitions have no file
    of their own to include, and an override of their dataset would be the group's)."""
    if isinstance(member, str):
        return leaves(member)
    name = member.get("task") or member.get("group")
    if isinstance(name, str) and name in _index() and not any(key in member for key in DATASET_KEYS):
        return leaves(name)
    return [Leaf(f"{group}::{name} (defined inline)", None, None, None, ())]


def gap(leaf: Leaf, mirror: Path) -> Gap | None:
    """What the mirror lacks to serve a leaf, read by the datasets library as lm-eval will load it; None: served."""
    if leaf.dataset is None:
        return Gap(leaf, "unsupported", mirror)
    folder = mirror / leaf.dataset
    if not folder.is_dir():
        return Gap(leaf, "dataset", folder)
    import datasets

    try:
        builder = datasets.load_dataset_builder(str(folder), leaf.config)
    except (ValueError, FileNotFoundError):  # no such config, or none of its files
        return Gap(leaf, "config", folder)
    absent = tuple(split for split in leaf.splits if split not in (builder.config.data_files or {}))
    return Gap(leaf, "splits", folder, absent) if absent else None


def gaps(leaves: list[Leaf], mirror: Path) -> list[Gap]:
    """What the mirror lacks for each of these leaves (none: it serves them all)."""
    return [found for leaf in leaves if (found := gap(leaf, mirror)) is not None]


def describe(gaps: list[Gap]) -> str:
    """What is missing, one clause per dataset, naming the files expected."""
    clauses = []
    for dataset, group in _by_dataset(gaps):
        if dataset is None:
            clauses.append(f"{', '.join(g.leaf.task for g in group)}, which read no hub dataset through a task config")
        elif group[0].missing == "dataset":
            folder = group[0].folder
            configs = [g.leaf.config for g in group if g.leaf.config]
            splits = [s for g in group for s in g.leaf.splits]
            what = "; ".join(filter(None, (_named("config", configs), _named("split", splits))))
            clauses.append(
                f"{dataset} ({what}) at {folder}, as `hf download --repo-type dataset {dataset} --local-dir {folder}` "
                "writes it"
            )
        else:
            configs = [g.leaf.config or "default" for g in group if g.missing == "config"]
            splits = [
                f"{_named('split', list(g.splits))} of config {g.leaf.config or 'default'}" for g in group if g.splits
            ]
            what = " and ".join(filter(None, (_named("config", configs), *splits)))
            clauses.append(f"{dataset} {what} under {group[0].folder} (README.md `configs:` entries and their files)")
    return "; ".join(clauses)


def _named(word: str, items: list[str]) -> str:
    """'config a' or 'configs a, b' (each item once); '' for none."""
    unique = list(dict.fromkeys(items))
    return f"{word}{'s' if len(unique) > 1 else ''} {', '.join(unique)}" if unique else ""


def _by_dataset(gaps: list[Gap]) -> Iterator[tuple[str | None, list[Gap]]]:
    datasets: dict[str | None, list[Gap]] = {}
    for one in gaps:
        datasets.setdefault(None if one.missing == "unsupported" else one.leaf.dataset, []).append(one)
    yield from datasets.items()


def prepare(tasks: list[str], mirror: Path, out_dir: Path) -> Prepared:
    """Check the mirror serves every leaf of the named tasks and write their overrides. Raises NotInMirror, one
    sentence, before lm-eval starts."""
    shutil.rmtree(out_dir, ignore_errors=True)  # an earlier server's run of this id may have left other overrides
    served: dict[str, Leaf] = {}
    for name in tasks:
        named = leaves(name)
        if lacking := gaps(named, mirror):
            share = f"{len(lacking)} of its {len(named)} tasks lack" if len(named) > 1 else "it lacks"
            raise NotInMirror(f"{name} cannot run from the dataset mirror {mirror}: {share} {describe(lacking)}.")
        served.update((leaf.task, leaf) for leaf in named)
    for leaf in served.values():
        assert leaf.upstream is not None and leaf.dataset is not None  # a leaf without them has a gap
        write_override(leaf.task, leaf.upstream, mirror / leaf.dataset, out_dir)
    return Prepared(out_dir, content(mirror / str(leaf.dataset) for leaf in served.values()))


def content(folders: Iterable[Path]) -> str:
    """A digest of every file under the folders (path, size, modification time). The datasets library keys a local
    folder's cache on its README alone, so without a cache per content a mirror entry changed in place (a newer
    snapshot, other rows) would be read from the old one's arrow files."""
    digest = hashlib.sha256()
    for folder in sorted(set(folders)):
        for path in sorted(folder.rglob("*")):
            if path.is_file():  # a link counts as the file it points to
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def write_override(task: str, upstream: Path, folder: Path | None, out_dir: Path) -> None:
    """lm-eval's own task file with only its data source changed (None: upstream's): registered later than
    upstream's under the same name (lm-eval logs "Task ... overrides existing task"), it replaces it, in its groups
    and tags too. A sandboxed code task's file cannot be included air-gapped: it is copied, scored by gate's code."""
    out_dir.mkdir(parents=True, exist_ok=True)
    source = {} if folder is None else {"dataset_path": str(folder)}
    if task in code_tasks.SANDBOXED:
        text = code_tasks.dump({**code_tasks.config(upstream), **source})
    else:
        text = yaml.safe_dump({"include": str(upstream), **source}, sort_keys=False)
    (out_dir / f"{task}.yaml").write_text(text)
