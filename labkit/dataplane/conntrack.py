"""Connection tracking: tuples, states, NAT bindings, timeouts, `conntrack -L`.

The kernel decides NAT once, on a flow's first packet, and stores it as the
entry's reply tuple; every later packet in either direction is rewritten
from the entry. This module does the same, with time from a clock value the
caller passes in (no wall clock here).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .packet import PROTO_NUMBERS, Packet

ORIGINAL, REPLY = 0, 1

# kernel defaults (net.netfilter.nf_conntrack_*_timeout_*), seconds
TCP_TIMEOUTS = {"SYN_SENT": 120, "SYN_RECV": 60, "ESTABLISHED": 432000, "FIN_WAIT": 120,
                "CLOSE_WAIT": 60, "LAST_ACK": 30, "TIME_WAIT": 120, "CLOSE": 10}
UDP_TIMEOUT, UDP_STREAM_TIMEOUT = 30, 120
UDP_STREAM_AFTER = 2  # a replied UDP flow still active this long after its first packet is a stream
ICMP_TIMEOUT, GENERIC_TIMEOUT = 30, 600
RECENT_MAX_STAMPS = 20  # xt_recent ip_pkt_list_tot


class CtTuple(NamedTuple):
    proto: str
    src: str
    dst: str
    sport: int
    dport: int

    def invert(self) -> "CtTuple":
        return CtTuple(self.proto, self.dst, self.src, self.dport, self.sport)

    def render(self) -> str:
        if self.proto in ("tcp", "udp", "sctp"):
            return f"src={self.src} dst={self.dst} sport={self.sport} dport={self.dport}"
        return f"src={self.src} dst={self.dst}"


def packet_tuple(p: Packet) -> CtTuple:
    if p.proto in ("tcp", "udp", "sctp"):
        return CtTuple(p.proto, p.src, p.dst, p.sport, p.dport)
    if p.proto == "icmp":  # echo: the id lives in sport; reply type swaps
        return CtTuple(p.proto, p.src, p.dst, p.sport, 0)
    return CtTuple(p.proto, p.src, p.dst, 0, 0)


@dataclass
class CtEntry:
    """One tracked flow. `reply` is where NAT lives: the tuple replies will carry."""

    id: int
    orig: CtTuple
    reply: CtTuple
    tcp_state: str = ""
    seen_reply: bool = False
    assured: bool = False
    src_nat: bool = False
    dst_nat: bool = False
    nat_done: set = field(default_factory=set)  # {"src", "dst"}: bindings decided
    confirmed: bool = False
    expires: float = 0.0
    mark: int = 0
    stream_ts: float = 0.0  # UDP: after this moment a replied flow counts as a stream

    def copy(self) -> "CtEntry":
        return CtEntry(self.id, self.orig, self.reply, self.tcp_state, self.seen_reply,
                       self.assured, self.src_nat, self.dst_nat, set(self.nat_done),
                       self.confirmed, self.expires, self.mark, self.stream_ts)

    def states(self, direction: int) -> frozenset:
        """What `-m conntrack --ctstate` sees for a packet of this flow."""
        s = {"ESTABLISHED"} if (direction == REPLY or self.seen_reply) else {"NEW"}
        if self.src_nat:
            s.add("SNAT")
        if self.dst_nat:
            s.add("DNAT")
        return frozenset(s)

    def render(self, now: float) -> str:
        """One line of `conntrack -L`."""
        proto = self.orig.proto
        left = max(0, int(self.expires - now))
        text = f"{proto:<8} {PROTO_NUMBERS.get(proto, 0)} {left} "
        if self.tcp_state:
            text += f"{self.tcp_state} "
        text += self.orig.render() + " "
        if not self.seen_reply:
            text += "[UNREPLIED] "
        text += self.reply.render() + " "
        if self.assured:
            text += "[ASSURED] "
        text += f"mark={self.mark} use=1"
        return text


class Conntrack:
    """The conntrack table of one network namespace."""

    def __init__(self):
        self.by_tuple: dict[CtTuple, tuple[CtEntry, int]] = {}
        self.entries: dict[int, CtEntry] = {}
        self.next_id = 1

    def copy(self) -> "Conntrack":
        c = Conntrack()
        c.next_id = self.next_id
        for e in self.entries.values():
            e2 = e.copy()
            c.entries[e2.id] = e2
            c.by_tuple[e2.orig] = (e2, ORIGINAL)
            c.by_tuple[e2.reply] = (e2, REPLY)
        return c

    def expire(self, now: float) -> None:
        for e in [e for e in self.entries.values() if e.expires <= now]:
            self.remove(e)

    def remove(self, e: CtEntry) -> None:
        self.entries.pop(e.id, None)
        for t in (e.orig, e.reply):
            if self.by_tuple.get(t, (None,))[0] is e:
                del self.by_tuple[t]

    def lookup(self, p: Packet, now: float) -> Optional[tuple[CtEntry, int]]:
        hit = self.by_tuple.get(packet_tuple(p))
        if hit and hit[0].expires <= now:
            self.remove(hit[0])
            return None
        return hit

    def new_entry(self, p: Packet) -> CtEntry:
        """An unconfirmed entry for a first packet; it joins the table on confirm()."""
        t = packet_tuple(p)
        reply = t.invert()
        if p.proto == "icmp" and p.icmp_type == 8:
            reply = CtTuple("icmp", t.dst, t.src, t.sport, 0)
        e = CtEntry(self.next_id, t, reply)
        self.next_id += 1
        return e

    def tuple_taken(self, t: CtTuple, ignore: CtEntry) -> bool:
        hit = self.by_tuple.get(t)
        return hit is not None and hit[0] is not ignore

    def confirm(self, e: CtEntry) -> bool:
        """Insert a new entry; False if another flow already holds one of its tuples."""
        if e.confirmed:
            return True
        if self.tuple_taken(e.orig, e) or self.tuple_taken(e.reply, e):
            return False
        e.confirmed = True
        self.entries[e.id] = e
        self.by_tuple[e.orig] = (e, ORIGINAL)
        self.by_tuple[e.reply] = (e, REPLY)
        return True

    def bind_nat(self, e: CtEntry, manip: str, addr: Optional[str],
                 ports: Optional[tuple[int, int]], randomize: bool,
                 rng: random.Random) -> None:
        """Decide a NAT binding on the first packet (manip "src" or "dst")."""
        r = e.reply
        if manip == "dst":
            new = CtTuple(r.proto, addr or r.src, r.dst,
                          ports[0] if ports else r.sport, r.dport)
            changed = new != r
            e.reply = new
            e.dst_nat = e.dst_nat or changed
        else:
            port = r.dport
            lo, hi = ports if ports else (0, 0)
            candidate = CtTuple(r.proto, r.src, addr or r.dst, r.sport, port)
            in_range = (not ports) or lo <= port <= hi
            if randomize or not in_range or self.tuple_taken(candidate, e):
                candidate = self._unique_port(candidate, e, ports, randomize, rng)
            e.src_nat = e.src_nat or candidate != r
            e.reply = candidate
        e.nat_done.add(manip)

    def _unique_port(self, t: CtTuple, e: CtEntry, ports, randomize: bool,
                     rng: random.Random) -> CtTuple:
        """Source-port remapping when a SNAT/MASQUERADE tuple would clash."""
        if t.proto not in ("tcp", "udp", "sctp"):
            return t
        if ports:
            lo, hi = ports
        elif t.dport < 1024:
            lo, hi = (600, 1023) if t.dport >= 512 else (1, 511)
        else:
            lo, hi = 1024, 65535
        size = hi - lo + 1
        start = rng.randrange(size)
        for k in range(size):
            port = lo + (start + k) % size
            cand = t._replace(dport=port)
            if not self.tuple_taken(cand, e):
                return cand
        return t

    def note_packet(self, e: CtEntry, direction: int, p: Packet, now: float) -> None:
        """Advance the flow's state for one packet and reset its timeout."""
        replied_before = e.seen_reply
        if direction == REPLY:
            e.seen_reply = True
        if e.orig.proto == "tcp":
            e.tcp_state = _tcp_next(e.tcp_state, direction, p.tcp_flags)
            if e.tcp_state == "ESTABLISHED" and e.seen_reply:
                e.assured = True
            e.expires = now + TCP_TIMEOUTS.get(e.tcp_state, 10)
        elif e.orig.proto == "udp":
            # nf_conntrack_udp_packet (6.x): the packet is handled before its own reply
            # bit is set; a flow that has seen a reply becomes a stream (ASSURED, 120 s)
            # only when a packet comes more than 2 s after the first one, else 30 s
            if not e.confirmed:
                e.stream_ts = now + UDP_STREAM_AFTER
            if replied_before and now > e.stream_ts:
                e.assured = True
                e.expires = now + UDP_STREAM_TIMEOUT
            else:
                e.expires = now + UDP_TIMEOUT
        elif e.orig.proto == "icmp":
            e.expires = now + ICMP_TIMEOUT
        else:
            e.expires = now + GENERIC_TIMEOUT

    def render(self, now: float) -> str:
        """`conntrack -L` (entries in creation order; the kernel's order is its hash's)."""
        lines = [e.render(now) for e in self.entries.values() if e.expires > now]
        return "\n".join(lines) + ("\n" if lines else "")


