"""labkit's model objects as the API server prints them (`kubectl get ... -o json`) (pure).

The fake kind cluster (fake_cluster.py) answers `kubectl get` with these, and
the kind backend reads them back with labkit's own loader, so a round trip
through this module must give the same objects: tests/test_kind_fake.py
checks that for every kind the course uses. Field names and nesting are the
v1 / apps/v1 / discovery.k8s.io/v1 API's; server-only bookkeeping
(resourceVersion, managedFields, timestamps) is left out because nothing
labkit reads depends on it.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, Optional

from labkit.model.objects import (
    Container,
    Deployment,
    EndpointSlice,
    LabelSelector,
    Node,
    ObjectMeta,
    Pod,
    Service,
)


def _meta(m: ObjectMeta) -> dict:
    out: dict = {"name": m.name}
    if m.namespace:
        out["namespace"] = m.namespace
    if m.labels:
        out["labels"] = dict(m.labels)
    if m.annotations:
        out["annotations"] = dict(m.annotations)
    if m.uid:
        out["uid"] = m.uid
    return out


def _selector(s: LabelSelector) -> dict:
    out: dict = {}
    if s.match_labels:
        out["matchLabels"] = dict(s.match_labels)
    if s.match_expressions:
        out["matchExpressions"] = [{"key": r.key, "operator": r.operator, **({"values": list(r.values)}
                                                                              if r.values else {})}
                                   for r in s.match_expressions]
    return out


def _container(c: Container) -> dict:
    out: dict = {"name": c.name, "image": c.image}
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.ports:
        out["ports"] = [{"containerPort": p.container_port, **({"name": p.name} if p.name else {}),
                         "protocol": p.protocol, **({"hostPort": p.host_port} if p.host_port else {})}
                        for p in c.ports]
    return out


def api_pod(p: Pod) -> dict:
    spec: dict = {"containers": [_container(c) for c in p.containers], "nodeName": p.node_name}
    if p.host_network:
        spec["hostNetwork"] = True
    if p.hostname:
        spec["hostname"] = p.hostname
    if p.subdomain:
        spec["subdomain"] = p.subdomain
    status: dict = {"phase": p.phase or "Running",
                    "conditions": [{"type": c.type, "status": c.status} for c in p.conditions]}
    if p.host_ip:
        status["hostIP"] = p.host_ip
        status["hostIPs"] = [{"ip": p.host_ip}]
    if p.pod_ip:
        status["podIP"] = p.pod_ip
        status["podIPs"] = [{"ip": ip} for ip in (p.pod_ips or (p.pod_ip,))]
    meta = _meta(p.meta)
    if p.terminating:
        meta["deletionTimestamp"] = "2024-10-01T09:30:02Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def api_deployment(d: Deployment, ready: Optional[int] = None) -> dict:
    """A Deployment whose status says `ready` replicas are ready (default: all of them)."""
    ready = d.replicas if ready is None else ready
    template: dict = {"metadata": _meta(d.template.meta) if d.template.meta.name else
                      {"labels": dict(d.template.meta.labels)},
                      "spec": {"containers": [_container(c) for c in d.template.containers]}}
    if d.template.host_network:
        template["spec"]["hostNetwork"] = True
    meta = {**_meta(d.meta), "generation": 1}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": d.replicas, "selector": _selector(d.selector), "template": template},
            "status": {"observedGeneration": 1, "replicas": d.replicas, "updatedReplicas": d.replicas,
                       "readyReplicas": ready, "availableReplicas": ready}}


def api_service(s: Service) -> dict:
    ports = []
    for p in s.ports:
        port: dict = {"port": p.port, "protocol": p.protocol, "targetPort": p.target_port or p.port}
        if p.name:
            port["name"] = p.name
        if p.node_port:
            port["nodePort"] = p.node_port
        if p.app_protocol:
            port["appProtocol"] = p.app_protocol
        ports.append(port)
    spec: dict = {"type": s.type, "ports": ports, "sessionAffinity": s.session_affinity,
                  "internalTrafficPolicy": s.internal_traffic_policy}
    if s.type == "ExternalName":
        spec["externalName"] = s.external_name
    if s.cluster_ip:
        spec["clusterIP"] = s.cluster_ip
        spec["clusterIPs"] = list(s.cluster_ips or (s.cluster_ip,))
    if s.selector is not None:
        spec["selector"] = dict(s.selector)
    optional = {"externalIPs": list(s.external_ips), "loadBalancerIP": s.load_balancer_ip,
                "loadBalancerSourceRanges": list(s.load_balancer_source_ranges),
                "loadBalancerClass": s.load_balancer_class, "externalTrafficPolicy": s.external_traffic_policy,
                "healthCheckNodePort": s.health_check_node_port, "ipFamilies": list(s.ip_families),
                "ipFamilyPolicy": s.ip_family_policy, "trafficDistribution": s.traffic_distribution}
    spec.update({k: v for k, v in optional.items() if v})
    if s.type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = s.allocate_load_balancer_node_ports
    if s.publish_not_ready_addresses:
        spec["publishNotReadyAddresses"] = True
    if s.session_affinity == "ClientIP":
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": s.session_affinity_timeout or 10800}}
    ingress = [{k: v for k, v in (("ip", i.ip), ("hostname", i.hostname), ("ipMode", i.ip_mode)) if v}
               for i in s.load_balancer_ingress]
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(s.meta), "spec": spec,
            "status": {"loadBalancer": {"ingress": ingress} if ingress else {}}}


def api_endpoint_slice(s: EndpointSlice) -> dict:
    endpoints = []
    for e in s.endpoints:
        conditions = {k: v for k, v in (("ready", e.conditions.ready), ("serving", e.conditions.serving),
                                        ("terminating", e.conditions.terminating)) if v is not None}
        ep: dict = {"addresses": list(e.addresses), "conditions": conditions}
        for key, value in (("hostname", e.hostname), ("nodeName", e.node_name), ("zone", e.zone)):
            if value:
                ep[key] = value
        if e.target_ref is not None:
            ep["targetRef"] = {k: v for k, v in (("kind", e.target_ref.kind), ("namespace", e.target_ref.namespace),
                                                 ("name", e.target_ref.name), ("uid", e.target_ref.uid)) if v}
        hints = {}
        if e.hints_for_zones:
            hints["forZones"] = [{"name": z} for z in e.hints_for_zones]
        if e.hints_for_nodes:
            hints["forNodes"] = [{"name": n} for n in e.hints_for_nodes]
        if hints:
            ep["hints"] = hints
        endpoints.append(ep)
    ports = [{k: v for k, v in (("name", p.name), ("port", p.port), ("protocol", p.protocol),
                                ("appProtocol", p.app_protocol)) if v is not None and v != ""} for p in s.ports]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": _meta(s.meta),
            "addressType": s.address_type, "endpoints": endpoints, "ports": ports}


def api_node(n: Node) -> dict:
    spec: dict = {}
    if n.pod_cidr:
        spec["podCIDR"] = n.pod_cidr
        spec["podCIDRs"] = list(n.pod_cidrs or (n.pod_cidr,))
    return {"apiVersion": "v1", "kind": "Node", "metadata": _meta(n.meta), "spec": spec,
            "status": {"addresses": [{"type": a.type, "address": a.address} for a in n.addresses],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


_RENDER = {"Pod": api_pod, "Deployment": api_deployment, "Service": api_service,
           "EndpointSlice": api_endpoint_slice, "Node": api_node}


def api_object(obj) -> dict:
    try:
        return _RENDER[obj.kind](obj)
    except KeyError:
        raise ValueError(f"api_json has no rendering of {obj.kind}") from None


def render_api_list(items: Iterable) -> str:
    """A v1 List of model objects (or ready-made dicts), as `kubectl get -o json` prints it."""
    out = [x if isinstance(x, Mapping) else api_object(x) for x in items]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": out, "metadata": {"resourceVersion": ""}},
                      indent=4) + "\n"
