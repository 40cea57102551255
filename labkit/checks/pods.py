"""Checks for 01.00-pods-come-and-go: pod addresses are not stable."""
from __future__ import annotations

from labkit.checks import facts
from labkit.checks.answers import as_ip, as_ip_set
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab

CLIENT = "default/client"


def _web_pods(lab):
    return sorted((p for p in lab.pods() if p.meta.namespace == "default" and p.meta.labels.get("app") == "web"),
                  key=lambda p: p.meta.name)


@checker("pods.web_pod_ips", hints=[
    "lab.pods() lists every pod; the web pods carry the label app=web.",
    "keep the pods whose p.meta.labels.get('app') == 'web' and collect their .pod_ip.",
    "[p.pod_ip for p in lab.pods() if p.meta.labels.get('app') == 'web'] is the whole answer.",
])
def web_pod_ips(answer, lab):
    need_lab(lab)
    given = as_ip_set(answer)
    want = {p.pod_ip for p in _web_pods(lab)}
    if given == want:
        return Right(f"the {len(want)} web pods have {', '.join(sorted(want))} right now.")
    missing, extra = sorted(want - given), sorted(given - want)
    parts = []
    if missing:
        parts.append(f"{len(missing)} web pod address{'es are' if len(missing) > 1 else ' is'} missing")
    if extra:
        parts.append(", ".join(extra) + (" is" if len(extra) == 1 else " are") + " not a web pod's address now")
    return Wrong("; ".join(parts))


@checker("pods.new_pod_ip", hints=[
    "the Deployment replaced the deleted pod with a new one: it has a name that was not in `before`.",
    "look for the web pod in lab.pods() whose .meta.name is not in `before`; give its .pod_ip.",
    "[p.pod_ip for p in lab.pods() if p.meta.labels.get('app') == 'web' and p.meta.name not in before]",
])
def new_pod_ip(answer, lab, before=()):
    need_lab(lab)
    ip = as_ip(answer, "the new pod's address")
    new = [p for p in _web_pods(lab) if p.meta.name not in set(before)]
    if not new:
        raise AnswerError("no web pod is new compared with `before`: run the cell that deletes a pod first")
    for p in new:
        if p.pod_ip == ip:
            return Right(f"the replacement {p.meta.name} runs on {p.node_name} with {p.pod_ip}: "
                         "a new pod, a new name, and an address the Deployment did not choose.")
    who = facts.owner_of(lab, ip)
    return Wrong(f"{ip} belongs to {who}, a pod that was already there" if who else f"no pod has {ip} now")


@checker("pods.gone_address", hints=[
    "compare the addresses in `old_ips` with the web pods' addresses now.",
    "an address from `old_ips` that no pod has any more is one that a client holding it would now fail to reach.",
    "set(old_ips) - {p.pod_ip for p in lab.pods()} lists them; give one.",
])
def gone_address(answer, lab, old_ips=()):
    need_lab(lab)
    ip = as_ip(answer, "an address from old_ips")
    if ip not in set(old_ips):
        return Wrong(f"{ip} is not one of the addresses in old_ips")
    who = facts.owner_of(lab, ip)
    if who:
        return Wrong(f"{ip} still belongs to {who}: a client using it still reaches a pod")
    result = lab.probe(CLIENT, f"{ip}:80")[0]
    if result.ok:
        return Wrong(f"something still answers on {ip}:80 ({result.answered_by})")
    return Right(f"no pod has {ip} any more: a SYN from the client to it got '{result.verdict}'. "
                 "A client that kept this address has lost its server.")


@checker("pods.node_of_address", hints=[
    "every node hands out pod addresses from its own range, its pod CIDR (a /24).",
    "the third number of a pod address tells the /24 it comes from: 10.244.1.x and 10.244.2.x "
    "are different nodes' ranges.",
    lambda lab: "the pod ranges here: " + ", ".join(
        f"{n.meta.name} {n.pod_cidr}" for n in getattr(lab, "state").nodes) + ".",
])
def node_of_address(answer, lab, address=""):
    need_lab(lab)
    if not isinstance(answer, str):
        raise AnswerError("expected a node's name, such as 'kind-worker'")
    names = [n for n, _ in facts.nodes(lab)]
    if answer.strip() not in names:
        return Wrong(f"{answer!r} is not a node of the lab (nodes: {', '.join(names)})")
    who = facts.owner_of(lab, address)
    if not who or "/" not in who:
        raise AnswerError(f"no pod has the address {address!r}: run the cell that picks it again")
    node = facts.node_of(lab, who)
    if answer.strip() == node:
        return Right(f"{address} ({who}) comes from {node}'s pod range, so {who} runs on {node}; "
                     "a pod moved to another node gets an address from that node's range.")
    return Wrong(f"{answer.strip()}'s range does not hold {address}")
