"""What the live lab says, in the shapes checks and diagrams need.

Every function reads the lab through the Backend interface (pods(),
services(), rules(), conntrack(), ...) and, where the interface has nothing
for it, through the two attributes both lab backends keep: `state` (the
settled ClusterState: nodes, EndpointSlices) and `plan` (the LabPlan:
namespaces, outside hosts). Nothing here changes the lab.
"""
from __future__ import annotations

from typing import Optional

from labkit.checks.core import AnswerError
from labkit.model.objects import Pod, Service
from labkit.model.selectors import map_selector_matches


def _split(key: str, what: str) -> tuple[str, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("default", key)


def service(lab, key: str) -> Service:
    """The Service "namespace/name" (or "name" in default); AnswerError naming the ones there are."""
    ns, name = _split(key, "Service")
    svcs = list(lab.services())
    for s in svcs:
        if s.meta.namespace == ns and s.meta.name == name:
            return s
    have = ", ".join(f"{s.meta.namespace}/{s.meta.name}" for s in svcs) or "none"
    raise AnswerError(f"the lab has no Service {ns}/{name} (Services: {have}); "
                      "run the cells above that create it")


def pod(lab, key: str) -> Pod:
    ns, name = _split(key, "Pod")
    pods = list(lab.pods())
    for p in pods:
        if p.meta.namespace == ns and p.meta.name == name:
            return p
    have = ", ".join(f"{p.meta.namespace}/{p.meta.name}" for p in pods) or "none"
    raise AnswerError(f"the lab has no pod {ns}/{name} (pods: {have})")


def pods_selected(lab, svc: Service) -> list[Pod]:
    """The running pods the Service's selector picks, by name."""
    if svc.selector is None:
        return []
    return sorted((p for p in lab.pods()
                   if p.meta.namespace == svc.meta.namespace and p.pod_ip
                   and map_selector_matches(svc.selector, p.meta.labels)),
                  key=lambda p: p.meta.name)


def endpoint_addresses(lab, svc: Service, port_name: Optional[str] = None) -> list[str]:
    """ "ip:port" of every ready endpoint in the Service's EndpointSlices, sorted.

    From the lab's EndpointSlices when the lab keeps them (state), else from the
    selected pods and the Service's numeric targetPort.
    """
    state = getattr(lab, "state", None)
    out: set[str] = set()
    sp = next((p for p in svc.ports if port_name in (None, p.name)), None)
    if state is not None:
        for sl in state.slices_for(svc.meta.namespace, svc.meta.name):
            port = next((p.port for p in sl.ports if sp is None or p.name == sp.name), None)
            for ep in sl.endpoints:
                if ep.conditions.ready is False:
                    continue
                for a in ep.addresses:
                    out.add(f"{a}:{port}")
        return sorted(out, key=_addr_key)
    tp = sp.target_port if sp is not None else 0
    for p in pods_selected(lab, svc):
        out.add(f"{p.pod_ip}:{tp}")
    return sorted(out, key=_addr_key)


def _addr_key(text: str):
    host, _, port = text.rpartition(":")
    return tuple(int(x) for x in host.split(".")) + (int(port or 0),)


def nodes(lab) -> list[tuple[str, str]]:
    """[(node name, node IP)] in the lab's order."""
    plan = getattr(lab, "plan", None)
    if plan is not None:
        return [(n.name, n.ip) for n in plan.nodes]
    state = getattr(lab, "state", None)
    if state is not None:
        return [(n.meta.name, state.node_ip(n.meta.name)) for n in state.nodes]
    seen: dict[str, str] = {}
    for p in lab.pods():
        seen.setdefault(p.node_name, p.host_ip)
    return sorted(seen.items())


def node_of(lab, pod_key: str) -> str:
    return pod(lab, pod_key).node_name


def outside_hosts(lab) -> list[tuple[str, str]]:
    """[("outside", "192.0.2.10"), ("internet", "203.0.113.10")]: the lab's hosts outside the cluster."""
    plan = getattr(lab, "plan", None)
    if plan is not None:
        return [(plan.outside.name, plan.outside.ip), (plan.internet.name, plan.internet.ip)]
    from labkit.topology.plan import INTERNET_HOST, OUTSIDE_CLIENT

    return [("outside", OUTSIDE_CLIENT), ("internet", INTERNET_HOST)]


def owner_of(lab, ip: str) -> str:
    """Who holds `ip`: "default/web-0" (a pod), a node name, "outside"/"internet", or ""."""
    for p in lab.pods():
        if p.pod_ip == ip and not p.host_network:
            return f"{p.meta.namespace}/{p.meta.name}"
    for name, addr in nodes(lab) + outside_hosts(lab):
        if addr == ip:
            return name
    return ""


def source_name(lab, ip: str) -> str:
    """The probe source ("ns/pod", node, "outside") that sends from `ip`; AnswerError if none does."""
    who = owner_of(lab, ip)
    if not who:
        raise AnswerError(
            f"no pod, node or outside host of the lab has the address {ip}, so nothing can send from it "
            "(use a pod's address from lab.pods(), or a node's)")
    return who


def rules(lab, node: str, table: str = "nat") -> str:
    return lab.rules(node, table)


def service_chain(rules_text: str, svc: Service, port_name: str = "") -> str:
    """The KUBE-SVC-... chain kube-proxy made for this Service port, read from the rule text."""
    comment = f'"{svc.meta.namespace}/{svc.meta.name}' + (f":{port_name}" if port_name else "") + ' cluster IP"'
    for line in rules_text.splitlines():
        if line.startswith("-A KUBE-SERVICES ") and comment in line and "-j KUBE-SVC-" in line:
            return line.rsplit("-j ", 1)[1].strip()
    raise AnswerError(f"no KUBE-SERVICES rule for {svc.meta.namespace}/{svc.meta.name} in the node's nat table "
                      "(has the Service an endpoint?)")


def chain_rules(rules_text: str, chain: str) -> list[str]:
    """The `-A CHAIN ...` lines of one chain, in order."""
    return [l for l in rules_text.splitlines() if l.startswith(f"-A {chain} ")]


def first_node(lab) -> str:
    return nodes(lab)[0][0]


def render_spread(n: int) -> tuple[str, list[str]]:
    """(KUBE-SVC chain, its rules) kube-proxy writes for a ClusterIP Service with `n` ready endpoints.

    Rendered by the real renderer for a throw-away Service default/demo
    (10.96.0.100:80 -> 10.244.1.2.. :8080), so what a learner predicts is
    compared with the rule text kube-proxy would load, not with a formula.
    """
    from labkit.controllers.kube_proxy.iptables import render_iptables
    from labkit.model.objects import (SERVICE_NAME_LABEL, Endpoint, EndpointConditions, EndpointPort,
                                      EndpointSlice, ObjectMeta, ServicePort)

    if not 1 <= n <= 250:
        raise AnswerError(f"the number of endpoints must be between 1 and 250, not {n}")
    svc = Service(meta=ObjectMeta(name="demo", namespace="default"),
                  ports=(ServicePort(port=80, protocol="TCP", target_port=8080),),
                  selector={"app": "demo"}, cluster_ip="10.96.0.100", cluster_ips=("10.96.0.100",),
                  ip_families=("IPv4",))
    ready = EndpointConditions(ready=True, serving=True, terminating=False)
    eps = tuple(Endpoint(addresses=(f"10.244.1.{i + 2}",), conditions=ready) for i in range(n))
    sl = EndpointSlice(meta=ObjectMeta(name="demo-1", namespace="default",
                                       labels={SERVICE_NAME_LABEL: "demo"}),
                       address_type="IPv4", endpoints=eps, ports=(EndpointPort(port=8080, protocol="TCP"),))
    text = render_iptables([svc], [sl], node_name="kind-worker", node_ips=["172.18.0.3"]).full_text
    chain = service_chain(text, svc)
    return chain, chain_rules(text, chain)


def rule_probability(rule: str) -> str:
    """The text after --probability in a rule, or "1" for a rule without a statistic match."""
    words = rule.split()
    return words[words.index("--probability") + 1] if "--probability" in words else "1"


def rendered_probabilities(n: int) -> list[str]:
    """The probability on each of the n rules of the spread, as the rule text says it."""
    return [rule_probability(r) for r in render_spread(n)[1]]


def first_share(probabilities) -> list[float]:
    """Each rule's share of all new connections: rule i is reached with what rules before it left."""
    left, shares = 1.0, []
    for p in probabilities:
        shares.append(left * float(p))
        left -= shares[-1]
    return shares
