"""The control plane in one pure call: manifests in, a settled cluster out.

`reconcile` does what the API server and the controllers do between
`kubectl apply` and the moment kube-proxy sees anything, in the order they
settle on a fresh kind cluster:

1. admission: every given ClusterIP, NodePort and pod IP is checked against
   this cluster (all problems reported together);
2. nodes: missing ones created, each with a podCIDR (node i: the i-th /24);
3. Deployments -> Pods (`<deploy>-<pod-template-hash>-<5 random chars>`);
4. scheduling: fewest pods first, control-plane nodes only when alone
   (no nodes at all: pods stay Pending, as on a real cluster);
5. pod IPs from the node's /24, from .2 upward; pods Running and Ready;
6. ClusterIPs (kubernetes at .1, kube-dns at .10, others random) and
   NodePorts (random, upper part of the range first);
7. EndpointSlices.

Everything random comes from the `rng` passed in, so one seed gives one
cluster.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Sequence

from labkit.controllers import ipam
from labkit.controllers.deployments import pods_for_deployment, random_uid
from labkit.controllers.endpointslices import reconcile_endpoint_slices
from labkit.errors import LabkitError, ManifestError, Problem
from labkit.model.objects import (
    Deployment,
    EndpointSlice,
    Ingress,
    KubeObject,
    Namespace,
    NetworkPolicy,
    Node,
    NodeAddress,
    ObjectMeta,
    Pod,
    PodCondition,
    Service,
    ref,
)
from labkit.model.selectors import selector_matches
from labkit.model.gateway import Gateway, HTTPRoute

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
# Conditions the kubelet reports for a pod whose containers all started.
READY_CONDITIONS = ("Initialized", "Ready", "ContainersReady", "PodScheduled")
_CONTROL_PLANE_NAME = re.compile(r"(^|-)control-plane\d*$")


class ObjectNotFound(LabkitError):
    """A lookup in ClusterState for an object that is not there."""


@dataclass(frozen=True)
class ClusterSettings:
    """The cluster-wide configuration a kind cluster starts with."""

    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    node_cidr_mask_size: int = 24
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"
    # kind's docker network; node InternalIPs from .2 (.1 is the bridge)
    node_network: str = "172.18.0.0/16"


@dataclass(frozen=True)
class ClusterState:
    """Every object of a settled cluster, grouped by kind."""

    namespaces: tuple[Namespace, ...] = ()
    nodes: tuple[Node, ...] = ()
    pods: tuple[Pod, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    services: tuple[Service, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    network_policies: tuple[NetworkPolicy, ...] = ()
    ingresses: tuple[Ingress, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    http_routes: tuple[HTTPRoute, ...] = ()
    settings: ClusterSettings = field(default_factory=ClusterSettings)
    # host-local IPAM's last_reserved_ip per node: the next pod gets the
    # address after it, so a replaced pod does not get its predecessor's IP.
    last_pod_ips: Mapping[str, str] = field(default_factory=dict)

    def objects(self) -> tuple[KubeObject, ...]:
        return (
            self.namespaces + self.nodes + self.deployments + self.pods + self.services
            + self.endpoint_slices + self.network_policies + self.ingresses
            + self.gateways + self.http_routes
        )

    def node(self, name: str) -> Node:
        return _find(self.nodes, "Node", "", name)

    def node_ip(self, name: str) -> str:
        """The node's InternalIP ("" if it has none)."""
        return internal_ip(self.node(name))

    def pod(self, namespace: str, name: str) -> Pod:
        return _find(self.pods, "Pod", namespace, name)

    def service(self, namespace: str, name: str) -> Service:
        return _find(self.services, "Service", namespace, name)

    def deployment(self, namespace: str, name: str) -> Deployment:
        return _find(self.deployments, "Deployment", namespace, name)

    def pods_in(self, namespace: str) -> tuple[Pod, ...]:
        return tuple(p for p in self.pods if p.meta.namespace == namespace)

    def pods_on(self, node_name: str) -> tuple[Pod, ...]:
        return tuple(p for p in self.pods if p.node_name == node_name)

    def services_in(self, namespace: str) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.meta.namespace == namespace)

    def slices_for(self, namespace: str, service_name: str) -> tuple[EndpointSlice, ...]:
        """The EndpointSlices labelled for this Service."""
        return tuple(
            e
            for e in self.endpoint_slices
            if e.meta.namespace == namespace and e.service_name == service_name
        )


