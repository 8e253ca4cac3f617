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