def tcp_packet_is_invalid(flags: frozenset, has_entry: bool) -> bool:
    """A TCP packet that cannot start or join a flow (the kernel's INVALID)."""
    if has_entry:
        return False
    if "RST" in flags:
        return True
    if "SYN" in flags and "ACK" in flags:
        return True
    return not ("SYN" in flags or "ACK" in flags)


def _tcp_next(state: str, direction: int, flags: frozenset) -> str:
    """A compact version of the kernel's tcp_conntracks table."""
    if "RST" in flags:
        return "CLOSE"
    syn, ack, fin = "SYN" in flags, "ACK" in flags, "FIN" in flags
    if syn and not ack:
        if direction == ORIGINAL and state in ("", "SYN_SENT", "TIME_WAIT", "CLOSE"):
            return "SYN_SENT"
        return state or "SYN_SENT"
    if syn and ack:
        if direction == REPLY and state == "SYN_SENT":
            return "SYN_RECV"
        return state
    if fin:
        if state in ("ESTABLISHED", "SYN_RECV", ""):
            return "FIN_WAIT"
        if state in ("FIN_WAIT", "CLOSE_WAIT"):
            return "LAST_ACK"
        return state
    if ack:
        if state in ("SYN_RECV", ""):
            return "ESTABLISHED"
        if state == "LAST_ACK":
            return "TIME_WAIT"
        if state == "FIN_WAIT":
            return "CLOSE_WAIT"
        return state
    return state


