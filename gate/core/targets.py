"""Where gate may send notifications: admin-listed hosts only, and never (by default) a private address."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The callback target is not allowed."""


def allowed_hosts(setting: str) -> set[str]:
    return {host.strip().lower() for host in setting.split(",") if host.strip()}


def web_host(url: str) -> str:
    """The URL's host, if the URL is http(s) and carries no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http(s), with a host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    return parts.hostname


def check_url(url: str, allowed: set[str]) -> str:
    """The URL's host, if the URL is a plain web URL and its host is on the allow-list."""
    host = web_host(url)
    if host.lower() not in allowed:
        raise TargetRefused(f"callback host {host!r} is not on the admin's allow-list")
    return host


def check_addresses(addresses: list[str], allow_private: bool) -> None:
    """Refuse loopback, private, link-local, multicast and unspecified addresses (SSRF into the network)."""
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not allow_private and (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_unspecified
            or ip.is_reserved
        ):
            raise TargetRefused(f"the callback host resolves to {ip}, a non-public address")
