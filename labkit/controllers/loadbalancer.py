"""What a cloud's load balancer controller and kube-proxy's health check server decide (pure).

- `assign_load_balancer_ingress`: the cloud controller's half of a
  LoadBalancer Service: an address from the lab's pool (documentation range
  198.51.100.200-250) written to status.loadBalancer.ingress. spec.loadBalancerIP
  is honoured when it is in the pool and free. Otherwise a Service's address
  follows from its name (a hash picks its first choice, then the next free
  one), so it does not move when other Services come and go, and replaying a
  lab's operations gives every Service the address it had.
- `local_endpoint_count` and `render_health_check`: kube-proxy's health check
  server (pkg/proxy/healthcheck/service_health.go) for
  externalTrafficPolicy: Local: on healthCheckNodePort each node answers 200
  with its number of local ready endpoints, or 503 when it has none, with the
  JSON body kube-proxy writes, byte for byte.
- `load_balancer_targets`: the nodes a classic L4 load balancer spreads a
  Service's connections over: every node not labelled
  node.kubernetes.io/exclude-from-external-load-balancers (kind labels its
  control plane so), and for a Local Service only the nodes whose health check
  passes.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from labkit.errors import ManifestError, Problem
from labkit.model.objects import LoadBalancerIngress, Service, ref

LB_POOL = ("198.51.100.200", "198.51.100.250")
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


def pool_addresses(pool: tuple[str, str] = LB_POOL) -> list[str]:
    first, last = (int(ipaddress.ip_address(a)) for a in pool)
    return [str(ipaddress.ip_address(n)) for n in range(first, last + 1)]


def _first_choice(svc: Service, size: int) -> int:
    digest = hashlib.sha256(f"{svc.meta.namespace}/{svc.meta.name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % size


def assign_load_balancer_ingress(services: Sequence[Service], pool: tuple[str, str] = LB_POOL) -> list[Service]:
    """Services with status.loadBalancer.ingress filled in for every LoadBalancer Service.

    Other Services lose any ingress they carried (a type change to ClusterIP
    releases the address). A ManifestError names every Service the pool cannot serve.
    """
    addresses = pool_addresses(pool)
    taken: dict[str, str] = {}
    problems: list[Problem] = []
    wanted = sorted((s for s in services if s.type == "LoadBalancer"),
                    key=lambda s: (s.meta.namespace, s.meta.name))
    chosen: dict[tuple[str, str], str] = {}
    for svc in wanted:  # requested addresses first
        ip = svc.load_balancer_ip
        if not ip:
            continue
        if ip not in addresses:
            problems.append(Problem(ref(svc), "spec.loadBalancerIP",
                                    f"{ip} is not in the lab's load balancer pool {pool[0]}-{pool[1]}",
                                    f"pick an address in {pool[0]}-{pool[1]}, or leave loadBalancerIP out"))
        elif ip in taken:
            problems.append(Problem(ref(svc), "spec.loadBalancerIP", f"{ip} is already the address of {taken[ip]}",
                                    "pick another address, or leave loadBalancerIP out"))
        else:
            taken[ip] = ref(svc)
            chosen[(svc.meta.namespace, svc.meta.name)] = ip
    for svc in wanted:
        key = (svc.meta.namespace, svc.meta.name)
        if key in chosen or svc.load_balancer_ip:
            continue
        start = _first_choice(svc, len(addresses))
        for k in range(len(addresses)):
            ip = addresses[(start + k) % len(addresses)]
            if ip not in taken:
                taken[ip] = ref(svc)
                chosen[key] = ip
                break
        else:
            problems.append(Problem(ref(svc), "status.loadBalancer.ingress",
                                    f"the lab's load balancer pool {pool[0]}-{pool[1]} is used up",
                                    "delete a LoadBalancer Service or make this one a NodePort"))
    if problems:
        raise ManifestError(problems)
    out = []
    for svc in services:
        ip = chosen.get((svc.meta.namespace, svc.meta.name))
        ingress = (LoadBalancerIngress(ip=ip),) if ip and svc.type == "LoadBalancer" else ()
        out.append(svc if svc.load_balancer_ingress == ingress else replace(svc, load_balancer_ingress=ingress))
    return out


def with_load_balancer_status(state, pool: tuple[str, str] = LB_POOL):
    """A ClusterState whose LoadBalancer Services carry their ingress address."""
    services = tuple(assign_load_balancer_ingress(state.services, pool))
    return state if services == state.services else replace(state, services=services)


def _ready(ep) -> bool:
    c = ep.conditions
    return c.ready is not False and not c.terminating


def local_endpoint_count(state, svc: Service, node: str) -> int:
    """kube-proxy's LocalReadyEndpoints: ready endpoints of `svc` on `node` (distinct addresses)."""
    addresses = set()
    for sl in state.endpoint_slices:
        if sl.meta.namespace != svc.meta.namespace or sl.service_name != svc.meta.name:
            continue
        for ep in sl.endpoints:
            if ep.node_name == node and _ready(ep):
                addresses.update(ep.addresses)
    return len(addresses)


@dataclass(frozen=True)
class HealthCheck:
    """One node's answer on one Service's healthCheckNodePort."""

    namespace: str
    name: str
    port: int
    node: str
    local_endpoints: int
    proxy_healthy: bool = True

    @property
    def status(self) -> int:
        return 200 if self.local_endpoints and self.proxy_healthy else 503

    @property
    def body(self) -> str:
        return render_health_check(self.namespace, self.name, self.local_endpoints, self.proxy_healthy)


def render_health_check(namespace: str, name: str, local_endpoints: int, proxy_healthy: bool = True) -> str:
    """The body kube-proxy's hcHandler writes (a dedented Go template, tabs kept, no final newline)."""
    return ("{\n"
            "\t\"service\": {\n"
            f"\t\t\"namespace\": {_go_quote(namespace)},\n"
            f"\t\t\"name\": {_go_quote(name)}\n"
            "\t},\n"
            f"\t\"localEndpoints\": {local_endpoints},\n"
            f"\t\"serviceProxyHealthy\": {'true' if proxy_healthy else 'false'}\n"
            "}")


def _go_quote(text: str) -> str:
    """Go's %q for the names Kubernetes allows (DNS labels: no character needs escaping)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def health_checks(state, nodes: Iterable[str]) -> list[HealthCheck]:
    """Every (Service, node) health check the nodes' kube-proxies serve."""
    out = []
    for svc in sorted(state.services, key=lambda s: (s.meta.namespace, s.meta.name)):
        if not svc.health_check_node_port:
            continue
        for node in nodes:
            out.append(HealthCheck(svc.meta.namespace, svc.meta.name, svc.health_check_node_port, node,
                                   local_endpoint_count(state, svc, node)))
    return out


def load_balancer_targets(state, svc: Service, nodes: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(node name, node address) the load balancer sends `svc`'s connections to, in node order.

    nodes: (name, address) of every node of the lab.
    """
    labels = {n.meta.name: n.meta.labels for n in state.nodes}
    out = []
    for name, ip in nodes:
        if EXCLUDE_FROM_LB_LABEL in labels.get(name, {}):
            continue
        if svc.external_traffic_policy == "Local" and local_endpoint_count(state, svc, name) == 0:
            continue  # its health check answers 503
        out.append((name, ip))
    return out
