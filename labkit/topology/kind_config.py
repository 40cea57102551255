"""A kind cluster config (`kind.x-k8s.io/v1alpha4`, `kind: Cluster`) as lab topology.

The lab reads the same file `kind create cluster --config` reads, so a learner
can move from the kernel lab to a real kind cluster without rewriting it.
Fields kind knows but the lab has no use for (image, extraMounts, ...) are
accepted and ignored; fields kind does not know are reported, each as a
Problem naming the field, all together.

Pure: text or a dict in, a ClusterTopology out.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping

from labkit.errors import ManifestError, Problem

API_VERSION = "kind.x-k8s.io/v1alpha4"
KIND = "Cluster"

DEFAULT_CLUSTER_NAME = "kind"
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
DEFAULT_KUBE_PROXY_MODE = "iptables"
# kube-controller-manager's --node-cidr-mask-size for IPv4.
NODE_CIDR_PREFIX = 24

ROLES = ("control-plane", "worker")
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs", "none")
IP_FAMILIES = ("ipv4", "ipv6", "dual")

# Every field kind v1alpha4 accepts, so that a file made for kind parses here.
_CLUSTER_FIELDS = frozenset(
    {
        "kind", "apiVersion", "name", "nodes", "networking", "featureGates",
        "runtimeConfig", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
        "containerdConfigPatches", "containerdConfigPatchesJSON6902",
    }
)
_NODE_FIELDS = frozenset(
    {
        "role", "image", "labels", "extraMounts", "extraPortMappings",
        "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
    }
)
_NETWORKING_FIELDS = frozenset(
    {
        "ipFamily", "apiServerPort", "apiServerAddress", "podSubnet", "serviceSubnet",
        "disableDefaultCNI", "kubeProxyMode", "dnsSearch",
    }
)


@dataclass(frozen=True)
class NodeSpec:
    """One node as kind would create it: its name and role."""

    name: str
    role: str  # "control-plane" or "worker"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterTopology:
    """What a kind config says about the cluster's shape and networks."""

    name: str
    nodes: tuple[NodeSpec, ...]
    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    kube_proxy_mode: str = DEFAULT_KUBE_PROXY_MODE
    disable_default_cni: bool = False
    ip_family: str = "ipv4"

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def node_pod_cidrs(self) -> dict[str, str]:
        """Each node's pod CIDR: the n-th /24 of the pod subnet for the n-th node.

        kube-controller-manager hands out /24s in the order nodes register;
        kind's control plane registers first. The lab fixes the order to the
        order of the config, so addresses are the same on every run.
        """
        net = ipaddress.ip_network(self.pod_subnet)
        subnets = net.subnets(new_prefix=NODE_CIDR_PREFIX)
        return {node.name: str(next(subnets)) for node in self.nodes}


def node_names_for(cluster: str, roles: list[str]) -> list[str]:
    """kind's node names: <cluster>-control-plane, -control-plane2, -worker, -worker2, ..."""
    seen: dict[str, int] = {}
    names = []
    for role in roles:
        seen[role] = seen.get(role, 0) + 1
        n = seen[role]
        names.append(f"{cluster}-{role}" + (str(n) if n > 1 else ""))
    return names


def default_topology(name: str = DEFAULT_CLUSTER_NAME) -> ClusterTopology:
    """The course's default: one control plane and two workers."""
    roles = ["control-plane", "worker", "worker"]
    nodes = tuple(NodeSpec(n, r) for n, r in zip(node_names_for(name, roles), roles))
    return ClusterTopology(name=name, nodes=nodes)


def parse_kind_config_text(text: str, source: str = "kind config") -> ClusterTopology:
    """Parse a kind config file's text (YAML)."""
    import yaml  # only here: the rest of the module needs no YAML

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ManifestError(
            [Problem("Cluster", "", f"not valid YAML: {e}", "check the indentation near the line shown")],
            source,
        ) from None
    return parse_kind_config(doc, source)


