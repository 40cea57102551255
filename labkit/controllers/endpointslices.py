"""The EndpointSlice controller: Service selector + Pods -> EndpointSlices.

Follows staging/src/k8s.io/endpointslice (reconciler.go, utils.go) and
pkg/controller/endpointslice (syncService):

- ExternalName Services and Services without a selector get nothing: their
  slices, if any, are written by hand.
- Pods of the Service's namespace matching the selector, not terminal
  (Succeeded/Failed), with an IP, become endpoints: ready = serving and not
  terminating (or publishNotReadyAddresses), serving = the pod's Ready
  condition, terminating = deletionTimestamp set. hostNetwork pods are
  endpoints like any other, at their node's IP. A pod whose node does not
  exist is skipped unless publishNotReadyAddresses.
- Slice ports are the Service's ports with targetPort resolved per pod: a
  named targetPort is looked up in the pod's container ports with the same
  protocol; a port that does not resolve is left out of that pod's port
  list. Pods are grouped by their resolved port list: each group gets its own
  slices (at most 100 endpoints each).
- A Service with no endpoints at all still gets one empty "placeholder"
  slice, as the real controller creates.

Where the real controller's order depends on Go map iteration (endpoints
within a slice, groups of slices) we use pod name order, so that output is
deterministic under a seed.
"""
from __future__ import annotations

import ipaddress
import random
from typing import Iterable, Mapping, Optional, Sequence

from labkit.controllers.deployments import generate_name
from labkit.model.objects import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Node,
    ObjectMeta,
    ObjectReference,
    Pod,
    Service,
    ServicePort,
)
from labkit.model.selectors import map_selector_matches

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)


def find_port(pod: Pod, sp: ServicePort) -> Optional[int]:
    """FindPort: the pod's port for a Service port, or None if it has none.

    A number is used as is; a name must match a container port with the same
    protocol ("http"/TCP does not match a UDP port called "http").
    """
    tp = sp.target_port
    if isinstance(tp, int):
        return tp or sp.port
    for c in pod.containers:
        for cp in c.ports:
            if cp.name == tp and cp.protocol == sp.protocol:
                return cp.container_port
    return None


def endpoint_ports_for(service: Service, pod: Pod) -> tuple[EndpointPort, ...]:
    """getEndpointPorts: the Service's ports as this pod serves them."""
    out = []
    for sp in service.ports:
        port = find_port(pod, sp)
        if port is None:
            continue
        out.append(EndpointPort(port=port, name=sp.name, protocol=sp.protocol, app_protocol=sp.app_protocol))
    return tuple(out)


