"""Address parsing the way kube-proxy does it (Go's net.ParseIPSloppy).

Kubernetes accepts legacy IPv4 text with leading zeros ("172.30.0.041") and
kube-proxy writes it back normalised ("172.30.0.41"); Python's ipaddress
refuses such text, so this module bridges the two.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Optional, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@lru_cache(maxsize=None)
def parse_ip_sloppy(text: str) -> Optional[IPAddress]:
    """An IP address, accepting IPv4 octets with leading zeros; None if invalid."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        octets = [int(p, 10) for p in parts]
        if all(o <= 255 for o in octets):
            return ipaddress.IPv4Address(".".join(map(str, octets)))
    return None


_CANONICAL: dict[str, Optional[tuple[str, int]]] = {}
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}").fullmatch


def canonical_ip(text: str) -> Optional[tuple[str, int]]:
    """(Go's ip.String() of ParseIPSloppy(text), IP version), or None; memoised.

    The renderer calls this once per endpoint address, so canonical dotted
    quads take a fast path that skips the ipaddress module.
    """
    hit = _CANONICAL.get(text)
    if hit is not None or text in _CANONICAL:
        return hit
    result: Optional[tuple[str, int]] = None
    if _CANONICAL_V4(text):
        result = (text, 4)
    else:
        ip = parse_ip_sloppy(text)
        if ip is not None:
            result = (str(ip), ip.version)
    if len(_CANONICAL) < 1_000_000:
        _CANONICAL[text] = result
    return result


def parse_cidr_sloppy(text: str) -> Optional[IPNetwork]:
    """A network (host bits cleared, as Go's ParseCIDR does); None if invalid."""
    addr, sep, bits = text.partition("/")
    if not sep or not bits.isdigit():
        return None
    ip = parse_ip_sloppy(addr)
    if ip is None:
        return None
    prefix = int(bits, 10)
    if prefix > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def ip_family(ip: IPAddress) -> str:
    return "IPv6" if ip.version == 6 else "IPv4"


def join_host_port(ip: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around IPv6 literals."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
