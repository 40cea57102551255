"""kube-proxy's UDP conntrack cleanup after a sync (pure: states and entries in, entries out).

UDP has no connection to close: a client that keeps its source port keeps matching
its conntrack entry, and the entry keeps its DNAT to the endpoint it first reached,
even after that pod is gone. So after each sync kube-proxy deletes the UDP entries
that point at something that no longer serves. A reading of kubernetes/kubernetes:
  - pkg/proxy/endpointschangetracker.go EndpointsMap.Update: the cleanup runs only
    when a Service that had or has a UDP port changed its endpoints
    (ConntrackCleanupRequired);
  - pkg/proxy/conntrack/cleanup.go CleanStaleEntries: for every UDP service port with
    at least one serving endpoint, an entry whose original destination is the port's
    ClusterIP, a LoadBalancer VIP or an externalIP (with the service port), or whose
    original destination port is the port's NodePort (any address), is deleted when
    its reply source is not one of those serving endpoints' IPs. That covers both
    stale cases: a DNAT to a pod that is gone, and an entry for a Service that had no
    endpoint (its reply source is the Service's own address) once it has one.
A Service with no serving endpoint at all is left alone: its traffic is rejected anyway.

The backends apply the answer after each re-sync, on every node (kube-proxy runs on
every node and cleans its own table): the kernel lab with `conntrack -D`
(render_conntrack_delete), the simulation by deleting from its table.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from labkit.controllers.kube_proxy.proxymodel import build_endpoints_map, build_service_ports

FAMILY = "IPv4"  # the lab is single-stack IPv4, like kind's default


def _endpoint_view(slices) -> dict[tuple[str, str], dict]:
    """Per Service (namespace, name): what kube-proxy's EndpointsMap holds for its ports."""
    out: dict[tuple[str, str], dict] = {}
    for key, eps in build_endpoints_map(slices, FAMILY, "").items():
        ns, svc, port_name, protocol = key
        out.setdefault((ns, svc), {})[(port_name, protocol)] = tuple(
            (e.endpoint, e.ready, e.serving, e.terminating, e.zone_hints, e.node_hints) for e in eps)
    return out


def check_cleanup_required(before, after) -> bool:
    """ConntrackCleanupRequired: a Service that had, or has, a UDP port changed its endpoints.

    before/after: ClusterState (before None: the first sync, nothing tracked yet)."""
    old = _endpoint_view(before.endpoint_slices) if before is not None else {}
    new = _endpoint_view(after.endpoint_slices)
    for svc in set(old) | set(new):
        previous, current = old.get(svc, {}), new.get(svc, {})
        if previous == current:
            continue
        if any(protocol == "UDP" for _, protocol in list(previous) + list(current)):
            return True
    return False


def serving_endpoints(state) -> tuple[dict[tuple[str, int], frozenset], dict[int, frozenset]]:
    """CleanStaleEntries' two maps: ("service IP", port) -> serving endpoint IPs, and
    NodePort -> serving endpoint IPs, for the UDP service ports that have any."""
    endpoints = build_endpoints_map(state.endpoint_slices, FAMILY, "")
    by_ip_port: dict[tuple[str, int], frozenset] = {}
    by_node_port: dict[int, frozenset] = {}
    for sp in build_service_ports(state.services, FAMILY):
        if sp.protocol != "UDP":
            continue
        ips = frozenset(e.ip for e in endpoints.get(sp.key, ()) if e.serving)
        if not ips:
            continue
        for ip in (sp.cluster_ip, *sp.lb_vips, *sp.external_ips):
            by_ip_port[(ip, sp.port)] = ips
        if sp.node_port:
            by_node_port[sp.node_port] = ips
    return by_ip_port, by_node_port


def stale_udp_entries(before, after, entries: Sequence) -> list:
    """The entries (labkit.backends.base.ConntrackEntry) of one node's table that kube-proxy
    deletes after syncing from `before` to `after` (ClusterState; before None on the
    first sync), in the table's order; [] when no UDP Service changed its endpoints."""
    if not check_cleanup_required(before, after):
        return []
    by_ip_port, by_node_port = serving_endpoints(after)
    return [e for e in entries if is_stale(e, by_ip_port, by_node_port)]


def is_stale(entry, by_ip_port, by_node_port) -> bool:
    """One entry against CleanStaleEntries' two filters."""
    if entry.proto != "udp":
        return False
    reply_src = entry.reply.src
    ips: Optional[Iterable[str]] = by_ip_port.get((entry.orig.dst, entry.orig.dport))
    if ips is not None and reply_src not in ips:
        return True
    ips = by_node_port.get(entry.orig.dport)
    return ips is not None and reply_src not in ips


def render_conntrack_delete(entry) -> list[str]:
    """`conntrack -D` arguments that delete exactly this entry (its whole original tuple and
    the reply source kube-proxy's filter names)."""
    return ["conntrack", "-D", "-p", entry.proto,
            "--orig-src", entry.orig.src, "--orig-dst", entry.orig.dst,
            "--orig-port-src", str(entry.orig.sport), "--orig-port-dst", str(entry.orig.dport),
            "--reply-src", entry.reply.src]
