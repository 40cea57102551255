"""kube-proxy's view of the cluster: service ports, endpoints, and which to use.

A port-by-port reading of kube-proxy's shared code:
  - pkg/proxy/servicechangetracker.go + serviceport.go: Service -> service ports
    (headless and ExternalName skipped, one IP family, sloppy IP parsing);
  - pkg/proxy/endpointslicecache.go + endpoint.go: EndpointSlices -> endpoints per
    service port (matched by port name *and* protocol, merged across slices,
    deduplicated, sorted by "ip:port" text);
  - pkg/proxy/topology.go CategorizeEndpoints: which endpoints Cluster and Local
    traffic policy may use, with the serving-terminating fallback and topology hints.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from hashlib import sha256

from labkit.controllers.kube_proxy.naming import SEP_PREFIX, _b32_16, service_chain_names
from labkit.controllers.kube_proxy.netaddr import (
    IPNetwork,
    canonical_ip,
    parse_cidr_sloppy,
    parse_ip_sloppy,
)
from labkit.model.objects import SERVICE_NAME_LABEL, EndpointSlice, Service

ZONE_LABEL = "topology.kubernetes.io/zone"
DEFAULT_STICKY_SECONDS = 10800


class ServicePortInfo:
    """One (service, port) as kube-proxy's servicePortInfo, names precomputed."""

    __slots__ = (
        "namespace", "name", "port_name", "name_string", "protocol", "proto", "cluster_ip",
        "port", "node_port", "external_ips", "lb_vips", "lb_source_ranges",
        "health_check_node_port", "session_affinity", "sticky_seconds",
        "external_policy_local", "internal_policy_local",
        "svc_chain", "svl_chain", "fw_chain", "ext_chain", "key",
    )

    def externally_accessible(self) -> bool:
        return self.node_port != 0 or bool(self.lb_vips) or bool(self.external_ips)

    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_policy_local or self.externally_accessible()

    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.external_policy_local and self.externally_accessible())


class EndpointInfo:
    """One endpoint of one service port (BaseEndpointInfo + its KUBE-SEP chain)."""

    __slots__ = ("ip", "port", "endpoint", "is_local", "ready", "serving", "terminating",
                 "zone_hints", "node_hints", "chain")

    def __init__(self, ip: str, port: int, is_local: bool, ready: bool, serving: bool,
                 terminating: bool, zone_hints: tuple, node_hints: tuple):
        self.ip = ip
        self.port = port
        self.endpoint = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        self.is_local = is_local
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.zone_hints = zone_hints
        self.node_hints = node_hints
        self.chain = ""


def cluster_ip_for_family(svc: Service, family: str) -> str:
    """proxyutil.GetClusterIPByFamily."""
    want_v6 = family == "IPv6"
    if not svc.cluster_ips:
        ip = parse_ip_sloppy(svc.cluster_ip) if svc.cluster_ip else None
        if ip is not None and (ip.version == 6) == want_v6:
            return svc.cluster_ip
        return ""
    for text in svc.cluster_ips:
        ip = parse_ip_sloppy(text)
        if ip is not None and (ip.version == 6) == want_v6:
            return text
    return ""


def _ips_of_family(texts: Iterable[str], family: str) -> tuple[str, ...]:
    want = 6 if family == "IPv6" else 4
    out = []
    for t in texts:
        ip = parse_ip_sloppy(t)
        if ip is not None and ip.version == want:
            out.append(str(ip))
    return tuple(out)


def _cidrs_of_family(texts: Iterable[str], family: str) -> tuple[IPNetwork, ...]:
    want = 6 if family == "IPv6" else 4
    out = []
    for t in texts:
        net = parse_cidr_sloppy(t.strip())
        if net is not None and net.version == want:
            out.append(net)
    return tuple(out)


def build_service_ports(services: Iterable[Service], family: str) -> list[ServicePortInfo]:
    """Every proxied service port of one IP family, in a stable order."""
    result: dict[tuple[str, str, str, str], ServicePortInfo] = {}
    for svc in services:
        if svc.type == "ExternalName":
            continue
        if svc.cluster_ip in ("", "None"):
            continue
        cluster_ip_text = cluster_ip_for_family(svc, family)
        if not cluster_ip_text:
            continue
        cluster_ip = str(parse_ip_sloppy(cluster_ip_text))
        ns, name = svc.meta.namespace, svc.meta.name
        external_policy_local = (svc.type in ("LoadBalancer", "NodePort")
                                 and svc.external_traffic_policy == "Local")
        internal_policy_local = svc.internal_traffic_policy == "Local"
        sticky = 0
        if svc.session_affinity == "ClientIP":
            sticky = svc.session_affinity_timeout or DEFAULT_STICKY_SECONDS
        external_ips = _ips_of_family(svc.external_ips, family)
        vips = _ips_of_family(
            (ing.ip for ing in svc.load_balancer_ingress
             if ing.ip and ing.ip_mode in ("", "VIP")), family)
        ranges = _cidrs_of_family(svc.load_balancer_source_ranges, family)
        needs_health_check = svc.type == "LoadBalancer" and external_policy_local
        for sp in svc.ports:
            info = ServicePortInfo()
            info.namespace, info.name, info.port_name = ns, name, sp.name
            info.name_string = f"{ns}/{name}:{sp.name}" if sp.name else f"{ns}/{name}"
            info.protocol = sp.protocol
            info.proto = sp.protocol.lower()
            info.cluster_ip = cluster_ip
            info.port = sp.port
            info.node_port = sp.node_port
            info.external_ips = external_ips
            info.lb_vips = vips
            info.lb_source_ranges = ranges
            info.health_check_node_port = svc.health_check_node_port if needs_health_check else 0
            info.session_affinity = svc.session_affinity
            info.sticky_seconds = sticky
            info.external_policy_local = external_policy_local
            info.internal_policy_local = internal_policy_local
            (info.svc_chain, info.svl_chain, info.fw_chain,
             info.ext_chain) = service_chain_names(info.name_string, info.proto)
            info.key = (ns, name, sp.name, sp.protocol)
            result.setdefault(info.key, info)
    return [result[k] for k in sorted(result)]


