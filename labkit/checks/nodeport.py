"""Checks for 06.00-nodeport-and-loadbalancer: the NodePort range, the extra hop, Local, the cloud LB.

The notebook's Service default/echo selects two pods that both run on
kind-worker2; the outside client (192.0.2.10) sends to every node. Where an
exercise asks "what if", the expected answer comes from a throw-away
simulated copy of the lab (labkit.checks.sandbox), probed the same way.
"""
from __future__ import annotations

import ipaddress

from labkit.checks import facts, sandbox, where
from labkit.checks.answers import as_int, as_ip
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab

SERVICE = "default/echo"
LB_SERVICE = "default/echo-lb"
OUTSIDE = "outside"
INSIDE = "default/client"
ARTICLE_TOP = 33000  # what the seed article (and some other texts) say


def node_port_range(lab) -> tuple[int, int]:
    settings = getattr(lab, "settings", None)
    if settings is not None and getattr(settings, "node_port_range", None):
        return tuple(settings.node_port_range)
    from labkit.controllers.cluster import ClusterSettings

    return ClusterSettings().node_port_range


def _node_port(svc) -> int:
    port = next((p.node_port for p in svc.ports if p.node_port), 0)
    if not port:
        raise AnswerError(f"Service {svc.meta.namespace}/{svc.meta.name} has no nodePort: is it of type NodePort?")
    return port


def _node_names(lab, answer) -> frozenset[str]:
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        raise AnswerError(f"expected a list of node names such as ['kind-worker'], got {answer!r}")
    return frozenset(where.read_place(lab, a) for a in answer)


@checker("nodeport.range_top", hints=[
    "the range is a flag of the API server, --service-node-port-range; the lab uses its default.",
    "the default is 30000-32767: 2768 ports. Some texts, the article this course started from among them, "
    "say 30000-33000; try applying a Service with nodePort 32800 and read the error.",
    "the last port of the range, a whole number.",
])
def range_top(answer, lab):
    need_lab(lab)
    top = as_int(answer, "a port number")
    lo, hi = node_port_range(lab)
    if top == hi:
        return Right(f"{hi}: NodePorts come from {lo}-{hi} ({hi - lo + 1} ports) unless the API server's "
                     "--service-node-port-range says otherwise.")
    if top == ARTICLE_TOP:
        return Wrong(f"33000 is a common mistake (it is in the article this course started from); a nodePort "
                     f"of 32800 is refused here as outside {lo}-{hi}")
    if top == hi + 1:
        return Wrong(f"{top} is just outside; the range includes both of its ends")
    return Wrong(f"{top} is not the end of the range; the error message of a refused nodePort names the range")


@checker("nodeport.seen_as", hints=[
    "the node that received the packet has no echo pod of its own, so it sends the packet on to "
    "another node. The reply must come back the same way, through the node that holds the conntrack entry.",
    "to make sure of that, kube-proxy masquerades the packet (KUBE-MARK-MASQ, then MASQUERADE in "
    "KUBE-POSTROUTING): its source becomes an address of that node.",
    "the address of the node you sent to, as the pod's /clientip shows it.",
])
def seen_as(answer, lab, node="kind-control-plane", service=SERVICE):
    need_lab(lab)
    ip = as_ip(answer)
    copy = sandbox.sim_copy(lab)
    port = _node_port(facts.service(copy, service))
    node_ip = dict(facts.nodes(lab))[node]
    r = copy.http(OUTSIDE, f"{node_ip}:{port}", "/clientip")
    if not r.ok:
        raise AnswerError(f"{node}:{port} does not answer the outside client in this lab: is {service} still "
                          "of externalTrafficPolicy Cluster, as in the notebook?")
    seen = r.body.rsplit(":", 1)[0]
    if ip == seen:
        return Right(f"the pod sees {seen}, {node}'s address: the node masqueraded the client so that the "
                     "reply comes back through it, where the entry that undoes the DNAT is.")
    if ip == dict(facts.outside_hosts(lab))["outside"]:
        return Wrong("the client's own address would be kept only if the node did not SNAT; with "
                     "externalTrafficPolicy Cluster it does, because the pod may be on another node")
    return Wrong(f"the pod does not see {ip}")


def answering_nodes(lab, service=SERVICE, source=OUTSIDE) -> list[tuple[str, str]]:
    """[(node, address the pod saw)] for every node whose NodePort answers `source`, in a copy of the lab."""
    copy = sandbox.sim_copy(lab)
    port = _node_port(facts.service(copy, service))
    out = []
    for name, ip in facts.nodes(copy):
        r = copy.http(source, f"{ip}:{port}", "/clientip")
        if r.ok:
            out.append((name, r.body.rsplit(":", 1)[0]))
    return out


def _require_local(lab, service):
    svc = facts.service(lab, service)
    if svc.external_traffic_policy != "Local":
        raise AnswerError(f"Service {service} has externalTrafficPolicy {svc.external_traffic_policy}: run the "
                          "cell that sets it to Local first")
    return svc


