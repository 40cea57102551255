"""Walk a packet through a lab: hooks in kernel order, routing, conntrack, links.

In one namespace a packet sent by a local process takes OUTPUT then
POSTROUTING; one arriving on an interface takes PREROUTING, then the routing
decision sends it to INPUT (local) or FORWARD + POSTROUTING (forwarding on).
Conntrack looks the packet up right after the raw table, NAT chains run only
for a flow's first packet, and the entry is confirmed at the last hook.
Crossing a veth into another namespace scrubs the mark and the conntrack
reference, as the kernel does.

Coins (`-m statistic`) come from a Chooser: a seeded random.Random, a fixed
branch (to replay a kernel run), or every branch in turn (walk_all_branches)
with the probability of each outcome.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

from ..errors import LabkitError
from . import targets as T
from .conntrack import ORIGINAL, REPLY, CtEntry, tcp_packet_is_invalid
from .netfilter import HOOK_TABLES, HookResult, traverse
from .packet import PORT_PROTOS, Packet, int_ip
from .topology import LabState, Topology
from .trace import TraceEvent, render_trace

MAX_NAMESPACE_HOPS = 32

ACCEPTED = ("delivered", "left the lab")


class BranchError(LabkitError):
    """A fixed branch did not say how to decide a coin the walk met."""


class Chooser:
    """Decides `-m statistic` coins and remembers the decisions and their odds."""

    def __init__(self):
        self.decisions: list[bool] = []
        self.odds: list[float] = []
        self.probability = 1.0

    def decide(self, p: float) -> bool:
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        if p >= 1.0:
            return True
        if p <= 0.0:
            return False
        d = self.decide(p)
        self.decisions.append(d)
        self.odds.append(p)
        self.probability *= p if d else 1.0 - p
        return d


class RandomChooser(Chooser):
    """Flip each coin with a seeded random.Random (the kernel uses a PRNG too)."""

    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng

    def decide(self, p):
        return self.rng.random() < p


class BranchChooser(Chooser):
    """Follow given decisions; past their end take `default` (or refuse)."""

    def __init__(self, branch: Sequence[bool], default: Optional[bool] = None):
        super().__init__()
        self.branch = list(branch)
        self.default = default

    def decide(self, p):
        k = len(self.decisions)
        if k < len(self.branch):
            return self.branch[k]
        if self.default is None:
            raise BranchError(f"the walk met coin number {k + 1} (probability {p:.4f}) but the "
                              f"branch gives only {len(self.branch)} decisions")
        return self.default


class Hop(NamedTuple):
    ns: str
    where: str
    packet: Packet


class CtNote(NamedTuple):
    ns: str
    event: str       # "new" (created and confirmed) or "seen" (an existing flow)
    entry: CtEntry   # a copy, as it was after this packet
    direction: int   # ORIGINAL or REPLY


@dataclass
class Walk:
    """What happened to one packet."""

    verdict: str                 # delivered, left the lab, dropped, rejected, no route,
                                 # forwarding disabled, refused, no neighbour, ttl exceeded
    ns: str                      # namespace where the walk ended
    packet: Packet               # the packet as it was at the end
    reason: str = ""
    hops: list[Hop] = field(default_factory=list)
    conntrack: list[CtNote] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    probability: float = 1.0
    decisions: tuple = ()
    explicit: bool = False       # a rule (not a policy or the stack) gave the verdict
    masquerade: bool = False     # a MASQUERADE or SNAT rule rewrote the source
    original: Optional[Packet] = None

    @property
    def kernel_verdict(self) -> str:
        """ACCEPT, DROP or REJECT, as iptables would summarize the walk."""
        if self.verdict in ACCEPTED:
            return "ACCEPT"
        if self.verdict in ("rejected", "refused"):
            return "REJECT"
        return "DROP"

    @property
    def delivered_to(self) -> Optional[tuple[str, str, int]]:
        if self.verdict != "delivered":
            return None
        return (self.ns, self.packet.dst, self.packet.dport)

    def render_trace(self, style: str = "nft") -> str:
        return render_trace(self.trace, style)

    def render(self) -> str:
        """A readable account for learners: verdict, hops, conntrack, rules."""
        head = f"verdict: {self.verdict}"
        if self.verdict == "delivered":
            head += f" to {self.ns} ({self.packet.dst}:{self.packet.dport})"
        elif self.ns:
            head += f" in {self.ns}"
        if self.reason:
            head += f" ({self.reason})"
        if self.probability != 1.0:
            head += f"  [probability {self.probability:.4f}]"
        lines = [head, "hops:"]
        width = max((len(h.ns) for h in self.hops), default=0)
        for h in self.hops:
            lines.append(f"  {h.ns:<{width}}  {h.where:<18} {h.packet.summary()}")
        if self.conntrack:
            lines.append("conntrack:")
            for c in self.conntrack:
                lines.append(f"  {c.ns} {c.event}: {c.entry.render(c.entry.expires - _age(c))}")
        lines.append("rules:")
        for ev in self.trace:
            lines.append("  " + ev.render_readable())
        return "\n".join(lines) + "\n"


def _age(note: CtNote) -> float:
    # entries are rendered with the timeout they had right after the packet
    from .conntrack import TCP_TIMEOUTS, UDP_STREAM_TIMEOUT, UDP_TIMEOUT
    e = note.entry
    if e.orig.proto == "tcp":
        return TCP_TIMEOUTS.get(e.tcp_state, 10)
    if e.orig.proto == "udp":
        return UDP_STREAM_TIMEOUT if e.assured else UDP_TIMEOUT
    return 30


class _Ctx:
    """What matchers may ask while a packet is in one namespace."""

    __slots__ = ("ns", "nsobj", "state", "now", "chooser", "trace", "trace_all", "traced",
                 "ct", "ct_dir", "ct_invalid", "ct_created")

    def __init__(self, ns, nsobj, state, now, chooser, trace, trace_all):
        self.ns, self.nsobj, self.state, self.now = ns, nsobj, state, now
        self.chooser, self.trace, self.trace_all = chooser, trace, trace_all
        self.traced = False
        self.ct: Optional[CtEntry] = None
        self.ct_dir = ORIGINAL
        self.ct_invalid = False
        self.ct_created = False

    def tracing(self) -> bool:
        return self.trace_all or self.traced

    def chance(self, p: float) -> bool:
        return self.chooser.chance(p)

    def ct_states(self) -> frozenset:
        if self.ct is None:
            return frozenset({"INVALID"}) if self.ct_invalid else frozenset({"UNTRACKED"})
        return self.ct.states(self.ct_dir)

    def addr_type(self, ip: str) -> str:
        return self.nsobj.addr_type(ip)

    def recent_check(self, table, addr, mode, seconds, reap, hitcount) -> bool:
        return self.state.recent.check(table, addr, mode, seconds, reap, hitcount, self.now)

    def count_nfacct(self, name: str) -> None:
        self.state.nfacct[name] = self.state.nfacct.get(name, 0) + 1


class _End(Exception):
    def __init__(self, verdict: str, ns: str, packet: Packet, reason: str = "",
                 explicit: bool = False):
        self.verdict, self.ns, self.packet = verdict, ns, packet
        self.reason, self.explicit = reason, explicit


class _Walker:
    def __init__(self, topo: Topology, state: LabState, chooser: Chooser, now: float,
                 rng: random.Random, trace_all: bool):
        self.topo, self.state, self.chooser, self.now = topo, state, chooser, now
        self.rng, self.trace_all = rng, trace_all
        self.hops: list[Hop] = []
        self.trace: list[TraceEvent] = []
        self.ct_notes: list[CtNote] = []
        self.masquerade = False
        self.filter_accept = False

    # --- the walk ---

    def run(self, ns: str, p: Packet, ingress: Optional[str]) -> Walk:
        original = p
        try:
            for _ in range(MAX_NAMESPACE_HOPS):
                ns, ingress, p = self.in_namespace(ns, p, ingress)
            raise _End("ttl exceeded", ns, p, f"more than {MAX_NAMESPACE_HOPS} namespaces")
        except _End as end:
            explicit = end.explicit
            if end.verdict in ACCEPTED:
                explicit = self.filter_accept
            return Walk(end.verdict, end.ns, end.packet, end.reason, self.hops, self.ct_notes,
                        self.trace, self.chooser.probability, tuple(self.chooser.decisions),
                        explicit, self.masquerade, original)

    def in_namespace(self, ns: str, p: Packet, ingress: Optional[str]):
        nsobj = self.topo.ns(ns)
        ctx = _Ctx(ns, nsobj, self.state.of(ns), self.now, self.chooser, self.trace,
                   self.trace_all)
        try:
            if ingress is None:
                return self.local_out(ctx, p)
            return self.arrive(ctx, p, ingress)
        finally:
            self.note_ct(ctx)

    def local_out(self, ctx: _Ctx, p: Packet):
        nsobj = ctx.nsobj
        r = nsobj.route(p.dst)
        if r.kind not in ("local", "unicast"):
            raise _End("no route", ctx.ns, p, f"no route to {p.dst} ({r.kind}): the sender gets "
                       "'Network is unreachable'")
        if not p.src:
            p = p.replace(src=r.src)
        p = p.replace(iifname="", oifname=r.dev)
        self.hop(ctx, "sent", p)
        p = self.hook(ctx, "OUTPUT", p)
        r2 = nsobj.route(p.dst)
        if r2.kind not in ("local", "unicast"):
            raise _End("no route", ctx.ns, p, f"no route to {p.dst} after DNAT")
        if r2.dev != p.oifname:
            p = p.replace(oifname=r2.dev)
        p = self.hook(ctx, "POSTROUTING", p)
        self.confirm(ctx, p)
        if r2.kind == "local":
            p = p.replace(iifname="lo", oifname="")
            p = self.hook(ctx, "PREROUTING", p, lookup_ct=False)
            return self.deliver(ctx, p)
        return self.egress(ctx, p, r2)

    def arrive(self, ctx: _Ctx, p: Packet, ingress: str):
        nsobj = ctx.nsobj
        p = p.replace(iifname=ingress, oifname="", mark=0)
        self.hop(ctx, f"in {ingress}", p)
        p = self.hook(ctx, "PREROUTING", p)
        r = nsobj.route(p.dst)
        if r.kind == "local":
            return self.deliver(ctx, p)
        if r.kind != "unicast":
            raise _End("no route", ctx.ns, p, f"no route to {p.dst} ({r.kind})")
        if not nsobj.forwarding:
            raise _End("forwarding disabled", ctx.ns, p,
                       f"{p.dst} is not local and net.ipv4.ip_forward is 0 in {ctx.ns}")
        p = p.replace(oifname=r.dev)
        p = self.hook(ctx, "FORWARD", p)
        p = self.hook(ctx, "POSTROUTING", p)
        self.confirm(ctx, p)
        return self.egress(ctx, p, r)

    def deliver(self, ctx: _Ctx, p: Packet):
        p = self.hook(ctx, "INPUT", p)
        self.confirm(ctx, p)
        self.hop(ctx, "delivered", p)
        listeners = ctx.nsobj.listeners
        if listeners is not None and p.proto in PORT_PROTOS and (p.proto, p.dport) not in listeners:
            raise _End("refused", ctx.ns, p, f"nothing listens on {p.proto} port {p.dport}")
        raise _End("delivered", ctx.ns, p)

    def egress(self, ctx: _Ctx, p: Packet, r):
        iface = ctx.nsobj.interfaces.get(r.dev)
        self.hop(ctx, f"out {r.dev}", p)
        if iface is not None and iface.kind == "external":
            raise _End("left the lab", ctx.ns, p, f"sent out of {r.dev} toward {r.gateway}")
        nb = self.topo.neighbour(ctx.ns, r.dev, r.gateway)
        if nb is None:
            raise _End("no neighbour", ctx.ns, p, f"nobody answers ARP for {r.gateway} on {r.dev}")
        nns, nif = nb
        return nns, nif, p.replace(mark=0)

    # --- hooks, conntrack, NAT ---

    def hook(self, ctx: _Ctx, hook: str, p: Packet, lookup_ct: bool = True) -> Packet:
        crs = ctx.nsobj.rules
        for table in HOOK_TABLES[hook]:
            if table == "nat":
                p = self.nat(ctx, hook, p)
            elif crs is not None and crs.chain(table, hook) is not None:
                res = traverse(crs, table, hook, p, ctx)
                p = res.packet
                if res.verdict != "ACCEPT":
                    self.stop(ctx, res, p)
                if table == "filter" and res.explicit:
                    self.filter_accept = True
            if table == "raw" and lookup_ct:
                self.ct_in(ctx, p)
        return p

    def stop(self, ctx: _Ctx, res: HookResult, p: Packet):
        verdict = "rejected" if res.verdict == "REJECT" else "dropped"
        rule = res.rule
        why = (f"{rule.table}:{rule.chain} rule {rule.canonical}" if rule is not None
               else "chain policy")
        raise _End(verdict, ctx.ns, p, why, res.explicit)

    def ct_in(self, ctx: _Ctx, p: Packet) -> None:
        ct = ctx.state.conntrack
        hit = ct.lookup(p, self.now)
        if hit is not None:
            e, d = hit
        else:
            if p.proto == "tcp" and tcp_packet_is_invalid(p.tcp_flags, False):
                ctx.ct, ctx.ct_invalid = None, True
                return
            e, d = ct.new_entry(p), ORIGINAL
            ctx.ct_created = True
        ct.note_packet(e, d, p, self.now)
        ctx.ct, ctx.ct_dir = e, d

    def nat(self, ctx: _Ctx, hook: str, p: Packet) -> Packet:
        manip = "dst" if hook in ("PREROUTING", "OUTPUT") else "src"
        e = ctx.ct
        if e is None:
            return p
        crs = ctx.nsobj.rules
        if not e.confirmed and manip not in e.nat_done:
            if crs is not None and crs.chain("nat", hook) is not None:
                res = traverse(crs, "nat", hook, p, ctx)
                p = res.packet
                if res.verdict != "ACCEPT":
                    self.stop(ctx, res, p)
                if res.nat is not None:
                    self.bind(ctx, e, manip, res.nat, p)
            e.nat_done.add(manip)
        if ctx.ct_dir == ORIGINAL:
            active = e.dst_nat if manip == "dst" else e.src_nat
            target = e.reply.invert()
        else:
            active = e.src_nat if manip == "dst" else e.dst_nat
            target = e.orig.invert()
        if not active:
            return p
        ports = p.proto in PORT_PROTOS
        if manip == "dst":
            new = p.replace(dst=target.dst, dport=target.dport if ports else p.dport)
        else:
            new = p.replace(src=target.src, sport=target.sport if ports else p.sport)
        if new != p:
            label = ("DNAT" if manip == "dst" else "SNAT") if ctx.ct_dir == ORIGINAL \
                else ("un-SNAT" if manip == "dst" else "un-DNAT")
            self.hop(ctx, f"{hook} {label}", new)
        return new

    def bind(self, ctx: _Ctx, e: CtEntry, manip: str, target, p: Packet) -> None:
        ct = ctx.state.conntrack
        addr = int_ip(target.addr_lo) if getattr(target, "addr_lo", None) is not None else None
        randomize = target.random or target.random_fully
        if target.kind == T.MASQUERADE:
            r = ctx.nsobj.route(p.dst)
            addr = r.src if r.dev == p.oifname and r.src else \
                ctx.nsobj.source_for(p.oifname, r.gateway or p.dst)
        if target.kind in (T.MASQUERADE, T.SNAT):
            self.masquerade = True
        ct.bind_nat(e, manip, addr, target.ports, randomize if manip == "src" else False, self.rng)

    def confirm(self, ctx: _Ctx, p: Packet) -> None:
        e = ctx.ct
        if e is None or e.confirmed:
            return
        if not ctx.state.conntrack.confirm(e):
            raise _End("dropped", ctx.ns, p, "conntrack: another flow already holds this tuple "
                       "(insert clash)")

    def note_ct(self, ctx: _Ctx) -> None:
        e = ctx.ct
        if e is None or not e.confirmed:
            return
        self.ct_notes.append(CtNote(ctx.ns, "new" if ctx.ct_created else "seen", e.copy(),
                                    ctx.ct_dir))

    def hop(self, ctx: _Ctx, where: str, p: Packet) -> None:
        self.hops.append(Hop(ctx.ns, where, p))


# --- public API ----------------------------------------------------------------


def walk_packet(topo: Topology, state: LabState, ns: str, packet: Packet, *,
                ingress: Optional[str] = None, now: float = 0.0,
                rng: Optional[random.Random] = None, branch: Optional[Sequence[bool]] = None,
                trace_all: bool = True, chooser: Optional[Chooser] = None) -> Walk:
    """Walk one packet, changing `state` (conntrack, recent tables) as the kernel would.

    ns/ingress: where the packet starts: sent by a process in `ns` (ingress
    None) or arriving on interface `ingress` of `ns`. Coins come from `branch`
    (a list of decisions, to replay a known path) or else from `rng`
    (default random.Random(0)). trace_all=False records only what the kernel
    would: events after a -j TRACE rule marked the packet.
    """
    rng = rng if rng is not None else random.Random(0)
    if chooser is None:
        chooser = BranchChooser(branch) if branch is not None else RandomChooser(rng)
    return _Walker(topo, state, chooser, now, rng, trace_all).run(ns, packet, ingress)


def walk_all_branches(topo: Topology, state: LabState, ns: str, packet: Packet, *,
                      ingress: Optional[str] = None, now: float = 0.0, seed: int = 0,
                      trace_all: bool = True, limit: int = 4096) -> list[Walk]:
    """Every possible outcome of one packet, each with its probability.

    Each branch runs on its own copy of `state` (which is left unchanged);
    outcomes come in rule order (a coin's "match" side first).
    """
    results: list[Walk] = []
    pending: list[list[bool]] = [[]]
    while pending:
        prefix = pending.pop()
        chooser = BranchChooser(prefix, default=True)
        w = _Walker(topo, state.copy(), chooser, now, random.Random(seed), trace_all).run(
            ns, packet, ingress)
        results.append(w)
        if len(results) > limit:
            raise LabkitError(f"more than {limit} branches: the rules flip too many coins "
                              "for an exhaustive walk (use a seed instead)")
        made = chooser.decisions
        for k in range(len(prefix), len(made)):
            pending.append(made[:k] + [False])
    return results


def reply_packet(walk: Walk) -> Packet:
    """The answer a delivered packet's receiver sends back (SYN -> SYN,ACK)."""
    p = walk.packet
    flags = p.flags
    if p.proto == "tcp":
        flags = "SYN,ACK" if "SYN" in p.tcp_flags and "ACK" not in p.tcp_flags else "ACK"
    icmp_type = 0 if p.proto == "icmp" and p.icmp_type == 8 else p.icmp_type
    return Packet(p.proto, p.dst, p.src, p.dport, p.sport, flags=flags, icmp_type=icmp_type)
