"""The lab plan: every namespace, link, address, route and sysctl of a lab, as data.

Pure: a ClusterTopology and the pods' placements in, a LabPlan out. The netns
backend turns the plan into `ip` commands; the simulation models the same
plan; nothing here knows about the kernel.

The picture (the default lab, lab name "demo"):

    lkdemo-outside (192.0.2.10)     lkdemo-internet (203.0.113.10)
            | eth0                          | eth0
            | lkdemo-out 192.0.2.1          | lkdemo-inet 203.0.113.1
         +--------------------- lkdemo-net ---------------------+
         |  bridge lkdemo-br 172.18.0.1/16  (kind's docker network;  |
         |  this namespace plays the docker host: gateway, router,   |
         |  MASQUERADE of 172.18.0.0/16 towards the internet)        |
         +-----------------------------------------------------------+
            | lkdemo-n1          | lkdemo-n2          | lkdemo-n3
            | eth0 172.18.0.2    | eth0 172.18.0.3    | eth0 172.18.0.4
      lkdemo-control-plane  lkdemo-worker       lkdemo-worker2      (nodes)
            | lkdemo-0002 10.244.0.1/32 (one routed veth per pod, as kindnet's ptp)
            | eth0 10.244.0.2/24
      lkdemo-pod-default.web-0                                       (pods)

Naming (documented here because cleanup relies on it):
- the lab prefix is "lk" + the lab name (1-6 characters [a-z0-9], starting
  with a letter; "test" is reserved: "lktest-" belongs to the test suites);
- namespaces are "<prefix>-<short>": the node name without "<cluster>-"
  (control-plane, worker, worker2), "pod-<namespace>.<pod>" (a Kubernetes
  namespace has no dot, so the name is unambiguous), "net", "outside", "internet";
- links that the lab names itself carry the prefix and fit 15 bytes: in the
  net namespace the bridge "<prefix>-br", node ports "<prefix>-n<i>", "<prefix>-out",
  "<prefix>-inet"; in a node, a pod's veth is "<prefix>-<hex>" where hex is the
  pod address's offset in the pod subnet (10.244.1.3 -> "0103"), so the
  name follows from the address with no counter to keep. The other ends are
  "eth0", as in a real pod or kind node; they live only inside lab namespaces.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from labkit.errors import ManifestError, Problem
from labkit.topology.kind_config import ClusterTopology

IFNAMSIZ = 15  # the kernel's limit for an interface name, in bytes

LAB_NAME_RE = re.compile(r"[a-z][a-z0-9]{0,5}")
RESERVED_LAB_NAMES = frozenset({"test"})  # "lktest-" is the test suites' namespace prefix
DEFAULT_LAB_NAME = "lab"

NODE_NETWORK = "172.18.0.0/16"  # kind's docker network
NODE_GATEWAY = "172.18.0.1"
OUTSIDE_NETWORK = "192.0.2.0/24"  # TEST-NET-1: an outside client
OUTSIDE_GATEWAY = "192.0.2.1"
OUTSIDE_CLIENT = "192.0.2.10"
INTERNET_NETWORK = "203.0.113.0/24"  # TEST-NET-3: a host on "the internet"
INTERNET_GATEWAY = "203.0.113.1"
INTERNET_HOST = "203.0.113.10"

# The cloud around the cluster (made only when a story needs it: see build_plan's `cloud`).
# A NAT gateway and a load balancer sit on the node network, as a cloud's do in its VPC.
NAT_GATEWAY_IP = "172.18.255.254"
LOAD_BALANCER_IP = "172.18.255.253"
PUBLIC_NETWORK = "198.51.100.0/24"  # TEST-NET-2: the nodes' public addresses and the LB pool
LB_POOL_FIRST, LB_POOL_LAST = "198.51.100.200", "198.51.100.250"
LB_POOL_ROUTE = "198.51.100.192/26"  # holds the whole pool: routed to the load balancer

NODE_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    # kube-proxy (iptables mode) sets it so NodePorts answer on 127.0.0.1
    ("net.ipv4.conf.all.route_localnet", "1"),
)
ROUTER_SYSCTLS = (("net.ipv4.ip_forward", "1"),)


@dataclass(frozen=True)
class PodPlacement:
    """A pod as the plan needs it: where it runs and its address."""

    namespace: str
    name: str
    node: str
    ip: str


@dataclass(frozen=True)
class Netns:
    """One network namespace: its name, what it plays, and its sysctls."""

    name: str
    role: str  # "network", "cloud" (the NAT gateway, the load balancer), "node", "pod", "outside", "internet"
    owner: str  # node name, "namespace/pod", or "" for the lab's own hosts
    sysctls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Bridge:
    netns: str
    name: str


@dataclass(frozen=True)
class Veth:
    """A veth pair, created from `netns` with its peer placed in `peer_netns`."""

    netns: str
    name: str
    peer_netns: str
    peer_name: str
    master: str = ""  # a bridge in `netns` that `name` joins


@dataclass(frozen=True)
class Address:
    netns: str
    dev: str
    cidr: str
    noprefixroute: bool = False  # ptp: the pod's /24 without its automatic route


@dataclass(frozen=True)
class Route:
    netns: str
    dst: str
    dev: str
    via: str = ""
    src: str = ""
    scope: str = ""  # "", "link", "host"

    def spec(self) -> str:
        """The route as `ip route add` arguments: "10.244.1.0/24 via 172.18.0.3 dev eth0"."""
        words = [self.dst]
        if self.via:
            words += ["via", self.via]
        words += ["dev", self.dev]
        if self.scope:
            words += ["scope", self.scope]
        if self.src:
            words += ["src", self.src]
        return " ".join(words)


@dataclass(frozen=True)
class NodePlan:
    name: str
    role: str
    netns: str
    ip: str  # on the node network
    pod_cidr: str
    pod_gateway: str  # the node side of every pod's veth (the CIDR's first address)
    port: str  # its link on the bridge, in the net namespace


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str
    host_veth: str  # the node-side end, in the node's namespace

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class HostPlan:
    """A host outside the cluster: the outside client or the internet host."""

    name: str  # "outside" or "internet"
    netns: str
    ip: str
    gateway: str
    port: str  # its link in the net namespace


@dataclass(frozen=True)
class CloudPlan:
    """The cloud around the cluster: a 1:1 NAT gateway to the internet and an L4 load balancer.

    public: (node name, private address, public address) for every node, the
    NAT gateway's 1:1 map. The gateway drops anything else leaving for the
    internet (a pod's own address is unknown to the cloud).
    """

    natgw_netns: str
    lb_netns: str
    natgw_ip: str  # on the node network
    lb_ip: str  # on the node network
    public: tuple[tuple[str, str, str], ...]
    natgw_internal_dev: str = "eth0"
    natgw_internet_dev: str = ""  # the link toward the internet host
    lb_outside_dev: str = ""  # the link toward the outside client

    def public_ip(self, node_ip: str) -> str:
        return next((pub for _, priv, pub in self.public if priv == node_ip), "")


@dataclass(frozen=True)
class LabPlan:
    lab: str
    prefix: str
    topology: ClusterTopology
    network_netns: str
    node_network: str
    node_gateway: str
    nodes: tuple[NodePlan, ...]
    pods: tuple[PodPlan, ...]
    outside: HostPlan
    internet: HostPlan
    namespaces: tuple[Netns, ...]
    bridges: tuple[Bridge, ...]
    veths: tuple[Veth, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    bridge_name: str = ""
    link_names: tuple[str, ...] = field(default=())
    cloud: Optional[CloudPlan] = None

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pod(self, namespace: str, name: str) -> PodPlan:
        for p in self.pods:
            if p.namespace == namespace and p.name == name:
                return p
        raise KeyError(f"{namespace}/{name}")

    def netns_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.namespaces)

    def owner_of(self, ip: str) -> str:
        """Who holds address `ip` in the lab: "pod default/web-0", "node kind-worker", ... or ""."""
        for p in self.pods:
            if p.ip == ip:
                return f"pod {p.key}"
        for n in self.nodes:
            if n.ip == ip:
                return f"node {n.name}"
        for h in (self.outside, self.internet):
            if h.ip == ip:
                return h.name
        if self.cloud is not None:
            for node, _, pub in self.cloud.public:
                if pub == ip:
                    return f"node {node}"
        return ""


def lab_prefix(lab: str) -> str:
    """The prefix of every namespace and lab-named link: "lk" + the lab name."""
    check_lab_name(lab)
    return f"lk{lab}"


def check_lab_name(lab: str) -> None:
    """ManifestError unless `lab` can name a lab (it ends up in 15-byte link names)."""
    if not isinstance(lab, str) or not LAB_NAME_RE.fullmatch(lab) or lab in RESERVED_LAB_NAMES:
        why = (
            "is reserved (the test suites' namespaces start with 'lktest-')"
            if lab in RESERVED_LAB_NAMES
            else "must be 1-6 characters of a-z and 0-9, starting with a letter"
        )
        raise ManifestError(
            [Problem(f"Lab {lab}", "name", f"{lab!r} {why}",
                     "pick a short name such as 'demo' or 'lab1' (it goes into 15-byte interface names)")]
        )


def node_short_name(topology: ClusterTopology, node: str) -> str:
    """"kind-worker2" -> "worker2": the node name without the cluster's prefix."""
    head = f"{topology.name}-"
    return node[len(head):] if node.startswith(head) else node


def pod_netns_name(prefix: str, namespace: str, name: str) -> str:
    return f"{prefix}-pod-{namespace}.{name}"


def pod_veth_name(prefix: str, pod_subnet: str, ip: str) -> str:
    """The node-side veth of the pod with address `ip`: prefix + its offset in hex."""
    offset = int(ipaddress.ip_address(ip)) - int(ipaddress.ip_network(pod_subnet).network_address)
    return f"{prefix}-{offset:04x}"


def placements_from_pods(pods: Iterable) -> list[PodPlacement]:
    """PodPlacements from model Pods (skipping host-network pods: they have no netns of their own)."""
    return [
        PodPlacement(p.meta.namespace, p.meta.name, p.node_name, p.pod_ip)
        for p in pods
        if not p.host_network and p.pod_ip and p.node_name
    ]


def build_plan(
    lab: str,
    topology: ClusterTopology,
    pods: Iterable[PodPlacement] = (),
    node_pod_cidrs: Optional[Mapping[str, str]] = None,
    cloud: bool = False,
) -> LabPlan:
    """Everything the lab needs, or a ManifestError listing every problem found.

    node_pod_cidrs: the control plane's allocation (ClusterState.nodes) when
    known; otherwise the topology's own (the n-th /24 for the n-th node).
    cloud: put the cluster in a cloud: a NAT gateway namespace "<prefix>-natgw"
    between the node network and the internet host (1:1 public addresses,
    nothing else gets out) and a load balancer namespace "<prefix>-lb" between
    the outside client and the nodes. Without it (the default, and cheaper)
    both hosts hang off the net namespace, which masquerades like docker.
    """
    prefix = lab_prefix(lab)
    problems: list[Problem] = []
    if topology.ip_family != "ipv4":
        problems.append(Problem(f"Cluster {topology.name}", "networking.ipFamily",
                                f"the kernel lab supports ipv4 only, not {topology.ip_family}",
                                "remove ipFamily or set it to ipv4"))
    if topology.kube_proxy_mode == "ipvs":
        problems.append(Problem(f"Cluster {topology.name}", "networking.kubeProxyMode",
                                "this kernel has no IPVS, so the lab cannot run kube-proxy in ipvs mode",
                                "use iptables (the default) or nftables"))
    cidrs = dict(node_pod_cidrs or topology.node_pod_cidrs())
    node_net = ipaddress.ip_network(NODE_NETWORK)
    net_ns = f"{prefix}-net"
    bridge = f"{prefix}-br"

    namespaces = [Netns(net_ns, "network", "", ROUTER_SYSCTLS)]
    bridges = [Bridge(net_ns, bridge)]
    veths: list[Veth] = []
    addresses = [Address(net_ns, bridge, f"{NODE_GATEWAY}/{node_net.prefixlen}")]
    routes: list[Route] = []

    nodes: list[NodePlan] = []
    hosts = node_net.hosts()
    next(hosts)  # .1 is the gateway
    for i, spec in enumerate(topology.nodes, start=1):
        cidr = cidrs.get(spec.name)
        if not cidr:
            problems.append(Problem(f"Node {spec.name}", "spec.podCIDR", "the node has no pod CIDR",
                                    "give every node a pod CIDR"))
            continue
        gw = str(next(ipaddress.ip_network(cidr).hosts()))
        node = NodePlan(spec.name, spec.role, f"{prefix}-{node_short_name(topology, spec.name)}",
                        str(next(hosts)), cidr, gw, f"{prefix}-n{i}")
        nodes.append(node)
        namespaces.append(Netns(node.netns, "node", node.name, NODE_SYSCTLS))
        veths.append(Veth(net_ns, node.port, node.netns, "eth0", master=bridge))
        addresses.append(Address(node.netns, "eth0", f"{node.ip}/{node_net.prefixlen}"))
        routes.append(Route(node.netns, "default", "eth0", via=NODE_GATEWAY))
    for node in nodes:
        for other in nodes:
            if other is not node:
                routes.append(Route(node.netns, other.pod_cidr, "eth0", via=other.ip))

    outside = HostPlan("outside", f"{prefix}-outside", OUTSIDE_CLIENT, OUTSIDE_GATEWAY, f"{prefix}-out")
    internet = HostPlan("internet", f"{prefix}-internet", INTERNET_HOST, INTERNET_GATEWAY, f"{prefix}-inet")
    cloud_plan = None
    gateway_of = {"outside": net_ns, "internet": net_ns}
    if cloud:
        cloud_plan = _cloud_plan(prefix, nodes, bridge, node_net.prefixlen, namespaces, veths, addresses,
                                 routes, net_ns)
        gateway_of = {"outside": cloud_plan.lb_netns, "internet": cloud_plan.natgw_netns}
    for host, network in ((outside, OUTSIDE_NETWORK), (internet, INTERNET_NETWORK)):
        plen = ipaddress.ip_network(network).prefixlen
        router = gateway_of[host.name]
        namespaces.append(Netns(host.netns, host.name, ""))
        veths.append(Veth(router, host.port, host.netns, "eth0"))
        addresses.append(Address(router, host.port, f"{host.gateway}/{plen}"))
        addresses.append(Address(host.netns, "eth0", f"{host.ip}/{plen}"))
        routes.append(Route(host.netns, "default", "eth0", via=host.gateway))

    by_node = {n.name: n for n in nodes}
    pod_plans: list[PodPlan] = []
    seen_ips: dict[str, str] = {}
    seen_names: set[tuple[str, str]] = set()
    for pl in pods:
        obj = f"Pod {pl.namespace}/{pl.name}"
        node = by_node.get(pl.node)
        if (pl.namespace, pl.name) in seen_names:
            problems.append(Problem(obj, "metadata.name", "two pods have this name", "give each pod its own name"))
            continue
        seen_names.add((pl.namespace, pl.name))
        if node is None:
            problems.append(Problem(obj, "spec.nodeName", f"no node named {pl.node!r} in the lab",
                                    "use one of: " + ", ".join(by_node)))
            continue
        try:
            ip = ipaddress.ip_address(pl.ip)
        except ValueError:
            problems.append(Problem(obj, "status.podIP", f"{pl.ip!r} is not an IPv4 address"))
            continue
        cidr = ipaddress.ip_network(node.pod_cidr)
        if ip not in cidr or ip in (cidr.network_address, cidr.broadcast_address) or str(ip) == node.pod_gateway:
            problems.append(Problem(obj, "status.podIP",
                                    f"{ip} is not a usable pod address on node {node.name} ({node.pod_cidr}, "
                                    f"gateway {node.pod_gateway})",
                                    f"pick an address from {node.pod_cidr} other than its first and last"))
            continue
        if str(ip) in seen_ips:
            problems.append(Problem(obj, "status.podIP", f"{ip} is already the address of pod {seen_ips[str(ip)]}",
                                    "give each pod its own address"))
            continue
        seen_ips[str(ip)] = f"{pl.namespace}/{pl.name}"
        pod = PodPlan(pl.namespace, pl.name, node.name, str(ip),
                      pod_netns_name(prefix, pl.namespace, pl.name),
                      pod_veth_name(prefix, topology.pod_subnet, str(ip)))
        pod_plans.append(pod)
        namespaces.append(Netns(pod.netns, "pod", pod.key))
        # kindnet's CNI is ptp + host-local: mirror what the ptp plugin does.
        veths.append(Veth(node.netns, pod.host_veth, pod.netns, "eth0"))
        addresses.append(Address(node.netns, pod.host_veth, f"{node.pod_gateway}/32"))
        routes.append(Route(node.netns, pod.ip, pod.host_veth, scope="host"))
        addresses.append(Address(pod.netns, "eth0", f"{pod.ip}/{cidr.prefixlen}", noprefixroute=True))
        routes.append(Route(pod.netns, node.pod_gateway, "eth0", scope="link", src=pod.ip))
        routes.append(Route(pod.netns, node.pod_cidr, "eth0", via=node.pod_gateway, src=pod.ip))
        routes.append(Route(pod.netns, "default", "eth0", via=node.pod_gateway))

    link_names = tuple([bridge] + [v.name for v in veths])
    for name in link_names:
        if len(name.encode()) > IFNAMSIZ:
            problems.append(Problem(f"Lab {lab}", "name", f"interface name {name!r} is longer than 15 bytes",
                                    "use a shorter lab name or a smaller pod subnet"))
    if problems:
        raise ManifestError(problems, f"lab {lab}")
    return LabPlan(
        lab=lab,
        prefix=prefix,
        topology=topology,
        network_netns=net_ns,
        node_network=NODE_NETWORK,
        node_gateway=NODE_GATEWAY,
        nodes=tuple(nodes),
        pods=tuple(pod_plans),
        outside=outside,
        internet=internet,
        namespaces=tuple(namespaces),
        bridges=tuple(bridges),
        veths=tuple(veths),
        addresses=tuple(addresses),
        routes=tuple(routes),
        bridge_name=bridge,
        link_names=link_names,
        cloud=cloud_plan,
    )


def public_address(node_ip: str) -> str:
    """A node's public address behind the NAT gateway: 172.18.0.3 -> 198.51.100.3."""
    return str(ipaddress.ip_network(PUBLIC_NETWORK).network_address + (int(ipaddress.ip_address(node_ip)) & 0xFF))


def _cloud_plan(prefix, nodes, bridge, plen, namespaces, veths, addresses, routes, net_ns) -> CloudPlan:
    """Add the NAT gateway and the load balancer (both on the node network) to the plan's lists."""
    natgw, lb = f"{prefix}-natgw", f"{prefix}-lb"
    namespaces.append(Netns(natgw, "cloud", "nat-gateway", ROUTER_SYSCTLS))
    namespaces.append(Netns(lb, "cloud", "load-balancer", ROUTER_SYSCTLS))
    veths.append(Veth(net_ns, f"{prefix}-gw", natgw, "eth0", master=bridge))
    veths.append(Veth(net_ns, f"{prefix}-lb", lb, "eth0", master=bridge))
    addresses.append(Address(natgw, "eth0", f"{NAT_GATEWAY_IP}/{plen}"))
    addresses.append(Address(lb, "eth0", f"{LOAD_BALANCER_IP}/{plen}"))
    routes.append(Route(net_ns, "default", bridge, via=NAT_GATEWAY_IP))
    routes.append(Route(net_ns, OUTSIDE_NETWORK, bridge, via=LOAD_BALANCER_IP))
    routes.append(Route(net_ns, LB_POOL_ROUTE, bridge, via=LOAD_BALANCER_IP))
    routes.append(Route(lb, "default", "eth0", via=NODE_GATEWAY))
    public = tuple((n.name, n.ip, public_address(n.ip)) for n in nodes)
    return CloudPlan(natgw, lb, NAT_GATEWAY_IP, LOAD_BALANCER_IP, public,
                     natgw_internet_dev=f"{prefix}-inet", lb_outside_dev=f"{prefix}-out")
