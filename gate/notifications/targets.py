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


# Not globally reachable, from the IANA IPv4 and IPv6 Special-Purpose Address Registries (2025 editions), plus
# multicast and the deprecated site-local block. Written out because `ipaddress.is_global` differs between
# Python releases (3.11 misses several of these) and says nothing of addresses embedded in IPv6 ones.
_V4_SPECIAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_SPECIAL = tuple(
    ipaddress.IPv6Network(n)
    for n in ("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16")
)  # fmt: skip
# IPv6 forms that carry an IPv4 address in their last 32 bits: mapped, SIIT-translated, NAT64 (RFC 6052)
_V6_EMBEDDING_V4 = tuple(ipaddress.IPv6Network(n) for n in ("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"))


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally reachable unicast, judging an IPv4 address embedded in an IPv6 one (mapped, translated, NAT64,
    6to4) by itself; Teredo and every other special-purpose block are refused."""
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in _V4_SPECIAL)
    if any(ip in net for net in _V6_EMBEDDING_V4):
        return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        return is_public(ip.sixtofour)
    return ip in _V6_GLOBAL_UNICAST and not any(ip in net for net in _V6_SPECIAL)


def check_addresses(addresses: list[str], allow_private: bool) -> None:
    """Refuse every address that is not globally reachable (SSRF into the network), unless private ones are allowed;
    loopback stays refusable only through that switch, which the tests' loopback receivers use."""
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not allow_private and not is_public(ip):
            raise TargetRefused(f"the callback host resolves to {ip}, a non-public address (not globally reachable)")
