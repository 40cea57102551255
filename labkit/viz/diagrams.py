"""Graphviz diagrams drawn from the live lab: the topology, a packet's path, a trace.

The render_*_dot functions are pure (data in, DOT text out) and deterministic,
so tests compare their text. Diagram turns DOT into SVG with graphviz's `dot`
only when shown, and strips the comments `dot` writes (its version, the
graph's name), so the SVG is small and the same on every machine with the
same `dot`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional, Sequence

from labkit.checks import facts

FONT = "Helvetica"
POD_COLOR = "#dbeafe"
NODE_COLOR = "#f1f5f9"
HOST_COLOR = "#fef3c7"
SERVICE_COLOR = "#ede9fe"
CHANGE_COLOR = "#b91c1c"
NL = "\n"


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace('"', '\\"').replace("\n", "\\n") + '"'


def _id(text: str) -> str:
    return _q(re.sub(r"[^A-Za-z0-9_]", "_", text))


@dataclass(frozen=True)
class Diagram:
    """DOT source that shows itself as SVG in a notebook."""

    dot: str

    def svg(self) -> str:
        import graphviz

        raw = graphviz.Source(self.dot).pipe(format="svg", encoding="utf-8")
        return clean_svg(raw)

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"<labkit diagram: {self.dot.count(chr(10))} lines of DOT; .dot has the source>"

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg())


def clean_svg(svg: str) -> str:
    """SVG without the XML prolog, DOCTYPE and comments (dot's version lives there)."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    return svg.strip() + "\n"


# --- topology -------------------------------------------------------------------


def render_topology_dot(nodes: Sequence[tuple[str, str]], pods: Sequence[tuple[str, str, str]],
                        hosts: Sequence[tuple[str, str]] = (), services: Sequence[tuple[str, str]] = (),
                        node_network: str = "172.18.0.0/16") -> str:
    """DOT for the lab: nodes [(name, ip)], pods [(ns/name, node, ip)], hosts [(name, ip)],
    services [(ns/name, cluster ip)] (drawn apart: a ClusterIP is on no interface)."""
    out = ["digraph lab {", "  rankdir=TB; compound=true; newrank=true;",
           f'  graph [fontname={_q(FONT)} fontsize=11 nodesep=0.25 ranksep=0.45];',
           f'  node [fontname={_q(FONT)} fontsize=10 shape=box style="rounded,filled" fillcolor={_q(POD_COLOR)}];',
           f'  edge [fontname={_q(FONT)} fontsize=9 arrowhead=none color="#64748b"];',
           f'  net [label={_q("node network " + node_network)} shape=box style="filled" '
           f'fillcolor="#e2e8f0" width=3];']
    for name, ip in hosts:
        label = _q(name + NL + ip)
        out.append(f'  {_id("host_" + name)} [label={label} fillcolor={_q(HOST_COLOR)}];')
        out.append(f'  {_id("host_" + name)} -> net;')
    for name, ip in nodes:
        here = [p for p in pods if p[1] == name]
        out.append(f"  subgraph {_id('cluster_' + name)} {{")
        out.append(f'    label={_q(f"node {name}  {ip}")}; style="rounded,filled"; fillcolor={_q(NODE_COLOR)}; '
                   'color="#94a3b8";')
        label = _q(name + NL + "eth0 " + ip)
        out.append(f'    {_id("node_" + name)} [label={label} fillcolor="white"];')
        for key, _, pip in here:
            label = _q(key + NL + pip)
            out.append(f'    {_id("pod_" + key)} [label={label}];')
        out.append("  }")
        out.append(f'  net -> {_id("node_" + name)};')
        for key, _, _ in here:
            out.append(f'  {_id("node_" + name)} -> {_id("pod_" + key)} [label="veth"];')
    for key, vip in services:
        label = _q(f"Service {key}" + NL + f"{vip} (virtual)")
        out.append(f'  {_id("svc_" + key)} [label={label} shape=ellipse '
                   f'style="dashed,filled" fillcolor={_q(SERVICE_COLOR)}];')
    out.append("}")
    return "\n".join(out) + "\n"


def topology_data(lab, services: bool = False):
    """The arguments of render_topology_dot, read from the live lab."""
    nodes = facts.nodes(lab)
    pods = sorted((f"{p.meta.namespace}/{p.meta.name}", p.node_name, p.pod_ip)
                  for p in lab.pods() if not p.host_network)
    svcs = sorted((f"{s.meta.namespace}/{s.meta.name}", s.cluster_ip) for s in lab.services()) if services else []
    plan = getattr(lab, "plan", None)
    network = plan.node_network if plan is not None else "172.18.0.0/16"
    return dict(nodes=nodes, pods=pods, hosts=facts.outside_hosts(lab), services=svcs, node_network=network)


def topology(lab, services: bool = False) -> Diagram:
    """The live lab as a diagram: every node with its pods and addresses (and Services, if asked)."""
    return Diagram(render_topology_dot(**topology_data(lab, services)))


# --- a packet's path ------------------------------------------------------------


class Hop(NamedTuple):
    """One namespace a packet passes, and the packet as it leaves it (after that namespace's rules)."""

    where: str  # "pod default/client", "node kind-worker"
    packet: str  # "10.244.1.2:40000 -> 10.96.0.80:80"
    change: str = ""  # what this namespace rewrote ("DNAT: destination 10.96.0.80:80 -> 10.244.2.3:8080")


def render_path_dot(hops: Sequence[Hop], title: str = "") -> str:
    """DOT for a path: the namespaces left to right, each edge labelled with the packet on the wire."""
    out = ["digraph path {", "  rankdir=LR;",
           f'  graph [fontname={_q(FONT)} fontsize=11 nodesep=0.3 ranksep=0.35'
           + (f" label={_q(title)} labelloc=t" if title else "") + "];",
           f'  node [fontname={_q(FONT)} fontsize=10 shape=box style="rounded,filled" fillcolor={_q(NODE_COLOR)}];',
           f'  edge [fontname={_q(FONT)} fontsize=9];']
    for i, h in enumerate(hops):
        fill = POD_COLOR if h.where.startswith("pod ") else NODE_COLOR
        label = h.where + (f"\n{h.change}" if h.change else "")
        color = f" color={_q(CHANGE_COLOR)} fontcolor={_q(CHANGE_COLOR)}" if h.change else ""
        out.append(f"  h{i} [label={_q(label)} fillcolor={_q(fill)}{color}];")
    for i in range(len(hops) - 1):
        out.append(f"  h{i} -> h{i + 1} [label={_q(hops[i].packet)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _entry_for(lab, node: str, client_address: str, destination: str):
    src, _, sport = client_address.rpartition(":")
    dst, _, dport = destination.rpartition(":")
    try:
        entries = lab.conntrack(node) if node else []
    except Exception:
        entries = []
    for e in entries:
        if (e.orig.src, str(e.orig.sport), e.orig.dst, str(e.orig.dport)) == (src, sport, dst, dport):
            return e
    return None


def path_hops(lab, result) -> tuple[list[Hop], list[Hop]]:
    """(there, back): the hops of a probe's first packet and of its reply, from the probe's result,
    the lab's pods and nodes, and the conntrack entry on the client's node."""
    src_name = result.source
    client_where = f"pod {src_name}" if "/" in src_name else src_name
    client_node = facts.node_of(lab, src_name) if "/" in src_name else ""
    dst_ip = result.destination.rpartition(":")[0]
    sent = f"{result.client_address} -> {result.destination}"
    there = [Hop(client_where, sent)]
    back: list[Hop] = []
    if not result.ok or not result.answered_by:
        if client_node:
            there.append(Hop(f"node {client_node}", sent))
        there.append(Hop("(no answer)", "", result.verdict))
        return there, back
    server = result.answered_by
    server_node = facts.node_of(lab, server) if "/" in server else ""
    entry = _entry_for(lab, client_node, result.client_address, result.destination)
    arrived = (f"{entry.reply.dst}:{entry.reply.dport} -> {entry.reply.src}:{entry.reply.sport}"
               if entry else f"{result.client_seen_as} -> {facts.pod(lab, server).pod_ip if '/' in server else dst_ip}")
    change = ""
    if entry and entry.dnat:
        change = f"DNAT {entry.orig.dst}:{entry.orig.dport} → {entry.reply.src}:{entry.reply.sport}"
    if client_node:
        there.append(Hop(f"node {client_node}", arrived, change))
        if server_node and server_node != client_node:
            there.append(Hop(f"node {server_node}", arrived))
    there.append(Hop(f"pod {server}", ""))
    if entry:
        reply = f"{entry.reply.src}:{entry.reply.sport} -> {entry.reply.dst}:{entry.reply.dport}"
        seen = f"{result.reply_from} -> {result.client_address}"
        back.append(Hop(f"pod {server}", reply))
        if server_node and server_node != client_node:
            back.append(Hop(f"node {server_node}", reply))
        undnat = f"un-DNAT {entry.reply.src}:{entry.reply.sport} → {result.reply_from}" if entry.dnat else ""
        back.append(Hop(f"node {client_node}", seen, undnat))
        back.append(Hop(client_where, ""))
    return there, back


def packet_path(lab, result) -> Diagram:
    """A probe's SYN from the client to the pod that answered, and the reply, hop by hop."""
    there, back = path_hops(lab, result)
    dots = [render_path_dot(there, "the SYN")]
    if back:
        dots.append(render_path_dot(back, "the reply"))
    return Diagram(_stack(dots))


def _stack(dots: Sequence[str]) -> str:
    """Several path graphs in one DOT graph, one above the other."""
    if len(dots) == 1:
        return dots[0]
    out = ["digraph paths {", "  rankdir=LR;", f'  graph [fontname={_q(FONT)} fontsize=11];']
    # dot stacks the clusters of a left-to-right graph bottom-up: emit the last first
    for k, d in reversed(list(enumerate(dots))):
        body = d.splitlines()[1:-1]
        title = ""
        inner = []
        for line in body:
            line = re.sub(r"\bh(\d+)\b", lambda m: f"p{k}h{m.group(1)}", line)
            m = re.search(r'label=("[^"]*") labelloc=t', line)
            if line.strip().startswith("graph [") and m:
                title = m.group(1)
                line = line.replace(f" label={m.group(1)} labelloc=t", "")
            inner.append("  " + line)
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f'    label={title or _q("")}; style=dashed; color="#cbd5e1";')
        out += inner
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


# --- a trace, chain by chain ------------------------------------------------------


def _short(rule: str, limit: int = 70) -> str:
    comment = re.search(r'--comment "([^"]*)"', rule)
    text = re.sub(r'-m comment --comment "[^"]*" ?', "", rule)
    text = re.sub(r"^-A \S+ ", "", text).strip()
    if comment:
        text = f"{text}  /* {comment.group(1)} */"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_trace_dot(steps: Iterable, title: str = "") -> str:
    """DOT for a trace: one box per rule or policy met, in order; the NAT decision in red."""
    out = ["digraph trace {", "  rankdir=TB;",
           f'  graph [fontname={_q(FONT)} fontsize=11 nodesep=0.2 ranksep=0.2'
           + (f" label={_q(title)} labelloc=t" if title else "") + "];",
           f'  node [fontname={_q(FONT)} fontsize=9 shape=box style="rounded,filled" fillcolor="white"];',
           '  edge [arrowsize=0.6];']
    fills = {"raw": "#fee2e2", "mangle": "#f1f5f9", "nat": "#dbeafe", "filter": "#dcfce7"}
    steps = list(steps)
    for i, s in enumerate(steps):
        where = f"{s.table} {s.chain}" + (f" #{s.rule_number}" if s.rule_number else " (policy)")
        body = _short(s.rule) if s.rule else ""
        label = where + (f"\n{body}" if body else "") + f"\n→ {s.verdict}"
        extra = f" color={_q(CHANGE_COLOR)} fontcolor={_q(CHANGE_COLOR)} penwidth=2" if s.verdict in (
            "DNAT", "SNAT", "MASQUERADE", "DROP", "REJECT") else ""
        out.append(f"  s{i} [label={_q(label)} fillcolor={_q(fills.get(s.table, 'white'))}{extra}];")
    for i in range(len(steps) - 1):
        out.append(f"  s{i} -> s{i + 1};")
    out.append("}")
    return "\n".join(out) + "\n"


def trace_walk(trace, skip_policies: bool = True) -> Diagram:
    """A Trace (lab.trace or labkit.probes.trace) as a diagram; chain policies that only
    ACCEPT are left out unless skip_policies=False."""
    steps = [s for s in trace.steps if not (skip_policies and not s.rule and s.verdict == "ACCEPT")]
    return Diagram(render_trace_dot(steps, f"{trace.source} → {trace.destination}: {trace.verdict}"))


def render_trace_text(trace, skip_policies: bool = True) -> str:
    """The trace as text, one line per rule: table, chain, rule number, verdict, the rule."""
    lines = []
    for s in trace.steps:
        if skip_policies and not s.rule and s.verdict == "ACCEPT":
            continue
        where = f"{s.table:6} {s.chain}" + (f" #{s.rule_number}" if s.rule_number else " policy")
        lines.append(f"{where:40} -> {s.verdict:28} {_short(s.rule, 90) if s.rule else ''}".rstrip())
    return "\n".join(lines)
