"""Kubernetes objects as plain, immutable data.

These are the objects after the loader has validated a manifest and applied
the API server's defaults (protocol TCP, targetPort = port, type ClusterIP,
...). Field names follow the Kubernetes API in snake_case; `None` means the
field was absent where absence differs from emptiness (NetworkPolicy cares).
Everything downstream (controllers, renderers, the simulation) reads these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

IntOrString = Union[int, str]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"


def _frozen_map(m: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return dict(m or {})


@dataclass(frozen=True)
class ObjectMeta:
    name: str
    namespace: str = ""  # "" for cluster-scoped kinds
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""


@dataclass(frozen=True)
class LabelSelectorRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector. An empty selector selects everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


# --- v1 Namespace, Node -----------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    meta: ObjectMeta
    kind = "Namespace"


@dataclass(frozen=True)
class NodeAddress:
    type: str  # InternalIP, ExternalIP, Hostname, ...
    address: str


@dataclass(frozen=True)
class Node:
    meta: ObjectMeta
    pod_cidr: str = ""
    pod_cidrs: tuple[str, ...] = ()
    addresses: tuple[NodeAddress, ...] = ()
    kind = "Node"


# --- v1 Pod, apps/v1 Deployment ---------------------------------------------


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str = ""
    protocol: str = "TCP"
    host_port: int = 0


@dataclass(frozen=True)
class Container:
    name: str
    image: str = ""
    ports: tuple[ContainerPort, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodCondition:
    type: str
    status: str  # "True", "False", "Unknown"


@dataclass(frozen=True)
class Pod:
    meta: ObjectMeta
    containers: tuple[Container, ...] = ()
    node_name: str = ""
    host_network: bool = False
    hostname: str = ""
    subdomain: str = ""
    # status
    phase: str = ""
    pod_ip: str = ""
    pod_ips: tuple[str, ...] = ()
    host_ip: str = ""
    conditions: tuple[PodCondition, ...] = ()
    terminating: bool = False  # metadata.deletionTimestamp is set
    kind = "Pod"

    @property
    def ready(self) -> bool:
        """The Ready condition; a pod with no conditions yet is not ready."""
        return any(c.type == "Ready" and c.status == "True" for c in self.conditions)


@dataclass(frozen=True)
class PodTemplate:
    meta: ObjectMeta  # name/namespace empty; labels and annotations used
    containers: tuple[Container, ...] = ()
    host_network: bool = False


@dataclass(frozen=True)
class Deployment:
    meta: ObjectMeta
    selector: LabelSelector
    template: PodTemplate
    replicas: int = 1
    kind = "Deployment"


# --- v1 Service -------------------------------------------------------------


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: IntOrString = 0  # defaulted to `port` by the loader
    node_port: int = 0  # 0: none allocated (yet)
    app_protocol: str = ""


@dataclass(frozen=True)
class LoadBalancerIngress:
    ip: str = ""
    hostname: str = ""
    ip_mode: str = ""  # "VIP" or "Proxy"; "" means VIP


@dataclass(frozen=True)
class Service:
    meta: ObjectMeta
    ports: tuple[ServicePort, ...] = ()
    type: str = "ClusterIP"  # ClusterIP, NodePort, LoadBalancer, ExternalName
    # None: no selector (endpoints come from EndpointSlices given by hand)
    selector: Optional[Mapping[str, str]] = None
    cluster_ip: str = ""  # "" unallocated, "None" headless
    cluster_ips: tuple[str, ...] = ()
    ip_families: tuple[str, ...] = ()
    ip_family_policy: str = ""
    external_ips: tuple[str, ...] = ()
    external_name: str = ""
    load_balancer_ip: str = ""
    load_balancer_source_ranges: tuple[str, ...] = ()
    load_balancer_class: str = ""
    allocate_load_balancer_node_ports: bool = True
    external_traffic_policy: str = ""  # "Cluster" or "Local" (NodePort/LB); "" otherwise
    internal_traffic_policy: str = "Cluster"
    health_check_node_port: int = 0
    session_affinity: str = "None"  # or "ClientIP"
    session_affinity_timeout: int = 0  # seconds; 10800 by default with ClientIP
    publish_not_ready_addresses: bool = False
    traffic_distribution: str = ""
    # status
    load_balancer_ingress: tuple[LoadBalancerIngress, ...] = ()
    kind = "Service"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


# --- discovery.k8s.io/v1 EndpointSlice ---------------------------------------


@dataclass(frozen=True)
class EndpointConditions:
    """As in the API: None means "unknown", which consumers interpret.

    kube-proxy reads ready=None as ready, serving=None as equal to ready, and
    terminating=None as not terminating.
    """

    ready: Optional[bool] = None
    serving: Optional[bool] = None
    terminating: Optional[bool] = None


@dataclass(frozen=True)
class ObjectReference:
    kind: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""


@dataclass(frozen=True)
class Endpoint:
    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    hostname: str = ""
    node_name: str = ""
    zone: str = ""
    target_ref: Optional[ObjectReference] = None
    hints_for_zones: tuple[str, ...] = ()
    hints_for_nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointPort:
    port: Optional[int] = None
    name: str = ""
    protocol: str = "TCP"
    app_protocol: str = ""


@dataclass(frozen=True)
class EndpointSlice:
    meta: ObjectMeta
    address_type: str  # IPv4, IPv6, FQDN
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    kind = "EndpointSlice"

    @property
    def service_name(self) -> str:
        return self.meta.labels.get(SERVICE_NAME_LABEL, "")


# --- networking.k8s.io/v1 NetworkPolicy --------------------------------------


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    except_: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkPolicyPeer:
    pod_selector: Optional[LabelSelector] = None
    namespace_selector: Optional[LabelSelector] = None
    ip_block: Optional[IPBlock] = None


@dataclass(frozen=True)
class NetworkPolicyPort:
    protocol: str = "TCP"
    port: Optional[IntOrString] = None  # None: all ports
    end_port: Optional[int] = None


@dataclass(frozen=True)
class NetworkPolicyRule:
    """One ingress (peers = from) or egress (peers = to) rule.

    None means the field was absent (matches all); () means present but empty
    (also matches all, per the API documentation).
    """

    peers: Optional[tuple[NetworkPolicyPeer, ...]] = None
    ports: Optional[tuple[NetworkPolicyPort, ...]] = None


@dataclass(frozen=True)
class NetworkPolicy:
    meta: ObjectMeta
    pod_selector: LabelSelector
    # None: field absent (the defaulting rule decides); otherwise as given
    policy_types: Optional[tuple[str, ...]] = None
    ingress: Optional[tuple[NetworkPolicyRule, ...]] = None
    egress: Optional[tuple[NetworkPolicyRule, ...]] = None
    kind = "NetworkPolicy"


# --- networking.k8s.io/v1 Ingress --------------------------------------------


@dataclass(frozen=True)
class IngressServiceBackend:
    name: str
    port_number: int = 0
    port_name: str = ""


@dataclass(frozen=True)
class IngressBackend:
    service: Optional[IngressServiceBackend] = None
    resource: Optional[ObjectReference] = None


@dataclass(frozen=True)
class HTTPIngressPath:
    path_type: str  # Exact, Prefix, ImplementationSpecific
    backend: IngressBackend
    path: str = ""


@dataclass(frozen=True)
class IngressRule:
    host: str = ""
    paths: tuple[HTTPIngressPath, ...] = ()


@dataclass(frozen=True)
class IngressTLS:
    hosts: tuple[str, ...] = ()
    secret_name: str = ""


@dataclass(frozen=True)
class Ingress:
    meta: ObjectMeta
    ingress_class_name: str = ""
    default_backend: Optional[IngressBackend] = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()
    kind = "Ingress"


KubeObject = Union[
    Namespace, Node, Pod, Deployment, Service, EndpointSlice, NetworkPolicy, Ingress
]


def ref(obj: KubeObject) -> str:
    """How errors and listings name an object: "Service default/web"."""
    m = obj.meta
    return f"{obj.kind} {m.namespace}/{m.name}" if m.namespace else f"{obj.kind} {m.name}"
