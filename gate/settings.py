"""One place for configuration: environment variables prefixed GATE_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_KEY_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATE_")

    # Unset: an SQLite file in the working directory.
    database_url: str = "sqlite:///gate.db"
    baselines_dir: Path = ROOT / "baselines"
    templates_dir: Path = ROOT / "templates"
    # Reads (GET) without a token; writes always need one.
    anonymous_read: bool = False
    # Each API process remembers a token it found live for this long: a revoked token stops working within it
    # (0: every request looks its token up)
    token_cache_s: float = 2.0
    # Status badges are embedded in READMEs, fetched without credentials; they show only a verdict word.
    public_badges: bool = True
    max_upload_bytes: int = 64 * 1024 * 1024
    sqlite_busy_timeout_s: float = 30.0
    # Worker protocol (issue defaults from GitHub/GitLab/Buildkite runners and Solid Queue).
    lease_s: float = 300.0
    reaper_interval_s: float = 60.0
    # One process of the deployment runs the reaper and the delivery sender (gate.deployment.leader): it renews its
    # lead every leader_renew_s; when it dies, another takes over once leader_ttl_s has passed
    leader_ttl_s: float = 15.0
    leader_renew_s: float = 5.0
    # Postgres: processes wake each other with LISTEN/NOTIFY (gate.deployment.wakeups). Off behind a connection pooler
    # in transaction mode (PgBouncer's usual one), which cannot hold a LISTEN: waiters then poll.
    listen_notify: bool = True
    max_attempts: int = 3
    queued_ttl_s: float = 24 * 3600.0
    claim_wait_s: float = 20.0  # long-poll window of a claim
    worker_offline_after_s: float = 120.0
    public_url: str = "http://127.0.0.1:8000"
    # Webhooks. CI-source secrets and the outbound signing secret derive from this key: without it, a database
    # leak reveals none of them. Unset: webhooks are off.
    secret_key: str | None = None
    webhook_max_bytes: int = 1024 * 1024
    # Inbound delivery ids are the only replay defence for GitHub's signatures (no timestamp): a week at least.
    inbound_delivery_keep_days: float = Field(default=30.0, ge=7.0)
    # Callback targets: host names (or IPs) an admin allows, comma-separated. Private, loopback and link-local
    # addresses are refused at send time unless callback_allow_private is set (a gate inside a private network).
    callback_allowed_hosts: str = ""
    callback_allow_private: bool = False
    delivery_poll_s: float = 1.0
    delivery_timeout_s: float = 15.0  # per attempt; a receiver slower than this is retried later
    delivery_schedule_s: str | None = None  # comma-separated override of the retry schedule (tests)

    @field_validator("secret_key")
    @classmethod
    def _usable_key(cls, key: str | None) -> str | None:
        """Empty means unset (webhooks off), never an empty HMAC key; a short key is refused, not used."""
        if not key:
            return None
        if len(key) < MIN_SECRET_KEY_CHARS:
            raise ValueError(f"GATE_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters")
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