def build_endpoints_map(
    slices: Iterable[EndpointSlice], family: str, node_name: str,
) -> dict[tuple[str, str, str, str], list[EndpointInfo]]:
    """Endpoints per service port key (namespace, service, port name, protocol).

    Slices of the other address family (or FQDN) and slices without a
    kubernetes.io/service-name label are ignored, as kube-proxy ignores them.
    """
    sets: dict[tuple[str, str, str, str], dict[str, EndpointInfo]] = {}
    want = 6 if family == "IPv6" else 4
    for es in slices:
        if es.address_type != family:
            continue
        svc_name = es.meta.labels.get(SERVICE_NAME_LABEL, "")
        if not svc_name or not es.meta.namespace:
            continue
        ns = es.meta.namespace
        # Parse each endpoint once per slice, not once per port.
        parsed = []
        for ep in es.endpoints:
            if not ep.addresses:
                continue
            canon = canonical_ip(ep.addresses[0])
            if canon is None or canon[1] != want:
                continue
            c = ep.conditions
            parsed.append((canon[0], bool(node_name) and ep.node_name == node_name,
                           c.ready is None or c.ready, c.serving is None or c.serving,
                           c.terminating is True,
                           ep.hints_for_zones, ep.hints_for_nodes))
        for port in es.ports:
            if not port.port:
                continue
            key = (ns, svc_name, port.name, port.protocol)
            prefix = (f"{ns}/{svc_name}:{port.name}" if port.name else f"{ns}/{svc_name}") \
                + port.protocol.lower()
            eps = sets.setdefault(key, {})
            for ip, is_local, ready, serving, terminating, zones, nodes in parsed:
                info = EndpointInfo(ip, port.port, is_local, ready, serving, terminating,
                                    zones, nodes)
                if not terminating or info.endpoint not in eps:
                    info.chain = SEP_PREFIX + _b32_16(sha256(
                        (prefix + info.endpoint).encode()).digest())
                    eps[info.endpoint] = info
    return {k: [v[e] for e in sorted(v)] for k, v in sets.items() if v}


def _topology_mode(endpoints: Sequence[EndpointInfo], node_name: str, zone: str) -> str:
    has_for_node = False
    all_node_hints = True
    has_for_zone = False
    all_zone_hints = True
    for ep in endpoints:
        if not ep.ready:
            continue
        if not ep.node_hints:
            all_node_hints = False
        elif node_name in ep.node_hints:
            has_for_node = True
        if not ep.zone_hints:
            all_zone_hints = False
        elif zone in ep.zone_hints:
            has_for_zone = True
    if all_node_hints and has_for_node:
        return "PreferSameNode"
    if all_zone_hints and has_for_zone:
        return "PreferSameZone"
    return ""


def categorize_endpoints(
    endpoints: Sequence[EndpointInfo], svc: ServicePortInfo, node_name: str,
    node_labels: Mapping[str, str],
) -> tuple[list[EndpointInfo], list[EndpointInfo], list[EndpointInfo], bool]:
    """CategorizeEndpoints: (cluster, local, all reachable, has any endpoints)."""
    cluster: list[EndpointInfo] = []
    local: list[EndpointInfo] = []
    has_any = False
    mode = ""
    use_serving_terminating = False
    uses_cluster = svc.uses_cluster_endpoints()
    if uses_cluster:
        zone = node_labels.get(ZONE_LABEL, "")
        mode = _topology_mode(endpoints, node_name, zone)
        if mode == "":
            cluster = [ep for ep in endpoints if ep.ready]
        elif mode == "PreferSameNode":
            cluster = [ep for ep in endpoints if ep.ready and node_name in ep.node_hints]
        else:
            cluster = [ep for ep in endpoints if ep.ready and zone in ep.zone_hints]
        if not cluster:
            cluster = [ep for ep in endpoints if ep.serving and ep.terminating]
        if cluster:
            has_any = True
    if not svc.uses_local_endpoints():
        return cluster, local, cluster, has_any

    has_local_ready = has_local_serving_terminating = False
    for ep in endpoints:
        if ep.ready:
            has_any = True
            if ep.is_local:
                has_local_ready = True
        elif ep.serving and ep.terminating:
            has_any = True
            if ep.is_local:
                has_local_serving_terminating = True
    if has_local_ready:
        local = [ep for ep in endpoints if ep.is_local and ep.ready]
    elif has_local_serving_terminating:
        use_serving_terminating = True
        local = [ep for ep in endpoints if ep.is_local and ep.serving and ep.terminating]
    if not uses_cluster:
        return cluster, local, local, has_any
    if mode == "" and not use_serving_terminating:
        return cluster, local, cluster, has_any
    merged = {ep.endpoint: ep for ep in cluster}
    merged.update((ep.endpoint, ep) for ep in local)
    return cluster, local, [merged[k] for k in sorted(merged)], has_any


def first_ip_of_family(ips: Sequence[str], family: str) -> Optional[str]:
    want = 6 if family == "IPv6" else 4
    for t in ips:
        ip = parse_ip_sloppy(t)
        if ip is not None and ip.version == want:
            return str(ip)
    return None
