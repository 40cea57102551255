"""The world outside the pod network, as both backends need it (pure).

- which servers listen where: the pods' netexec servers, the internet host's
  netexec (so /clientip shows the address the internet saw), kube-proxy's
  health check servers on the nodes, and the DNS pods' server;
- when a lab needs its cloud (NAT gateway and load balancer): once a story
  uses it -- a LoadBalancer Service, the internet host, a public address, or
  the masquerade switch -- the lab grows it, and keeps it;
- the lab's own settings (cloud on, masquerade on/off) as JSON-able data;
- the kube-dns add-on: a Service and a Deployment as on a kind cluster,
  selected by the label k8s-app: kube-dns.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping, Optional

from labkit.controllers.loadbalancer import health_checks
from labkit.errors import LabkitError
from labkit.topology.masquerade import MasqueradeSettings
from labkit.topology.plan import INTERNET_HOST, PUBLIC_NETWORK, LabPlan

INTERNET_HOSTNAME = "internet"  # what the internet host's /hostname answers
INTERNET_HTTP_PORT = 80
INTERNET_UDP_PORT = 8081
DNS_LABEL = ("k8s-app", "kube-dns")
DNS_NAMESPACE = "kube-system"
DNS_PORT = 53

KUBE_DNS_MANIFEST = """\
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 2
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      containers:
      - name: coredns
        image: registry.k8s.io/coredns/coredns:v1.11.3
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
"""


def is_dns_pod(pod) -> bool:
    """A pod of the kube-dns add-on: in the kernel lab it runs the DNS server, not netexec."""
    return pod.meta.namespace == DNS_NAMESPACE and pod.meta.labels.get(DNS_LABEL[0]) == DNS_LABEL[1]


def dns_pods(state) -> list:
    return [p for p in state.pods if is_dns_pod(p) and p.pod_ip]


def require_cluster_dns(state) -> None:
    """LabkitError with the fix unless the kube-dns Service and at least one DNS pod exist."""
    has_service = any(s.meta.namespace == DNS_NAMESPACE and s.meta.name == "kube-dns" for s in state.services)
    if not has_service or not dns_pods(state):
        raise LabkitError("this lab has no cluster DNS yet (fix: lab.enable_dns(), or apply "
                          "labkit.topology.outside.KUBE_DNS_MANIFEST: the kube-dns Service and its pods)")


@dataclass(frozen=True)
class LabNetworkSettings:
    """What a learner switched on or off in a lab, beyond its manifests."""

    cloud: bool = False
    masquerade: MasqueradeSettings = field(default_factory=MasqueradeSettings)

    def to_json(self) -> dict:
        cidrs = self.masquerade.non_masquerade_cidrs
        return {"cloud": self.cloud, "masquerade": self.masquerade.enabled,
                "non_masquerade_cidrs": list(cidrs) if cidrs is not None else None}

    @classmethod
    def from_json(cls, data: Mapping) -> "LabNetworkSettings":
        cidrs = data.get("non_masquerade_cidrs")
        return cls(bool(data.get("cloud", False)),
                   MasqueradeSettings(bool(data.get("masquerade", True)),
                                      tuple(cidrs) if cidrs is not None else None))


def check_cidrs(cidrs) -> tuple[str, ...]:
    """The non-masquerade CIDRs, normalised; LabkitError naming a bad one and the fix."""
    out = []
    for c in cidrs:
        try:
            out.append(str(ipaddress.ip_network(c, strict=False)))
        except ValueError:
            raise LabkitError(f"non-masquerade CIDR {c!r} is not a network (fix: write it like 10.244.0.0/16)") from None
    return tuple(out)


def needs_cloud(state, source: str = "", host: str = "") -> bool:
    """Does this state, or a probe from `source` to `host`, need the lab's cloud?"""
    if any(s.type == "LoadBalancer" for s in state.services):
        return True
    if source == "internet" or host == INTERNET_HOST:
        return True
    if host:
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(PUBLIC_NETWORK)
        except ValueError:
            return False
    return False


@dataclass(frozen=True)
class HealthServer:
    """kube-proxy's health check answers on one node: {port: (status, body)}."""

    node: str
    netns: str
    ip: str
    answers: tuple[tuple[int, int, str], ...]  # (port, status, body)

    def answer(self, port: int) -> Optional[tuple[int, str]]:
        for p, status, body in self.answers:
            if p == port:
                return status, body
        return None


def health_servers(plan: LabPlan, state) -> list[HealthServer]:
    """The nodes' health check servers (nodes without any health check port are left out)."""
    checks = health_checks(state, [n.name for n in plan.nodes])
    out = []
    for n in plan.nodes:
        mine = tuple((c.port, c.status, c.body) for c in checks if c.node == n.name)
        if mine:
            out.append(HealthServer(n.name, n.netns, n.ip, mine))
    return out


ROUTER_ALIASES = {"net": "net", "natgw": "natgw", "nat-gateway": "natgw", "lb": "lb", "load-balancer": "lb"}


def router_netns(plan: LabPlan, name: str) -> str:
    """The namespace of "net", "natgw"/"nat-gateway" or "lb"/"load-balancer" ("" for anything else).

    LabkitError when the name is the cloud's and the lab has no cloud yet.
    """
    role = ROUTER_ALIASES.get(name)
    if role is None:
        return ""
    if role == "net":
        return plan.network_netns
    if plan.cloud is None:
        raise LabkitError(f"lab {plan.lab} has no {name} yet: the cloud is made when a story needs it "
                          "(fix: lab.enable_cloud(), or probe the internet host or a LoadBalancer)")
    return plan.cloud.natgw_netns if role == "natgw" else plan.cloud.lb_netns


def trace_namespaces(plan: LabPlan, first_node: str, host: str) -> list[str]:
    """The routers whose chains a trace reports, in path order: the load balancer (and the nodes
    behind it) when the destination is one of its addresses, the first node, the NAT gateway
    toward the internet."""
    out = []
    if plan.cloud is not None and host and _in(host, "198.51.100.192/26"):
        # the load balancer picks the node: every node is watched, the one it picked reports
        out.append(plan.cloud.lb_netns)
        out += [n.netns for n in plan.nodes if n.name != first_node]
    if first_node:
        out.append(plan.node(first_node).netns)
    if plan.cloud is not None and host == INTERNET_HOST:
        out.append(plan.cloud.natgw_netns)
    return out


def _in(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return False
