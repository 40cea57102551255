"""A LabPlan as `ip -batch` text, one batch per namespace (pure: plan in, text out).

Every batch runs as `ip -n NAMESPACE -batch -`, so no command ever names the
host's own namespace; `netns add`/`netns del` only make and remove names.
Batches come in phases: a phase's batches may run at once, and a phase
starts when the one before it has finished (a pod's namespace can only be
configured once its node has made its veth).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Optional

from labkit.topology.plan import LabPlan


def bridge_mac(name: str) -> str:
    """A fixed, locally administered MAC for a bridge, from its name.

    A Linux bridge with no address of its own takes its ports' lowest MAC and
    changes it as ports come and go; nodes that cached the gateway's old MAC
    then lose packets until their neighbour entry is probed again (seconds).
    Kind's docker network behaves the same: docker sets its bridge's address.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


@dataclass(frozen=True)
class Batch:
    netns: str  # run as `ip -n netns -batch -`
    text: str


def render_netns_add(names: Iterable[str]) -> str:
    """`ip -batch -` text creating the namespaces."""
    return "".join(f"netns add {n}\n" for n in names)


def render_netns_del(names: Iterable[str]) -> str:
    """`ip -force -batch -` text removing the namespaces (their veths go with them)."""
    return "".join(f"netns del {n}\n" for n in names)


def render_batches(plan: LabPlan, only: Optional[set[str]] = None) -> list[list[Batch]]:
    """Phases of batches that configure the namespaces in `only` (default: all of them).

    A veth is made by the namespace that owns its first end, when that
    namespace or the peer's is in `only` (a new pod gets its veth from a node
    that already exists).
    """
    wanted = set(plan.netns_names()) if only is None else set(only)
    lines: dict[str, list[str]] = {n: [] for n in plan.netns_names()}
    ups: dict[str, list[str]] = {n: [] for n in plan.netns_names()}
    for ns in wanted:
        ups[ns].append("lo")
    for b in plan.bridges:
        if b.netns in wanted:
            lines[b.netns].append(f"link add {b.name} address {bridge_mac(b.name)} type bridge")
            ups[b.netns].append(b.name)
    for v in plan.veths:
        if v.netns in wanted or v.peer_netns in wanted:
            lines[v.netns].append(f"link add {v.name} type veth peer name {v.peer_name} netns {v.peer_netns}")
            if v.master:
                lines[v.netns].append(f"link set {v.name} master {v.master}")
            ups[v.netns].append(v.name)
            ups[v.peer_netns].append(v.peer_name)
    for a in plan.addresses:
        if a.netns in wanted or _dev_is_new(plan, a.netns, a.dev, wanted):
            extra = " noprefixroute" if a.noprefixroute else ""
            lines[a.netns].append(f"address add {a.cidr} dev {a.dev}{extra}")
    out_up: dict[str, list[str]] = {}
    for ns, devs in ups.items():
        out_up[ns] = [f"link set {d} up" for d in dict.fromkeys(devs)]
    routes: dict[str, list[str]] = {n: [] for n in plan.netns_names()}
    for r in plan.routes:
        if r.netns in wanted or _dev_is_new(plan, r.netns, r.dev, wanted):
            routes[r.netns].append(f"route add {r.spec()}")

    def batch(ns: str) -> Optional[Batch]:
        body = lines[ns] + out_up[ns] + routes[ns]
        return Batch(ns, "".join(line + "\n" for line in body)) if body else None

    roles = {n.name: n.role for n in plan.namespaces}
    phases: list[list[Batch]] = []
    for group in (("network",), ("node", "outside", "internet"), ("pod",)):
        phase = [b for ns in plan.netns_names() if roles[ns] in group for b in [batch(ns)] if b]
        if phase:
            phases.append(phase)
    return phases


def _dev_is_new(plan: LabPlan, netns: str, dev: str, wanted: set[str]) -> bool:
    """Is `dev` in `netns` one end of a veth whose other namespace is being made now?"""
    return any(v.netns == netns and v.name == dev and v.peer_netns in wanted for v in plan.veths)