def _find(objs, kind: str, namespace: str, name: str):
    for o in objs:
        if o.meta.name == name and o.meta.namespace == namespace:
            return o
    where = f" in namespace {namespace!r}" if namespace else ""
    there = sorted(o.meta.name for o in objs if o.meta.namespace == namespace)
    listing = ", ".join(there) if there else "none"
    raise ObjectNotFound(f"no {kind} named {name!r}{where}; the {kind}s there: {listing}")


def internal_ip(node: Node) -> str:
    return next((a.address for a in node.addresses if a.type == "InternalIP"), "")


def is_control_plane(node: Node) -> bool:
    return CONTROL_PLANE_LABEL in node.meta.labels


def default_node_labels(name: str) -> dict[str, str]:
    """The labels kind's nodes carry; names ending in control-plane get the role."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if _CONTROL_PLANE_NAME.search(name):
        labels[CONTROL_PLANE_LABEL] = ""
        labels[EXCLUDE_FROM_LB_LABEL] = ""
    return labels


# --- the steps ---------------------------------------------------------------


class _Run:
    """One reconcile call: the inputs, the rng and the problems found so far."""

    def __init__(self, settings: ClusterSettings, rng: random.Random, admit: bool):
        self.settings = settings
        self.rng = rng
        self.admit = admit
        self.problems: list[Problem] = []

    def problem(self, obj: KubeObject, fld: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(ref(obj), fld, message, fix))

    # 0. namespaces -------------------------------------------------------------

    def namespaces(self, given: list[Namespace], namespaced: list[KubeObject]) -> tuple[Namespace, ...]:
        names = {n.meta.name for n in given}
        out = [Namespace(ObjectMeta(name=n)) for n in BUILTIN_NAMESPACES if n not in names]
        out += given
        known = {n.meta.name for n in out}
        for obj in namespaced:
            ns = obj.meta.namespace
            if ns in known or not ns:
                continue
            if self.admit:
                self.problem(
                    obj,
                    "metadata.namespace",
                    f'namespace "{ns}" does not exist',
                    f"add a Namespace named {ns} to the manifests (kubectl create namespace {ns})",
                )
            else:
                out.append(Namespace(ObjectMeta(name=ns)))
                known.add(ns)
        return tuple(out)

    # 1. nodes ------------------------------------------------------------------

    def nodes(self, given: list[Node], node_names: Sequence[str]) -> list[Node]:
        s = self.settings
        have = {n.meta.name for n in given}
        nodes = list(given)
        for name in node_names:
            if name not in have:
                nodes.append(Node(ObjectMeta(name=name, labels=default_node_labels(name))))
                have.add(name)
        cidrs = ipam.NodeCIDRAllocator(s.pod_cidr, s.node_cidr_mask_size)
        ips = ipam.SequentialIPAllocator(s.node_network, first_offset=2)
        for n in nodes:
            for c in n.pod_cidrs or ((n.pod_cidr,) if n.pod_cidr else ()):
                cidrs.reserve(c)
            ip = internal_ip(n)
            if ip and ips.contains(ip):
                ips.reserve(ip)
        out = []
        for n in nodes:
            pod_cidr = n.pod_cidr or (n.pod_cidrs[0] if n.pod_cidrs else "")
            if not pod_cidr:
                pod_cidr = cidrs.allocate() or ""
                if not pod_cidr:
                    self.problem(
                        n,
                        "spec.podCIDR",
                        f"the pod CIDR {s.pod_cidr} has no free /{s.node_cidr_mask_size} left for this node",
                        "use a larger pod_cidr or node_cidr_mask_size in ClusterSettings, or fewer nodes",
                    )
            addresses = n.addresses
            if not internal_ip(n):
                ip = ips.allocate()
                if ip is None:
                    self.problem(n, "status.addresses", f"the node network {s.node_network} is full",
                                 "use a larger node_network in ClusterSettings")
                else:
                    addresses = (NodeAddress("InternalIP", ip),) + addresses
            if not any(a.type == "Hostname" for a in addresses):
                addresses = addresses + (NodeAddress("Hostname", n.meta.name),)
            out.append(
                replace(
                    n,
                    pod_cidr=pod_cidr,
                    pod_cidrs=n.pod_cidrs or ((pod_cidr,) if pod_cidr else ()),
                    addresses=addresses,
                )
            )
        return out

    # 2. Deployments -> Pods ----------------------------------------------------

    def deployment_pods(self, deployments: list[Deployment], pods: list[Pod]) -> list[Pod]:
        out: list[Pod] = []
        for d in deployments:
            if not selector_matches(d.selector, d.template.meta.labels):
                if self.admit:
                    self.problem(
                        d,
                        "spec.template.metadata.labels",
                        "the Deployment's selector does not match its pod template's labels, so it "
                        "would never count the pods it creates",
                        "give spec.template.metadata.labels every label spec.selector asks for",
                    )
                continue
            taken = {p.meta.name for p in pods + out if p.meta.namespace == d.meta.namespace}
            out += pods_for_deployment(d, pods + out, self.rng, taken)
        return out

    # 3. scheduling -------------------------------------------------------------

    def schedule(self, pods: list[Pod], nodes: list[Node]) -> list[Pod]:
        by_name = {n.meta.name: n for n in nodes}
        workers = [n for n in nodes if not is_control_plane(n)]
        candidates = sorted((workers or nodes), key=lambda n: n.meta.name)
        load = Counter(p.node_name for p in pods if p.node_name)
        out = []
        for p in pods:
            if p.node_name:
                if p.node_name not in by_name and self.admit:
                    listing = ", ".join(sorted(by_name)) or "none"
                    self.problem(
                        p,
                        "spec.nodeName",
                        f'node "{p.node_name}" does not exist (the nodes: {listing})',
                        "use one of the nodes, or leave nodeName out to have the pod scheduled",
                    )
                out.append(p)
                continue
            if not candidates:
                # Not an error on a real cluster either: the pod waits, Pending,
                # and its Services have no endpoints.
                out.append(p if p.phase else replace(
                    p, phase="Pending", conditions=(PodCondition("PodScheduled", "False"),)))
                continue
            node = min(candidates, key=lambda n: load[n.meta.name])
            load[node.meta.name] += 1
            out.append(replace(p, node_name=node.meta.name))
        return out

    # 4. pod IPs and status -----------------------------------------------------

    def pod_addresses(self, pods: list[Pod], nodes: list[Node],
                      last_pod_ips: Mapping[str, str]) -> tuple[list[Pod], dict[str, str]]:
        by_name = {n.meta.name: n for n in nodes}
        allocators = {
            n.meta.name: ipam.SequentialIPAllocator(n.pod_cidr, last=last_pod_ips.get(n.meta.name, ""))
            for n in nodes if n.pod_cidr
        }
        owner: dict[str, Pod] = {}
        for p in pods:
            if not p.pod_ip or p.host_network:
                continue
            alloc = allocators.get(p.node_name)
            if self.admit:
                if ipam.parse_ip(p.pod_ip) is None:
                    self.problem(p, "status.podIP", f'"{p.pod_ip}" is not an IP address',
                                 "leave status.podIP out to have one allocated")
                    continue
                if alloc is not None and not alloc.contains(p.pod_ip):
                    self.problem(
                        p,
                        "status.podIP",
                        f"{p.pod_ip} is not in the pod CIDR {alloc.net} of node {p.node_name}",
                        "leave status.podIP out to have one allocated, or put the pod on the "
                        "node whose pod CIDR holds this address",
                    )
                    continue
                if p.pod_ip in owner:
                    self.problem(p, "status.podIP",
                                 f"{p.pod_ip} is already the IP of {ref(owner[p.pod_ip])}",
                                 "leave status.podIP out to have one allocated")
                    continue
            owner.setdefault(p.pod_ip, p)
            if alloc is not None and alloc.contains(p.pod_ip):
                alloc.reserve(p.pod_ip)
        out = []
        for p in pods:
            node = by_name.get(p.node_name)
            pod_ip = p.pod_ip
            if not pod_ip and node is not None:
                if p.host_network:
                    pod_ip = internal_ip(node)
                elif p.node_name in allocators:
                    alloc = allocators[p.node_name]
                    pod_ip = alloc.allocate() or ""
                    if not pod_ip:
                        self.problem(
                            p,
                            "status.podIP",
                            f"the pod CIDR {alloc.net} of node {p.node_name} is full "
                            f"({alloc.capacity()} pod IPs, all in use)",
                            "use a smaller node_cidr_mask_size in ClusterSettings, more nodes, "
                            "or fewer pods",
                        )
            out.append(_with_status(p, pod_ip, internal_ip(node) if node else ""))
        return out, {name: a.last for name, a in allocators.items() if a.last}

    # 5. ClusterIPs -------------------------------------------------------------

    def cluster_ips(self, services: list[Service]) -> list[Service]:
        cidr = self.settings.service_cidr
        alloc = ipam.ServiceIPAllocator(cidr)
        owner: dict[str, Service] = {}
        for svc in services:
            ip = svc.cluster_ip or (svc.cluster_ips[0] if svc.cluster_ips else "")
            if svc.type == "ExternalName" or not ip or ip == "None":
                continue
            fix = f"choose an address in {cidr}, or leave clusterIP out to have one allocated"
            if ipam.parse_ip(ip) is None:
                if self.admit:
                    self.problem(svc, "spec.clusterIP", f'"{ip}" is not an IP address',
                                 'write an address such as 10.96.0.20, "None" for a headless '
                                 "Service, or leave clusterIP out")
                continue
            if alloc.slot_of(ip) is None:
                if self.admit:
                    self.problem(svc, "spec.clusterIP",
                                 f"{ip} is not in the cluster's service CIDR {cidr} "
                                 "(or is its network or broadcast address)", fix)
                continue
            if ip in owner:
                if self.admit:
                    self.problem(svc, "spec.clusterIP", f"{ip} is already allocated to {ref(owner[ip])}",
                                 "choose another address, or leave clusterIP out to have one allocated")
                continue
            owner[ip] = svc
            alloc.reserve(ip)

        def conventional(svc: Service) -> Optional[str]:
            key = (svc.meta.namespace, svc.meta.name)
            slot = {("default", "kubernetes"): 0, ("kube-system", "kube-dns"): 9}.get(key)
            if slot is None or slot >= alloc.size:
                return None
            ip = alloc.ip_of(slot)
            return None if alloc.is_taken(ip) else ip

        chosen: dict[int, str] = {}
        for i, svc in enumerate(services):
            if _needs_cluster_ip(svc):
                ip = conventional(svc)
                if ip:
                    alloc.reserve(ip)
                    chosen[i] = ip
        out = []
        for i, svc in enumerate(services):
            ip = chosen.get(i, "")
            if _needs_cluster_ip(svc) and not ip:
                ip = alloc.allocate(self.rng) or ""
                if not ip:
                    self.problem(
                        svc,
                        "spec.clusterIP",
                        f"no free ClusterIP left in the service CIDR {cidr} "
                        f"(all {alloc.size} addresses are allocated)",
                        "use a larger service_cidr in ClusterSettings, or fewer Services",
                    )
            out.append(_with_service_defaults(svc, ip))
        return out

    # 6. NodePorts --------------------------------------------------------------

    def node_ports(self, services: list[Service]) -> list[Service]:
        lo, hi = self.settings.node_port_range
        alloc = ipam.NodePortAllocator((lo, hi))
        owner: dict[int, tuple[Service, str]] = {}
        range_fix = f"choose a port in {lo}-{hi}, or leave it out to have one allocated"

        def admit_port(svc: Service, fld: str, port: int, same_service_ok: bool = False) -> None:
            if not alloc.contains(port):
                if self.admit:
                    self.problem(svc, fld, f"{port} is outside the cluster's NodePort range {lo}-{hi}",
                                 range_fix)
                return
            if port in owner and not (same_service_ok and owner[port][0] is svc):
                if self.admit:
                    other, other_fld = owner[port]
                    self.problem(svc, fld, f"{port} is already allocated to {ref(other)} ({other_fld})",
                                 f"choose another port in {lo}-{hi}, or leave it out to have one allocated")
                return
            owner.setdefault(port, (svc, fld))
            alloc.reserve(port)

        for svc in services:
            seen: set[tuple[int, str]] = set()
            for j, sp in enumerate(svc.ports):
                if not sp.node_port:
                    continue
                fld = f"spec.ports[{j}].nodePort"
                if not _has_node_ports(svc):
                    if self.admit:
                        self.problem(
                            svc, fld,
                            f"a nodePort is only allowed for Services of type NodePort or "
                            f"LoadBalancer, not {svc.type}",
                            "remove nodePort, or set type: NodePort",
                        )
                    continue
                if (sp.node_port, sp.protocol) in seen:
                    if self.admit:
                        self.problem(svc, fld, f"{sp.node_port}/{sp.protocol} is used twice in this Service",
                                     "give each port its own nodePort")
                    continue
                seen.add((sp.node_port, sp.protocol))
                admit_port(svc, fld, sp.node_port, same_service_ok=True)
            if svc.health_check_node_port:
                if not _needs_health_check(svc):
                    if self.admit:
                        self.problem(
                            svc, "spec.healthCheckNodePort",
                            "healthCheckNodePort may only be set when type is LoadBalancer and "
                            "externalTrafficPolicy is Local",
                            "remove healthCheckNodePort",
                        )
                else:
                    admit_port(svc, "spec.healthCheckNodePort", svc.health_check_node_port)

        out = []
        for svc in services:
            ports = list(svc.ports)
            if _has_node_ports(svc):
                by_number = {sp.port: sp.node_port for sp in ports if sp.node_port}
                for j, sp in enumerate(ports):
                    if sp.node_port:
                        continue
                    port = by_number.get(sp.port) or alloc.allocate(self.rng)
                    if port is None:
                        self._ports_full(svc, f"spec.ports[{j}].nodePort", alloc)
                        continue
                    by_number[sp.port] = port
                    ports[j] = replace(sp, node_port=port)
            hc = svc.health_check_node_port
            if _needs_health_check(svc) and not hc:
                hc = alloc.allocate(self.rng) or 0
                if not hc:
                    self._ports_full(svc, "spec.healthCheckNodePort", alloc)
            out.append(replace(svc, ports=tuple(ports), health_check_node_port=hc))
        return out

    def _ports_full(self, svc: Service, fld: str, alloc: ipam.NodePortAllocator) -> None:
        lo, hi = self.settings.node_port_range
        self.problem(svc, fld, f"no free NodePort left in the range {lo}-{hi} (all {hi - lo + 1} are allocated)",
                     "use a larger node_port_range in ClusterSettings, or fewer NodePort Services")


def _needs_cluster_ip(svc: Service) -> bool:
    return svc.type != "ExternalName" and not svc.cluster_ip and not svc.cluster_ips


def _has_node_ports(svc: Service) -> bool:
    return svc.type == "NodePort" or (
        svc.type == "LoadBalancer" and svc.allocate_load_balancer_node_ports
    )


def _needs_health_check(svc: Service) -> bool:
    """Only LoadBalancer Services with externalTrafficPolicy Local get one."""
    return svc.type == "LoadBalancer" and svc.external_traffic_policy == "Local"


def _with_service_defaults(svc: Service, allocated_ip: str) -> Service:
    """ClusterIP(s), ipFamilies and externalTrafficPolicy as the API server sets them."""
    if svc.type == "ExternalName":
        return svc
    ip = svc.cluster_ip or (svc.cluster_ips[0] if svc.cluster_ips else "") or allocated_ip
    changes: dict = {"cluster_ip": ip, "cluster_ips": svc.cluster_ips or ((ip,) if ip else ())}
    if not svc.ip_families:
        fam = ipam.parse_ip(ip) if ip and ip != "None" else None
        changes["ip_families"] = ("IPv6",) if fam is not None and fam.version == 6 else ("IPv4",)
    if not svc.ip_family_policy:
        changes["ip_family_policy"] = "SingleStack"
    if svc.type in ("NodePort", "LoadBalancer") and not svc.external_traffic_policy:
        changes["external_traffic_policy"] = "Cluster"
    return replace(svc, **changes)


def _with_status(p: Pod, pod_ip: str, host_ip: str) -> Pod:
    """Pod IP(s), hostIP, and Running + Ready for a pod that had no status."""
    changes: dict = {"pod_ip": pod_ip}
    if pod_ip and not p.pod_ips:
        changes["pod_ips"] = (pod_ip,)
    if host_ip and not p.host_ip:
        changes["host_ip"] = host_ip
    if not p.phase and p.node_name and pod_ip:
        changes["phase"] = "Running"
        if not p.conditions:
            changes["conditions"] = tuple(PodCondition(t, "True") for t in READY_CONDITIONS)
    return replace(p, **changes)


def reconcile(
    objects: Sequence[KubeObject],
    settings: ClusterSettings,
    rng: random.Random,
    node_names: Sequence[str] = (),
    admit: bool = True,
    last_pod_ips: Mapping[str, str] = {},
) -> ClusterState:
    """Settle the cluster: what every controller would have written.

    last_pod_ips carries host-local IPAM's memory between calls (node name ->
    the last pod IP it handed out; ClusterState.last_pod_ips of the previous
    call): new pods get the addresses after it, wrapping around.

    admit=True checks given ClusterIPs, NodePorts and pod IPs as the API
    server of this cluster would, and raises one ManifestError listing every
    problem. admit=False keeps given values unchecked (objects taken from
    another cluster). Running out of addresses or ports is an error either way.
    """
    run = _Run(settings, rng, admit)
    by_kind: dict[type, list] = {t: [] for t in _KINDS}
    for obj in objects:
        kind = type(obj)
        if kind not in by_kind:
            raise LabkitError(f"reconcile() cannot place a {kind.__name__}: expected one of "
                              + ", ".join(t.__name__ for t in _KINDS))
        by_kind[kind].append(obj)
    namespaced = [o for o in objects if not isinstance(o, (Namespace, Node))]
    namespaces = run.namespaces(by_kind[Namespace], namespaced)
    nodes = run.nodes(by_kind[Node], node_names)
    given_pods = [
        p if p.meta.uid else replace(p, meta=replace(p.meta, uid=random_uid(rng)))
        for p in by_kind[Pod]
    ]
    pods = given_pods + run.deployment_pods(by_kind[Deployment], given_pods)
    pods = run.schedule(pods, nodes)
    pods, last_ips = run.pod_addresses(pods, nodes, last_pod_ips)
    services = run.cluster_ips(by_kind[Service])
    services = run.node_ports(services)
    if run.problems:
        raise ManifestError(run.problems)
    slices = reconcile_endpoint_slices(
        services, pods, {n.meta.name: n for n in nodes}, by_kind[EndpointSlice], rng, admit
    )
    return ClusterState(
        namespaces=namespaces,
        nodes=tuple(nodes),
        pods=tuple(pods),
        deployments=tuple(by_kind[Deployment]),
        services=tuple(services),
        endpoint_slices=slices,
        network_policies=tuple(by_kind[NetworkPolicy]),
        ingresses=tuple(by_kind[Ingress]),
        gateways=tuple(by_kind[Gateway]),
        http_routes=tuple(by_kind[HTTPRoute]),
        settings=settings,
        last_pod_ips=last_ips,
    )


_KINDS: tuple[type, ...] = (
    Namespace, Node, Pod, Deployment, Service, EndpointSlice, NetworkPolicy, Ingress,
    Gateway, HTTPRoute,
)
