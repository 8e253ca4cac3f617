"""Webhook signatures: GitHub (X-Hub-Signature-256), GitLab (X-Gitlab-Token) and Standard Webhooks.

All comparisons are constant-time. Secrets are bytes; a Standard Webhooks secret is shown as whsec_<base64>.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

STANDARD_PREFIX = "whsec_"
TIMESTAMP_TOLERANCE_S = 300  # Standard Webhooks: refuse messages older (or newer) than 5 minutes


class BadSignature(Exception):
    """The webhook's signature does not verify."""


def derive_secret(server_key: str, source: str, nonce: str) -> bytes:
    """A CI source's secret, recomputed from the server key: the database keeps only the nonce."""
    return hmac.new(server_key.encode(), f"ci-source\0{source}\0{nonce}".encode(), hashlib.sha256).digest()


def standard_secret_text(secret: bytes) -> str:
    return STANDARD_PREFIX + base64.b64encode(secret).decode()


def github_signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_github(secret: bytes, body: bytes, header: str | None) -> None:
    if not header or not hmac.compare_digest(github_signature(secret, body).encode(), header.encode()):
        raise BadSignature("X-Hub-Signature-256 does not match the body")


def verify_gitlab(secret: bytes, header: str | None) -> None:
    expected = standard_secret_text(secret)
    if not header or not hmac.compare_digest(expected.encode(), header.encode()):
        raise BadSignature("X-Gitlab-Token does not match")


def standard_signature(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def verify_standard(
    secret: bytes, msg_id: str | None, timestamp: str | None, signatures: str | None, body: bytes, now: float
) -> None:
    if not msg_id or not timestamp or not signatures:
        raise BadSignature("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise BadSignature("webhook-timestamp is not a Unix time") from None
    if abs(now - sent) > TIMESTAMP_TOLERANCE_S:
        raise BadSignature("webhook-timestamp is more than 5 minutes away: refused as a possible replay")
    expected = standard_signature(secret, msg_id, sent, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split()):
        raise BadSignature("webhook-signature does not match the body")
