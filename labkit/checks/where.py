"""The lab's places by the names a learner uses: a namespace -> "kind-worker", "natgw", "lb", "internet".

Traces record the namespace each rule ran in ("lklab-natgw"); exercises and
diagrams speak of the node or router instead. Read from the lab's plan, so
the words are the ones `lab.conntrack(...)` and `lab.rules(...)` accept.
"""
from __future__ import annotations

from labkit.checks.core import AnswerError

ROUTER_WORDS = {"natgw": ("natgw", "nat-gateway", "nat gateway", "the nat gateway", "cloud nat", "gateway"),
                "lb": ("lb", "load-balancer", "load balancer", "the load balancer", "cloud load balancer")}


def place_of(lab, netns: str) -> str:
    """"kind-worker", "natgw", "lb", "net", "outside", "internet", "default/client" or the namespace itself."""
    plan = getattr(lab, "plan", None)
    if plan is None:
        return netns
    for n in plan.nodes:
        if n.netns == netns:
            return n.name
    if plan.cloud is not None:
        if netns == plan.cloud.natgw_netns:
            return "natgw"
        if netns == plan.cloud.lb_netns:
            return "lb"
    if netns == plan.network_netns:
        return "net"
    for h in (plan.outside, plan.internet):
        if h.netns == netns:
            return h.name
    for p in plan.pods:
        if p.netns == netns:
            return p.key
    return netns


def read_place(lab, answer) -> str:
    """A learner's name for a place -> the canonical word (a node name, "natgw", "lb", ...)."""
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError(f"expected a name such as 'kind-worker' or 'natgw', got {answer!r}")
    word = answer.strip().lower()
    for canon, words in ROUTER_WORDS.items():
        if word in words:
            return canon
    plan = getattr(lab, "plan", None)
    if plan is not None:
        for n in plan.nodes:
            if word in (n.name, n.name.removeprefix("kind-"), f"node {n.name}", n.ip):
                return n.name
        for h in (plan.outside, plan.internet):
            if word in (h.name, h.ip):
                return h.name
    return word


def last_place(lab, trace) -> str:
    """Where a trace's packet was last seen by a rule (the raw table's TRACE rules left out)."""
    steps = [s for s in trace.steps if s.table != "raw"]
    return place_of(lab, steps[-1].netns) if steps else ""
