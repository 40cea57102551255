"""Routing inside one namespace: interfaces, addresses, routes, source choice.

The lookup is the kernel's: local addresses first (the local table), then
the longest matching prefix of the main table (connected routes come from
the addresses, like `proto kernel scope link`), lowest metric on a tie.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .packet import int_ip, ip_int

LOOPBACK_NET = (ip_int("127.0.0.0"), 0xFF000000)
ROUTE_KINDS = ("unicast", "blackhole", "unreachable", "prohibit")


def prefix_mask(bits: int) -> int:
    return (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF if bits else 0


@dataclass(frozen=True)
class Address:
    """An interface address, `10.244.1.1/24`."""

    ip: str
    prefixlen: int

    @classmethod
    def parse(cls, text: str) -> "Address":
        ip, _, plen = text.partition("/")
        ip_int(ip)
        bits = int(plen) if plen else 32
        if not 0 <= bits <= 32:
            raise ValueError(f"{text}: prefix length must be 0-32")
        return cls(ip, bits)

    @property
    def network(self) -> tuple[int, int]:
        mask = prefix_mask(self.prefixlen)
        return ip_int(self.ip) & mask, mask

    @property
    def broadcast(self) -> str:
        net, mask = self.network
        return int_ip(net | (~mask & 0xFFFFFFFF))

    def contains(self, ip: str) -> bool:
        net, mask = self.network
        return ip_int(ip) & mask == net

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@dataclass
class Interface:
    """kind: veth, bridge, lo, dummy, or external (leads out of the lab)."""

    name: str
    kind: str = "veth"
    addresses: list[Address] = field(default_factory=list)
    peer: Optional[tuple[str, str]] = None  # (namespace, ifname) of a veth's other end
    master: Optional[str] = None            # bridge this interface is a port of


@dataclass(frozen=True)
class Route:
    net: int
    mask: int
    dev: str = ""
    via: Optional[str] = None
    src: Optional[str] = None
    onlink: bool = False
    kind: str = "unicast"
    metric: int = 0
    connected: bool = False

    @property
    def prefixlen(self) -> int:
        return bin(self.mask).count("1")

    def render(self) -> str:
        """Like one line of `ip route`."""
        dst = "default" if self.mask == 0 else (
            int_ip(self.net) if self.mask == 0xFFFFFFFF else f"{int_ip(self.net)}/{self.prefixlen}")
        parts = [dst] if self.kind == "unicast" else [self.kind, dst]
        if self.via:
            parts.append(f"via {self.via}")
        if self.dev:
            parts.append(f"dev {self.dev}")
        if self.connected:
            parts.append("proto kernel scope link")
        if self.src:
            parts.append(f"src {self.src}")
        if self.metric:
            parts.append(f"metric {self.metric}")
        if self.onlink:
            parts.append("onlink")
        return " ".join(parts)


class RouteResult(NamedTuple):
    kind: str                 # local, unicast, blackhole, unreachable, prohibit, none
    dev: str = ""
    gateway: str = ""         # the next hop's address (via, or the destination itself)
    src: str = ""             # preferred source address
    route: Optional[Route] = None


def lookup_route(interfaces: dict[str, Interface], routes: list[Route], dst: str) -> RouteResult:
    """Where a packet to `dst` goes from this namespace."""
    d = ip_int(dst)
    for iface in interfaces.values():
        for a in iface.addresses:
            if a.ip == dst:
                return RouteResult("local", "lo", dst, dst)
    if d & LOOPBACK_NET[1] == LOOPBACK_NET[0]:
        return RouteResult("local", "lo", dst, "127.0.0.1")
    best: Optional[Route] = None
    for r in all_routes(interfaces, routes):
        if d & r.mask != r.net:
            continue
        if best is None or r.mask > best.mask or (r.mask == best.mask and r.metric < best.metric):
            best = r
    if best is None:
        return RouteResult("none")
    if best.kind != "unicast":
        return RouteResult(best.kind, route=best)
    gateway = best.via or dst
    src = best.src or select_source(interfaces, best.dev, gateway)
    return RouteResult("unicast", best.dev, gateway, src, best)


def all_routes(interfaces: dict[str, Interface], routes: list[Route]) -> list[Route]:
    connected = []
    for iface in interfaces.values():
        if iface.kind == "lo" or iface.master:
            continue
        for a in iface.addresses:
            net, mask = a.network
            connected.append(Route(net, mask, iface.name, src=a.ip, connected=True))
    return connected + list(routes)


def select_source(interfaces: dict[str, Interface], dev: str, toward: str) -> str:
    """The kernel's inet_select_addr, simplified: an address of `dev` on the
    next hop's subnet, else the first address of `dev`, else any address."""
    iface = interfaces.get(dev)
    if iface:
        for a in iface.addresses:
            if a.contains(toward):
                return a.ip
        if iface.addresses:
            return iface.addresses[0].ip
    for i in interfaces.values():
        if i.kind != "lo" and i.addresses:
            return i.addresses[0].ip
    return "0.0.0.0"