@checker("nodeport.local_nodes", hints=[
    "with externalTrafficPolicy Local, a node sends external traffic only to endpoints on that same node.",
    "a node without an endpoint of its own drops the packet (KUBE-EXTERNAL-SERVICES: "
    "'has no local endpoints').",
    "list the nodes that run an echo pod: lab.pods() shows each pod's node_name.",
])
def local_nodes(answer, lab, service=SERVICE):
    need_lab(lab)
    _require_local(lab, service)
    got = _node_names(lab, answer)
    expected = frozenset(n for n, _ in answering_nodes(lab, service))
    if got == expected:
        return Right(f"only {', '.join(sorted(expected))} answer{'s' if len(expected) == 1 else ''}: each node "
                     "serves external traffic from its own endpoints, and the others drop it.")
    all_nodes = frozenset(n for n, _ in facts.nodes(lab))
    if got == all_nodes:
        return Wrong("that was true with the Cluster policy; with Local, a node without an endpoint of its own "
                     "has nowhere to send the packet")
    extra = sorted(got - expected)
    if extra:
        return Wrong(f"{', '.join(extra)} {'has' if len(extra) == 1 else 'have'} no echo pod, so "
                     f"{'it drops' if len(extra) == 1 else 'they drop'} the packet")
    return Wrong(f"{', '.join(sorted(expected - got))} also answer{'s' if len(expected - got) == 1 else ''}")


@checker("nodeport.local_client", hints=[
    "with Local, the node does not need to send the packet to another node.",
    "so it does not masquerade: the reply will go back through the same node anyway.",
    "the outside client's own address, as lab.plan.outside.ip (or the probe's client_address) shows it.",
])
def local_client(answer, lab, service=SERVICE):
    need_lab(lab)
    _require_local(lab, service)
    ip = as_ip(answer)
    answering = answering_nodes(lab, service)
    if not answering:
        raise AnswerError(f"no node answers {service}'s NodePort: does it still select the echo pods?")
    node, seen = answering[0]
    if ip == seen:
        return Right(f"the pod sees {seen}, the client itself: with Local, {node} DNATs but does not SNAT, so "
                     "the application can log, rate-limit or allow by the real client address.")
    if ip in dict(facts.nodes(lab)).values():
        return Wrong("that is a node's address: with Cluster policy the node would masquerade; with Local it "
                     "does not")
    return Wrong(f"the pod does not see {ip}")


def load_balancer_nodes(lab, service=LB_SERVICE) -> list[str]:
    """The nodes the cloud load balancer sends `service` to, read from its DNAT rules' comments."""
    svc = facts.service(lab, service)
    if not svc.load_balancer_ingress:
        raise AnswerError(f"Service {service} has no load balancer address yet: apply it as a LoadBalancer")
    label = f'"{svc.meta.namespace}/{svc.meta.name}'
    out = []
    for line in lab.rules("lb", "nat").splitlines():
        if label in line and "-j DNAT" in line and " -> " in line:
            out.append(line.split(" -> ", 1)[1].split('"', 1)[0])
    return out


@checker("nodeport.lb_targets", hints=[
    "the load balancer's rules are in lab.rules('lb', 'nat'): one DNAT per node it sends to.",
    "it asks every node's health check port first; a node answering 503 (no local endpoint) is left out.",
    "list the node names that appear in the load balancer's DNAT rules for echo-lb.",
])
def lb_targets(answer, lab, service=LB_SERVICE):
    need_lab(lab)
    got = _node_names(lab, answer)
    expected = frozenset(load_balancer_nodes(lab, service))
    if got == expected:
        return Right(f"the load balancer sends only to {', '.join(sorted(expected))}: the nodes whose health "
                     "check answers 200, so no connection is sent to a node that would drop it.")
    if "kind-control-plane" in got:
        return Wrong("the control-plane node is left out twice: kind labels it "
                     "node.kubernetes.io/exclude-from-external-load-balancers, and it has no echo pod")
    return Wrong(f"the load balancer's rules name {len(expected)} node{'s' if len(expected) != 1 else ''}")


def _as_cidrs(answer) -> list[str]:
    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, (list, tuple)) or not answer:
        raise AnswerError(f"expected a list of CIDRs such as ['192.0.2.0/24'], got {answer!r}")
    out = []
    for a in answer:
        try:
            out.append(str(ipaddress.ip_network(str(a).strip(), strict=False)))
        except ValueError:
            raise AnswerError(f"{a!r} is not a CIDR (write it like '192.0.2.0/24')") from None
    return out


@checker("nodeport.source_ranges", hints=[
    "loadBalancerSourceRanges is a list of CIDRs allowed to connect; everything else is dropped.",
    "the outside client is 192.0.2.10, in the partner network 192.0.2.0/24; the client pod is 10.244.1.2.",
    "['192.0.2.0/24'] lets the partner network in and keeps every other source out.",
])
def source_ranges(answer, lab, service=LB_SERVICE):
    need_lab(lab)
    cidrs = _as_cidrs(answer)
    copy = sandbox.sim_copy(lab)
    svc = facts.service(copy, service)
    copy.apply(sandbox.service_manifest(svc, loadBalancerSourceRanges=cidrs), "source ranges")
    svc = facts.service(copy, service)
    if not svc.load_balancer_ingress:
        raise AnswerError(f"Service {service} has no load balancer address: apply it as the notebook does")
    dest = f"{svc.load_balancer_ingress[0].ip}:{svc.ports[0].port}"
    outside = copy.http(OUTSIDE, dest)
    inside = copy.probe(INSIDE, dest)[0]
    if not outside.ok:
        return Wrong(f"with {cidrs} the outside client (192.0.2.10) is dropped by the load balancer: the "
                     "partner network must be in the list")
    if inside.ok:
        return Wrong(f"with {cidrs} the outside client gets in, but so does the client pod 10.244.1.2 (kube-proxy "
                     "applies the same ranges on the nodes): allow only the partner network")
    return Right(f"with {cidrs} the outside client gets in and the client pod is dropped, both at the cloud's "
                 "load balancer and by kube-proxy's own firewall rules on the nodes.")
