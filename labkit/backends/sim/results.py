"""The simulation's own records as the backend interface's results (pure).

The conformance suite compares these with what the kernel lab parses from
`conntrack -L` and `xtables-monitor --trace`, so they follow the kernel's
spelling: a TRACE line's verdict becomes the jump target, the NAT target's
name, "continue" or a policy; an end of a user chain (which nf_tables does
not report) is left out.
"""
from __future__ import annotations

import re
from typing import Iterable

from labkit.backends.base import ConntrackEntry, TraceStep, Tuple4
from labkit.dataplane.conntrack import CtEntry, CtTuple
from labkit.dataplane.trace import TraceEvent


def _tuple4(t: CtTuple) -> Tuple4:
    return Tuple4(t.src, t.dst, t.sport, t.dport)


def conntrack_entry(e: CtEntry, now: float) -> ConntrackEntry:
    """One dataplane entry as `conntrack -L` would show it at time `now`."""
    flags = []
    if not e.seen_reply:
        flags.append("UNREPLIED")
    if e.assured:
        flags.append("ASSURED")
    return ConntrackEntry(
        proto=e.orig.proto,
        orig=_tuple4(e.orig),
        reply=_tuple4(e.reply),
        state=e.tcp_state,
        timeout=max(0, int(e.expires - now)),
        mark=e.mark,
        flags=tuple(flags),
    )


def step_verdict(ev: TraceEvent) -> str:
    """The verdict word the kernel trace parser gives the same event."""
    v = ev.verdict
    if v.startswith("JUMP:") or v.startswith("GOTO:"):
        return v.split(":", 1)[1]
    if v == "CONTINUE":  # a matched non-terminating target (MARK, LOG): named like the kernel parser does
        target = re.search(r" -j (\S+)", ev.rule.canonical) if ev.rule is not None else None
        return target.group(1) if target else "continue"
    return v


def trace_steps(events: Iterable[TraceEvent], ns: str) -> tuple[TraceStep, ...]:
    """The steps one namespace's chains took, as the kernel trace reports them."""
    steps = []
    for ev in events:
        if ev.ns != ns or ev.kind == "return":
            continue
        if ev.kind == "policy":
            steps.append(TraceStep(ev.table, ev.chain, 0, "", ev.verdict))
            continue
        steps.append(TraceStep(ev.table, ev.chain, ev.position, ev.rule.canonical, step_verdict(ev)))
    return tuple(steps)


def render_table(save_text: str, table: str) -> str:
    """One table's block (from `*table` to COMMIT) of iptables-save text ("" if absent)."""
    out: list[str] = []
    inside = False
    for line in save_text.splitlines():
        if line.startswith("*"):
            inside = line[1:].strip() == table
        if inside:
            out.append(line)
            if line.strip() == "COMMIT":
                inside = False
    return "\n".join(out) + "\n" if out else ""