def _ip_family(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def address_types_for(service: Service) -> tuple[str, ...]:
    """getAddressTypesForService: from ipFamilies, else the ClusterIP, else both."""
    fams = tuple(f for f in ("IPv4", "IPv6") if f in service.ip_families)
    if fams:
        return fams
    if service.cluster_ip and service.cluster_ip != "None":
        return (_ip_family(service.cluster_ip),)
    return ("IPv4", "IPv6")


def pod_ips(pod: Pod) -> tuple[str, ...]:
    """status.podIPs, falling back to status.podIP."""
    return pod.pod_ips or ((pod.pod_ip,) if pod.pod_ip else ())


def should_pod_be_in_endpoints(pod: Pod) -> bool:
    """ShouldPodBeInEndpoints(pod, includeTerminating=true)."""
    if pod.phase in ("Succeeded", "Failed"):
        return False
    return bool(pod_ips(pod))


def pod_to_endpoint(pod: Pod, node: Optional[Node], service: Service, address_type: str) -> Endpoint:
    """podToEndpoint: one pod's addresses of one family, with its conditions."""
    serving = pod.ready
    terminating = pod.terminating
    ready = service.publish_not_ready_addresses or (serving and not terminating)
    addresses = tuple(
        str(ipaddress.ip_address(ip)) for ip in pod_ips(pod) if _ip_family(ip) == address_type
    )
    zone = node.meta.labels.get(ZONE_LABEL, "") if node is not None else ""
    set_hostname = (
        bool(pod.hostname)
        and pod.subdomain == service.meta.name
        and pod.meta.namespace == service.meta.namespace
    )
    return Endpoint(
        addresses=addresses,
        conditions=EndpointConditions(ready=ready, serving=serving, terminating=terminating),
        hostname=pod.hostname if set_hostname else "",
        node_name=pod.node_name,
        zone=zone,
        target_ref=ObjectReference(
            kind="Pod", namespace=pod.meta.namespace, name=pod.meta.name, uid=pod.meta.uid
        ),
    )


def slice_labels(service: Service) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels plus the reserved ones."""
    labels = {k: v for k, v in service.meta.labels.items() if k not in RESERVED_LABELS}
    if service.cluster_ip in ("", "None"):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service.meta.name
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def slice_name_prefix(service_name: str) -> str:
    """getEndpointSlicePrefix: "<service>-" (the dash dropped if too long)."""
    prefix = f"{service_name}-"
    return prefix if len(prefix) <= 253 else service_name


def is_managed(eps: EndpointSlice) -> bool:
    """True for slices the EndpointSlice controller owns (by its label)."""
    return eps.meta.labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def is_controller_managed_service(service: Service) -> bool:
    """Services the controller writes slices for: a selector, not ExternalName."""
    return service.type != "ExternalName" and bool(service.selector)


def _chunks(items: Sequence[Endpoint], size: int) -> Iterable[tuple[Endpoint, ...]]:
    for i in range(0, len(items), size):
        yield tuple(items[i : i + size])


def compute_endpoint_slices(
    service: Service,
    pods: Iterable[Pod],
    nodes: Mapping[str, Node],
    rng: random.Random,
    taken_names: Iterable[str] = (),
    reuse_names: Mapping[str, Sequence[str]] | None = None,
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> tuple[EndpointSlice, ...]:
    """The slices the controller wants for one Service.

    `taken_names`: slice names already used in the namespace. `reuse_names`:
    per address type, names of managed slices being replaced; the controller
    updates those in place rather than creating new ones, so they keep their
    names (finalize turns creates into updates).
    """
    if not is_controller_managed_service(service):
        return ()
    taken = set(taken_names)
    reuse = {k: list(v) for k, v in (reuse_names or {}).items()}
    ns = service.meta.namespace
    members = sorted(
        (
            p
            for p in pods
            if p.meta.namespace == ns
            and map_selector_matches(service.selector, p.meta.labels)
            and should_pod_be_in_endpoints(p)
        ),
        key=lambda p: p.meta.name,
    )
    out: list[EndpointSlice] = []

    def new_slice(address_type: str, ports: tuple[EndpointPort, ...], eps: tuple[Endpoint, ...]) -> EndpointSlice:
        names = reuse.get(address_type) or []
        name = names.pop(0) if names else generate_name(slice_name_prefix(service.meta.name), rng, taken)
        taken.add(name)
        return EndpointSlice(
            meta=ObjectMeta(name=name, namespace=ns, labels=slice_labels(service)),
            address_type=address_type,
            endpoints=eps,
            ports=ports,
        )

    for address_type in address_types_for(service):
        groups: dict[tuple[EndpointPort, ...], list[Endpoint]] = {}
        for pod in members:
            ports = endpoint_ports_for(service, pod)
            group = groups.setdefault(ports, [])
            node = nodes.get(pod.node_name)
            if node is None and not service.publish_not_ready_addresses:
                continue
            ep = pod_to_endpoint(pod, node, service, address_type)
            if ep.addresses:
                group.append(ep)
        made = 0
        for ports, eps in groups.items():
            for chunk in _chunks(eps, max_endpoints_per_slice):
                out.append(new_slice(address_type, ports, chunk))
                made += 1
        if made == 0:
            out.append(new_slice(address_type, (), ()))
    return tuple(out)


def reconcile_endpoint_slices(
    services: Sequence[Service],
    pods: Sequence[Pod],
    nodes: Mapping[str, Node],
    given: Sequence[EndpointSlice],
    rng: random.Random,
    admit: bool = True,
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> tuple[EndpointSlice, ...]:
    """All EndpointSlices of the cluster after the controller has run.

    Hand-written slices (not managed by the controller) are always kept.
    admit=True: the controller's own slices for a Service it manages are
    replaced by freshly computed ones (keeping their names).
    admit=False (objects read from another cluster): every given slice is
    kept as is, and only Services without any slice get computed ones.
    Kept slices come first, in the order given, then the computed ones in
    Service order.
    """
    managed_keys = {
        (s.meta.namespace, s.meta.name) for s in services if is_controller_managed_service(s)
    }

    def key(eps: EndpointSlice) -> tuple[str, str]:
        return (eps.meta.namespace, eps.service_name)

    if admit:
        replaced = [e for e in given if is_managed(e) and key(e) in managed_keys]
        kept = [e for e in given if not (is_managed(e) and key(e) in managed_keys)]
    else:
        replaced = []
        kept = list(given)
    has_slices = {key(e) for e in kept}
    taken: dict[str, set[str]] = {}
    for e in kept:
        taken.setdefault(e.meta.namespace, set()).add(e.meta.name)

    computed: list[EndpointSlice] = []
    for svc in services:
        k = (svc.meta.namespace, svc.meta.name)
        if k not in managed_keys or k in has_slices:
            continue
        reuse: dict[str, list[str]] = {}
        for e in replaced:
            if key(e) == k:
                reuse.setdefault(e.address_type, []).append(e.meta.name)
        ns_taken = taken.setdefault(svc.meta.namespace, set())
        slices = compute_endpoint_slices(
            svc, pods, nodes, rng, ns_taken, reuse, max_endpoints_per_slice
        )
        ns_taken.update(e.meta.name for e in slices)
        computed.extend(slices)
    return tuple(kept) + tuple(computed)