def parse_kind_config(doc: Any, source: str = "kind config") -> ClusterTopology:
    """A kind config as a dict (already parsed YAML) -> ClusterTopology.

    Every problem is collected and raised together as a ManifestError.
    """
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise ManifestError(
            [Problem("Cluster", "", "a kind config must be a mapping",
                     f"start the file with 'kind: {KIND}' and 'apiVersion: {API_VERSION}'")],
            source,
        )
    name = doc.get("name", DEFAULT_CLUSTER_NAME)
    obj = f"Cluster {name}"

    def bad(field: str, message: str, fix: str = "") -> None:
        problems.append(Problem(obj, field, message, fix))

    if doc.get("kind") != KIND:
        bad("kind", f"must be {KIND!r}, got {doc.get('kind')!r}", f"set 'kind: {KIND}'")
    if doc.get("apiVersion") != API_VERSION:
        bad("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}",
            f"set 'apiVersion: {API_VERSION}'")
    for key in sorted(set(doc) - _CLUSTER_FIELDS):
        bad(key, "unknown field", "remove it, or check its spelling against kind's v1alpha4 Cluster")
    if not isinstance(name, str) or not _is_dns_label(name):
        bad("name", f"{name!r} is not a valid cluster name",
            "use lower-case letters, digits and '-', starting with a letter")
        name = DEFAULT_CLUSTER_NAME

    parsed_nodes = _parse_nodes(doc.get("nodes"), bad)
    roles = [r for r, _ in parsed_nodes] if parsed_nodes is not None else None
    net = _parse_networking(doc.get("networking"), bad)

    if roles is not None and "control-plane" not in roles:
        bad("nodes", "a cluster needs at least one control-plane node", "add '- role: control-plane'")
    pod_subnet = net.get("podSubnet", DEFAULT_POD_SUBNET)
    nodes_count = len(roles) if roles else 1
    _check_subnet(pod_subnet, "networking.podSubnet", bad, need_node_cidrs=nodes_count)
    service_subnet = net.get("serviceSubnet", DEFAULT_SERVICE_SUBNET)
    _check_subnet(service_subnet, "networking.serviceSubnet", bad)

    if problems:
        raise ManifestError(problems, source)

    # kind's default without `nodes`: a single control-plane node
    parsed_nodes = parsed_nodes or [("control-plane", {})]
    roles = [r for r, _ in parsed_nodes]
    labels = [lab for _, lab in parsed_nodes]
    nodes = tuple(
        NodeSpec(n, r, lab) for n, r, lab in zip(node_names_for(name, roles), roles, labels)
    )
    return ClusterTopology(
        name=name,
        nodes=nodes,
        pod_subnet=str(ipaddress.ip_network(pod_subnet)),
        service_subnet=str(ipaddress.ip_network(service_subnet)),
        kube_proxy_mode=net.get("kubeProxyMode", DEFAULT_KUBE_PROXY_MODE),
        disable_default_cni=bool(net.get("disableDefaultCNI", False)),
        ip_family=net.get("ipFamily", "ipv4"),
    )


def _parse_nodes(nodes: Any, bad) -> list[tuple[str, dict]] | None:
    if nodes is None:
        return None
    if not isinstance(nodes, list) or not nodes:
        bad("nodes", "must be a non-empty list of nodes", "write '- role: control-plane' items")
        return None
    roles = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            bad(where, "must be a mapping such as {role: worker}")
            continue
        for key in sorted(set(node) - _NODE_FIELDS):
            bad(f"{where}.{key}", "unknown field", "remove it, or check its spelling (role, image, labels, ...)")
        role = node.get("role", "control-plane")  # kind defaults a node's role to control-plane
        if role not in ROLES:
            bad(f"{where}.role", f"{role!r} is not a node role", "use 'control-plane' or 'worker'")
            continue
        labels = node.get("labels") or {}
        if not isinstance(labels, dict):
            bad(f"{where}.labels", "must be a mapping of label keys to values")
            labels = {}
        roles.append((role, {str(k): str(v) for k, v in labels.items()}))
    return roles


def _parse_networking(net: Any, bad) -> dict:
    if net is None:
        return {}
    if not isinstance(net, dict):
        bad("networking", "must be a mapping")
        return {}
    for key in sorted(set(net) - _NETWORKING_FIELDS):
        bad(f"networking.{key}", "unknown field",
            "remove it, or check its spelling (podSubnet, serviceSubnet, kubeProxyMode, ...)")
    out = dict(net)
    mode = net.get("kubeProxyMode", DEFAULT_KUBE_PROXY_MODE)
    if mode not in KUBE_PROXY_MODES:
        bad("networking.kubeProxyMode", f"{mode!r} is not a kube-proxy mode",
            "use one of: " + ", ".join(KUBE_PROXY_MODES))
    family = net.get("ipFamily", "ipv4")
    if family not in IP_FAMILIES:
        bad("networking.ipFamily", f"{family!r} is not an IP family", "use ipv4, ipv6 or dual")
    if "disableDefaultCNI" in net and not isinstance(net["disableDefaultCNI"], bool):
        bad("networking.disableDefaultCNI", "must be true or false")
    return out


def _check_subnet(value: Any, field: str, bad, need_node_cidrs: int = 0) -> None:
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        bad(field, f"{value!r} is not a CIDR with its host bits zero", "write it like 10.244.0.0/16")
        return
    if need_node_cidrs:
        if net.version == 4 and net.prefixlen > NODE_CIDR_PREFIX:
            bad(field, f"{value} is smaller than one node's /{NODE_CIDR_PREFIX}",
                f"use a prefix of /{NODE_CIDR_PREFIX} or shorter, e.g. 10.244.0.0/16")
        elif net.version == 4 and 2 ** (NODE_CIDR_PREFIX - net.prefixlen) < need_node_cidrs:
            bad(field, f"{value} has room for {2 ** (NODE_CIDR_PREFIX - net.prefixlen)} node "
                f"/{NODE_CIDR_PREFIX}s but the cluster has {need_node_cidrs} nodes",
                "use a larger subnet (a shorter prefix)")


def _is_dns_label(s: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", s))
