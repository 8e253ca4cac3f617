"""Callbacks reach only globally routable addresses: the IANA special-purpose registries, in every IPv6 form that
embeds an IPv4 address, and through host names (resolved in a mount namespace with its own /etc/hosts)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from gate.notifications import targets

# The IANA IPv4 and IPv6 Special-Purpose Address Registries' blocks that are not globally reachable, as published
# (not read from gate's own table), plus multicast and the deprecated IPv6 site-local block.
V4_NOT_GLOBAL = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
]  # fmt: skip
V6_NOT_GLOBAL = [
    "::1/128", "::/128", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:2::/48",
    "2001:10::/28", "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
]  # fmt: skip
V4_PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.215.14", "100.128.0.1", "100.63.255.255", "192.0.1.1", "198.20.0.1"]
V6_PUBLIC = ["2606:4700::1111", "2a00:1450:4001:80b::200e", "2400:cb00::1"]


def edges(network: str) -> list[str]:
    net = ipaddress.ip_network(network)
    return [str(net[0]), str(net[net.num_addresses // 2]), str(net[-1])]


def v6_forms(v4: str) -> list[str]:
    """The IPv6 addresses that carry `v4`: mapped, SIIT-translated, NAT64 and 6to4."""
    n = int(ipaddress.IPv4Address(v4))
    return [
        str(ipaddress.IPv6Address((0xFFFF << 32) | n)),
        str(ipaddress.IPv6Address((0xFFFF << 48) | n)),
        str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),
        str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)),
    ]


def refused(address: str) -> bool:
    try:
        targets.check_addresses([address], allow_private=False)
    except targets.TargetRefused:
        return True
    return False


@pytest.mark.parametrize("network", V4_NOT_GLOBAL + V6_NOT_GLOBAL)
def test_every_special_purpose_block_is_refused(network: str) -> None:
    for address in edges(network):
        assert refused(address), address


@pytest.mark.parametrize("network", V4_NOT_GLOBAL)
def test_an_ipv4_address_hidden_in_ipv6_is_judged_by_itself(network: str) -> None:
    for v4 in edges(network):
        for v6 in v6_forms(v4):
            assert refused(v6), f"{v6} carries {v4}"


def test_public_addresses_pass_in_every_form() -> None:
    for v4 in V4_PUBLIC:
        assert not refused(v4)
        assert not any(refused(v6) for v6 in v6_forms(v4)), v4
    assert not any(refused(v6) for v6 in V6_PUBLIC)
    assert refused("2001:0:4136:e378:8000:63bf:3fff:fdd2")  # Teredo: refused whatever it embeds
    assert refused("fe80::1%eth0")  # a zone index does not hide the address


def test_allowing_private_addresses_is_an_explicit_switch() -> None:
    targets.check_addresses(["127.0.0.1", "10.1.2.3", "::1"], allow_private=True)


RESOLVE = """
import sys
from gate.notifications import sender
from gate.settings import Settings
settings = Settings(callback_allowed_hosts=sys.argv[1], callback_allow_private=False)
try:
    sender._pinned_callback(settings, f"http://{sys.argv[1]}/hook")
except sender.Unsendable as exc:
    print("unsendable:", exc)
else:
    print("sent")
"""


@pytest.mark.parametrize(
    "address", ["100.100.100.200", "100.64.0.1", "fec0::1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "93.184.215.14"]
)
def test_host_names_are_checked_after_resolution(address: str, tmp_path: Path) -> None:
    """The sender's own lookup (getaddrinfo, /etc/hosts first) in a private mount namespace: nothing leaves the
    machine, and the system's /etc/hosts is untouched."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{address} callback.example\n")
    script = f'mount --bind {hosts} /etc/hosts && exec "$0" -c "$1" callback.example'
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, sys.executable, RESOLVE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = ipaddress.ip_address(address)
    expected = "sent" if address == "93.184.215.14" else f"unsendable: refused: the callback host resolves to {shown},"
    assert result.stdout.strip().startswith(expected), result.stdout