class RecentTables:
    """xt_recent's per-name tables: address -> recent timestamps."""

    def __init__(self):
        self.tables: dict[str, dict[int, list[float]]] = {}

    def copy(self) -> "RecentTables":
        r = RecentTables()
        r.tables = {n: {a: list(s) for a, s in t.items()} for n, t in self.tables.items()}
        return r

    def check(self, name: str, addr: int, mode: str, seconds: int, reap: bool,
              hitcount: int, now: float) -> bool:
        table = self.tables.setdefault(name, {})
        if mode == "set":
            self._stamp(table, addr, now)
            return True
        stamps = table.get(addr)
        if stamps is None:
            return False
        if mode == "remove":
            del table[addr]
            return True
        since = now - seconds
        hit = False
        if seconds or hitcount:
            hits = 0
            for s in stamps:
                if seconds and s < since:
                    continue
                hits += 1
                if not hitcount or hits >= hitcount:
                    hit = True
                    break
        else:
            hit = True
        if reap and seconds:
            table[addr] = [s for s in stamps if s >= since]
            if not table[addr]:
                del table[addr]
        if hit and mode == "update":
            self._stamp(table, addr, now)
        return hit

    @staticmethod
    def _stamp(table: dict, addr: int, now: float) -> None:
        stamps = table.setdefault(addr, [])
        stamps.append(now)
        if len(stamps) > RECENT_MAX_STAMPS:
            del stamps[0]

    def render(self, name: str, now: float) -> str:
        """Like /proc/net/xt_recent/NAME (times as seconds ago)."""
        from .packet import int_ip
        lines = []
        for addr, stamps in self.tables.get(name, {}).items():
            lines.append(f"src={int_ip(addr)} ttl: 0 last_seen: {stamps[-1]:g} "
                         f"oldest_pkt: {len(stamps)} " + ", ".join(f"{s:g}" for s in stamps))
        return "\n".join(lines)
