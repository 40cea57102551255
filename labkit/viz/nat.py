"""A connection's path through every NAT on its way: node, NAT gateway, load balancer.

labkit.viz.packet_path draws a Service connection, where one node does the
one DNAT. Traffic to and from the world outside the cluster meets more
translators: the client's node masquerades, then the cloud's NAT gateway
maps to a public address; or the load balancer DNATs to a node, whose
kube-proxy DNATs to a pod. Each one keeps a conntrack entry, and each
entry says what it changed. `nat_hops` follows the connection from entry
to entry (the reply tuple of one is the packet the next one sees) and
`nat_path` draws the result, there and back.
"""
from __future__ import annotations

import ipaddress
from typing import Optional

from labkit.checks import facts
from labkit.viz.diagrams import Diagram, Hop, _stack, render_path_dot

PLACE_LABELS = {"natgw": "NAT gateway (cloud)", "lb": "load balancer (cloud)", "net": "node network"}
LB_POOL = "198.51.100.192/26"


def _label(place: str) -> str:
    if place in PLACE_LABELS:
        return PLACE_LABELS[place]
    if "/" in place:
        return f"pod {place}"
    if place in ("outside", "internet"):
        return f"{place} host"
    return f"node {place}"


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port or 0)


def _in(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return False


def _next_place(lab, dst: str, here: str, seen: list[str]) -> Optional[str]:
    """The next translator the packet to `dst` meets after `here` ("" = it has arrived)."""
    plan = getattr(lab, "plan", None)
    nodes = dict(facts.nodes(lab))
    by_ip = {ip: name for name, ip in nodes.items()}
    if dst in by_ip:
        return by_ip[dst] if by_ip[dst] not in seen else ""
    cloud = getattr(plan, "cloud", None) if plan is not None else None
    if cloud is not None:
        if _in(dst, LB_POOL) and "lb" not in seen:
            return "lb"
        if any(pub == dst for _, _, pub in cloud.public) and "natgw" not in seen:
            return "natgw"
        if dst == dict(facts.outside_hosts(lab)).get("internet") and "natgw" not in seen and here in nodes:
            return "natgw"
    for p in lab.pods():
        if p.pod_ip == dst and not p.host_network:
            node = p.node_name
            return node if node not in seen else ""
    return ""


def _entry(lab, place: str, src: str, sport: int, dst: str, dport: int):
    try:
        entries = lab.conntrack(place)
    except Exception:
        return None
    for e in entries:
        if (e.orig.src, e.orig.sport, e.orig.dst, e.orig.dport) == (src, sport, dst, dport):
            return e
    return None


def _change(before: tuple[str, int, str, int], after: tuple[str, int, str, int], undo: bool = False) -> str:
    words = []
    if before[:2] != after[:2]:
        words.append(f"{'un-DNAT' if undo else 'SNAT'} {before[0]}:{before[1]} → {after[0]}:{after[1]}")
    if before[2:] != after[2:]:
        words.append(f"{'un-SNAT' if undo else 'DNAT'} {before[2]}:{before[3]} → {after[2]}:{after[3]}")
    return "\n".join(words)


def nat_hops(lab, result) -> tuple[list[Hop], list[Hop]]:
    """(there, back) for a probe's result: the client, every translator with what it changed, the server."""
    src, sport = _split(result.client_address)
    dst, dport = _split(result.destination)
    source = result.source
    there = [Hop(_label(source) if "/" in source or source in ("outside", "internet") else f"node {source}",
                 f"{src}:{sport} -> {dst}:{dport}")]
    packet = (src, sport, dst, dport)
    visited: list[str] = []
    entries = []
    here = facts.node_of(lab, source) if "/" in source else ""
    place = here or _next_place(lab, dst, "", visited)
    while place and len(visited) < 6:
        visited.append(place)
        e = _entry(lab, place, *packet)
        if e is None:
            there.append(Hop(_label(place), "", "no conntrack entry:\nthe packet went no further"))
            return there, []
        after = (e.reply.dst, e.reply.dport, e.reply.src, e.reply.sport)
        there.append(Hop(_label(place), f"{after[0]}:{after[1]} -> {after[2]}:{after[3]}", _change(packet, after)))
        entries.append((place, e, packet, after))
        packet = after
        place = _next_place(lab, packet[2], place, visited)
    if not result.ok:
        there.append(Hop("(no answer)", "", result.verdict))
        return there, []
    server = result.answered_by or facts.owner_of(lab, packet[2]) or packet[2]
    there.append(Hop(_label(server), ""))
    back = [Hop(_label(server), f"{packet[2]}:{packet[3]} -> {packet[0]}:{packet[1]}")]
    for place, e, before, after in reversed(entries):
        out = (before[2], before[3], before[0], before[1])
        came = (after[2], after[3], after[0], after[1])
        back.append(Hop(_label(place), f"{out[0]}:{out[1]} -> {out[2]}:{out[3]}", _change(came, out, undo=True)))
    back.append(Hop(there[0].where, ""))
    return there, back


def nat_path(lab, result) -> Diagram:
    """A probe's connection through every NAT it met, there (the SYN) and back (the reply)."""
    there, back = nat_hops(lab, result)
    dots = [render_path_dot(there, "there")]
    if back:
        dots.append(render_path_dot(back, "back"))
    return Diagram(_stack(dots))


def render_trace_by_place(lab, trace, skip_policies: bool = True) -> str:
    """A trace as text like render_trace_text, with a heading each time the packet reaches
    another place (a node, the NAT gateway, the load balancer): where each rule ran."""
    from labkit.checks.where import place_of
    from labkit.viz.diagrams import _short

    lines: list[str] = []
    current = None
    for s in trace.steps:
        if skip_policies and not s.rule and s.verdict == "ACCEPT":
            continue
        if s.table == "raw":
            continue
        place = place_of(lab, s.netns) if s.netns else ""
        if place != current:
            lines.append(f"-- on {_label(place) if place else 'the first node'} --")
            current = place
        head = f"{s.table:6} {s.chain}" + (f" #{s.rule_number}" if s.rule_number else " policy")
        lines.append(f"{head:40} -> {s.verdict:24} {_short(s.rule, 80) if s.rule else ''}".rstrip())
    lines.append(f"verdict: {trace.verdict}")
    return "\n".join(lines)
