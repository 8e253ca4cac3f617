"""Tokens gate must use but never show (a CI system's API token), sealed with a key derived from the server key.

A database leak alone does not reveal them; each sealed value is bound to the notifier it belongs to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SealBroken(ValueError):
    """The sealed token does not open with this server key: the key changed, or the value was altered."""


def _key(server_key: str) -> bytes:
    return hmac.new(server_key.encode(), b"sealed-token", hashlib.sha256).digest()


def seal(server_key: str, plaintext: str, bound_to: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(_key(server_key)).encrypt(nonce, plaintext.encode(), bound_to.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(server_key: str, sealed: str, bound_to: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return AESGCM(_key(server_key)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SealBroken(SealBroken.__doc__) from exc
