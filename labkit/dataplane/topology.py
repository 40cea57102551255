"""A lab as data: namespaces joined by veth pairs and bridges.

Pure description (like mininet's topo.py): building a Topology touches no
kernel. The walk reads it; the netns backend can create the same thing for
real. Mutable state that packets leave behind (conntrack, recent tables)
lives apart, in LabState, so one topology can be walked from many states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from ..errors import ManifestError, Problem
from .conntrack import Conntrack, RecentTables
from .iptables_parse import Ruleset, parse_iptables_restore
from .netfilter import CompiledRuleset
from .packet import ip_int
from .routing import Address, Interface, Route, RouteResult, lookup_route, prefix_mask, \
    select_source


@dataclass
class Namespace:
    name: str
    forwarding: bool = False
    interfaces: dict[str, Interface] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    rules: Optional[CompiledRuleset] = None
    listeners: Optional[set] = None  # {(proto, port)}; None: every port answers
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if "lo" not in self.interfaces:
            self.interfaces["lo"] = Interface("lo", "lo", [Address("127.0.0.1", 8)])

    def invalidate(self) -> None:
        """Forget cached lookups after the addresses or routes changed."""
        self._cache.clear()

    @property
    def ref(self) -> str:
        return f"Namespace {self.name}"

    def local_ips(self) -> frozenset[str]:
        ips = self._cache.get("local")
        if ips is None:
            ips = self._cache["local"] = frozenset(
                a.ip for i in self.interfaces.values() for a in i.addresses)
        return ips

    def route(self, dst: str) -> RouteResult:
        key = ("route", dst)
        r = self._cache.get(key)
        if r is None:
            r = self._cache[key] = lookup_route(self.interfaces, self.routes, dst)
        return r

    def source_for(self, dev: str, toward: str) -> str:
        return select_source(self.interfaces, dev, toward)

    def addr_type(self, ip: str) -> str:
        """What `-m addrtype` calls this address, seen from this namespace."""
        key = ("type", ip)
        t = self._cache.get(key)
        if t is None:
            t = self._cache[key] = self._addr_type(ip)
        return t

    def _addr_type(self, ip: str) -> str:
        if ip in self.local_ips() or ip.startswith("127."):
            return "LOCAL"
        n = ip_int(ip)
        if n >> 28 == 0xE:
            return "MULTICAST"
        if ip == "255.255.255.255":
            return "BROADCAST"
        for i in self.interfaces.values():
            for a in i.addresses:
                if a.prefixlen < 31 and a.broadcast == ip:
                    return "BROADCAST"
        r = self.route(ip)
        if r.kind in ("blackhole", "unreachable", "prohibit"):
            return r.kind.upper()
        return "UNICAST"

    def owns(self, ip: str) -> bool:
        return ip in self.local_ips()

    def render_routes(self) -> str:
        from .routing import all_routes
        return "\n".join(r.render() for r in all_routes(self.interfaces, self.routes)) + "\n"


class Topology:
    """Namespaces and links. Methods mirror `ip` verbs and check like `ip` does."""

    def __init__(self):
        self.namespaces: dict[str, Namespace] = {}

    def ns(self, name: str) -> Namespace:
        try:
            return self.namespaces[name]
        except KeyError:
            raise ManifestError([Problem(f"Namespace {name}", "", "no such namespace",
                                         f"add it first with add_namespace({name!r})")]) from None

    def add_namespace(self, name: str, forwarding: bool = False,
                      rules: Union[str, Ruleset, CompiledRuleset, None] = None,
                      listeners: Optional[set] = None) -> Namespace:
        if name in self.namespaces:
            raise ManifestError([Problem(f"Namespace {name}", "", "already exists",
                                         "pick another name")])
        ns = Namespace(name, forwarding, listeners=listeners)
        self.namespaces[name] = ns
        if rules is not None:
            self.set_rules(name, rules)
        return ns

    def set_rules(self, name: str, rules: Union[str, Ruleset, CompiledRuleset],
                  use_index: bool = True) -> None:
        if isinstance(rules, str):
            rules = parse_iptables_restore(rules)
        if isinstance(rules, Ruleset):
            rules = CompiledRuleset(rules, use_index)
        self.ns(name).rules = rules

    def _new_iface(self, ns: str, ifname: str, kind: str) -> Interface:
        n = self.ns(ns)
        problems = []
        if len(ifname.encode()) > 15:
            problems.append(Problem(n.ref, f"interfaces.{ifname}",
                                    "interface names have at most 15 bytes", "use a shorter name"))
        if ifname in n.interfaces:
            problems.append(Problem(n.ref, f"interfaces.{ifname}", "interface already exists",
                                    "pick another name"))
        if problems:
            raise ManifestError(problems)
        iface = n.interfaces[ifname] = Interface(ifname, kind)
        return iface

    def add_veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """`ip link add IF_A type veth peer name IF_B`, ends moved into NS_A / NS_B."""
        a = self._new_iface(ns_a, if_a, "veth")
        b = self._new_iface(ns_b, if_b, "veth")
        a.peer, b.peer = (ns_b, if_b), (ns_a, if_a)

    def add_bridge(self, ns: str, name: str) -> None:
        self._new_iface(ns, name, "bridge")

    def add_external(self, ns: str, ifname: str) -> None:
        """An interface that leads out of the lab: packets sent there leave it."""
        self._new_iface(ns, ifname, "external")

    def set_master(self, ns: str, ifname: str, bridge: str) -> None:
        n = self.ns(ns)
        br = n.interfaces.get(bridge)
        if br is None or br.kind != "bridge":
            raise ManifestError([Problem(n.ref, f"interfaces.{ifname}.master",
                                         f"{bridge} is not a bridge in this namespace",
                                         f"add_bridge({ns!r}, {bridge!r}) first")])
        self._iface(n, ifname).master = bridge
        n.invalidate()

    def _iface(self, n: Namespace, ifname: str) -> Interface:
        try:
            return n.interfaces[ifname]
        except KeyError:
            raise ManifestError([Problem(n.ref, f"interfaces.{ifname}", "no such interface",
                                         "create it first")]) from None

    def add_address(self, ns: str, ifname: str, cidr: str) -> None:
        n = self.ns(ns)
        try:
            addr = Address.parse(cidr)
        except ValueError as e:
            raise ManifestError([Problem(n.ref, f"interfaces.{ifname}.addresses",
                                         str(e), "write it like 10.244.1.1/24")]) from None
        self._iface(n, ifname).addresses.append(addr)
        n.invalidate()

    def add_route(self, ns: str, dst: str, dev: str = "", via: Optional[str] = None,
                  src: Optional[str] = None, onlink: bool = False, kind: str = "unicast",
                  metric: int = 0) -> None:
        """`ip route add DST [via GW] [dev DEV] [src IP] [onlink]`; DST may be 'default'."""
        n = self.ns(ns)
        where = f"routes[{dst}]"
        problems = []
        if dst == "default":
            net, bits = 0, 0
        else:
            a = Address.parse(dst if "/" in dst else dst + "/32")
            bits = a.prefixlen
            net = ip_int(a.ip) & prefix_mask(bits)
            if net != ip_int(a.ip):
                problems.append(Problem(n.ref, where, f"{dst} has host bits set",
                                        "use the network address"))
        if kind == "unicast":
            if not dev and via:
                r = n.route(via)
                if r.kind != "unicast" or r.route is None or not r.route.connected:
                    problems.append(Problem(n.ref, where, f"gateway {via} is not on a connected "
                                            "network (ip: 'Nexthop has invalid gateway')",
                                            "give dev and onlink, or add an address on its subnet"))
                else:
                    dev = r.dev
            if not dev:
                problems.append(Problem(n.ref, where, "a route needs dev or via", "add dev=..."))
            elif dev not in n.interfaces:
                problems.append(Problem(n.ref, where, f"no interface {dev}", "create it first"))
            elif via and not onlink:
                if not any(a.contains(via) for a in n.interfaces[dev].addresses):
                    problems.append(Problem(n.ref, where, f"gateway {via} is not on a network of "
                                            f"{dev} (ip: 'Nexthop has invalid gateway')",
                                            "add onlink=True, or an address on its subnet"))
            if src and not n.owns(src):
                problems.append(Problem(n.ref, where, f"src {src} is not an address of this "
                                        "namespace", "use one of its own addresses"))
        if problems:
            raise ManifestError(problems)
        n.routes.append(Route(net, prefix_mask(bits), dev, via, src, onlink, kind, metric))
        n.invalidate()

    def neighbour(self, ns: str, dev: str, nexthop: str) -> Optional[tuple[str, str]]:
        """Who answers ARP for `nexthop` out of `dev`: (namespace, ingress interface).

        A veth delivers to its peer; a bridge port forwards to the port
        whose namespace owns the address (or to the bridge itself)."""
        n = self.namespaces[ns]
        iface = n.interfaces.get(dev)
        if iface is None:
            return None
        if iface.kind == "bridge":
            return self._bridge_lookup(ns, dev, nexthop, exclude=None)
        if iface.kind != "veth" or iface.peer is None:
            return None
        pns, pif = iface.peer
        peer_ns = self.namespaces[pns]
        peer_if = peer_ns.interfaces[pif]
        if peer_if.master:
            return self._bridge_lookup(pns, peer_if.master, nexthop, exclude=pif)
        return (pns, pif) if peer_ns.owns(nexthop) else None

    def _bridge_lookup(self, ns: str, bridge: str, nexthop: str,
                       exclude: Optional[str]) -> Optional[tuple[str, str]]:
        n = self.namespaces[ns]
        if any(a.ip == nexthop for a in n.interfaces[bridge].addresses):
            return (ns, bridge)
        for port in n.interfaces.values():
            if port.master != bridge or port.name == exclude or port.peer is None:
                continue
            pns, pif = port.peer
            if self.namespaces[pns].owns(nexthop):
                return (pns, pif)
        return None


class NetnsState:
    """What packets leave behind in one namespace."""

    def __init__(self):
        self.conntrack = Conntrack()
        self.recent = RecentTables()
        self.nfacct: dict[str, int] = {}

    def copy(self) -> "NetnsState":
        s = NetnsState()
        s.conntrack = self.conntrack.copy()
        s.recent = self.recent.copy()
        s.nfacct = dict(self.nfacct)
        return s


class LabState:
    """Per-namespace state for a whole lab; copy() before exploring branches."""

    def __init__(self):
        self.netns: dict[str, NetnsState] = {}

    def of(self, ns: str) -> NetnsState:
        s = self.netns.get(ns)
        if s is None:
            s = self.netns[ns] = NetnsState()
        return s

    def copy(self) -> "LabState":
        c = LabState()
        c.netns = {k: v.copy() for k, v in self.netns.items()}
        return c
