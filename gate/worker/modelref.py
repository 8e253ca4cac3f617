"""Model references: a local path, a hub id (lm-eval resolves it), or a ModelScope id (`modelscope:org/name`)."""

from __future__ import annotations

from pathlib import Path

MODELSCOPE_PREFIX = "modelscope:"


class ModelUnavailable(RuntimeError):
    """The model reference cannot be resolved on this worker: the user's error, never retried."""


def resolve(reference: str, cache_dir: Path | None = None) -> str:
    """A path or id lm-eval can load. ModelScope ids are downloaded through the `modelscope` package."""
    if reference.startswith(MODELSCOPE_PREFIX):
        model_id = reference.removeprefix(MODELSCOPE_PREFIX)
        try:
            from modelscope import snapshot_download
        except ImportError:
            raise ModelUnavailable(
                f"{reference} is a ModelScope id, but the modelscope package is not installed on this worker "
                "(pip install modelscope), or pass a local path"
            ) from None
        try:
            return str(snapshot_download(model_id, cache_dir=str(cache_dir) if cache_dir else None))
        except Exception as exc:  # modelscope raises many types; all mean "not available here"
            raise ModelUnavailable(f"ModelScope could not provide {model_id}: {exc}") from None
    looks_like_path = reference.startswith(("/", "./", "../", "~"))
    if looks_like_path:
        path = Path(reference).expanduser()
        if not path.exists():
            raise ModelUnavailable(f"model path {path} does not exist on this worker")
        return str(path.resolve())
    return reference


def local_folder(resolved: str, revision: str | None = None) -> Path:
    """The folder of files a resolved reference loads: a local path as it is, a hub id from the local hub cache
    (workers run offline, so a model must be downloaded before it is evaluated)."""
    if Path(resolved).is_absolute() or Path(resolved).is_dir():  # transformers, too, loads an existing folder first
        return Path(resolved).absolute()
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError
    except ImportError:
        raise ModelUnavailable(f"{resolved} is a hub id, but huggingface_hub is not installed on this worker") from None
    try:
        return Path(snapshot_download(resolved, revision=revision, local_files_only=True))
    except (OSError, HFValidationError):  # LocalEntryNotFoundError is an OSError
        raise ModelUnavailable(
            f"{resolved}{f' at revision {revision}' if revision else ''} is not in this worker's hub cache "
            "(workers run offline: download it first, or pass a local path)"
        ) from None
