"""The NetworkPolicy verdict engine: one connection in, a verdict with its reason out.

The rules are networking.k8s.io/v1's, as the API documents them
(staging/src/k8s.io/api/networking/v1/types.go) and as the upstream e2e suite
(test/e2e/network/netpol) checks them:

- A policy selects the pods of its own namespace that match spec.podSelector
  (an empty selector selects every pod of the namespace).
- Its effective policyTypes are the ones written; when the list is absent *or
  empty* the API server defaults it to ["Ingress"], plus "Egress" when
  spec.egress has at least one rule (so `egress: []` alone does not isolate).
- A pod is isolated for a direction when at least one policy of that type
  selects it. An isolated pod accepts only what some rule of those policies
  allows; policies are a union, none can deny what another allows.
- A connection is allowed only when the source's egress AND the
  destination's ingress allow it. An end that is not a pod (an outside
  address) has no policies of its own.
- Rules: `from`/`to` absent or empty matches every peer; `ports` absent or
  empty matches every port and protocol. A peer with podSelector alone means
  pods of the policy's namespace; namespaceSelector alone means every pod of
  the matching namespaces; both in ONE peer means pods matching both (AND);
  two peers are alternatives (OR). ipBlock matches addresses (pod IPs
  included) inside cidr and outside every except.
- Ports: protocol defaults to TCP (the loader applied it); a port number with
  endPort is a range; a named port is looked up on the destination pod's
  containers, with the same protocol; no port means every port of the
  protocol.
- The pod's own node may always reach it (kubelet probes); a pod's traffic to
  itself never leaves it, so the upstream suite ignores those cells
  (`Verdict.loopback`), and so do real dataplanes.

Everything here is pure: objects in, data out.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from labkit.errors import LabkitError
from labkit.model.objects import (
    IPBlock,
    Namespace,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    Pod,
)
from labkit.model.selectors import render_selector, selector_matches

INGRESS = "Ingress"
EGRESS = "Egress"
PROTOCOLS = ("TCP", "UDP", "SCTP")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class NetpolError(LabkitError):
    """A question the evaluator cannot answer as asked (unknown pod, bad port)."""


# --- the cluster as the evaluator sees it ------------------------------------


@dataclass(frozen=True)
class PolicyCluster:
    """Namespaces (name -> labels), pods and policies: all a verdict depends on.

    Namespace labels include kubernetes.io/metadata.name, which the API server
    sets on every namespace; a namespace that only appears as a pod's or a
    policy's namespace is known by that label alone.
    """

    namespaces: Mapping[str, Mapping[str, str]]
    pods: tuple[Pod, ...]
    policies: tuple[NetworkPolicy, ...]

    def pod(self, namespace: str, name: str) -> Optional[Pod]:
        for p in self.pods:
            if p.meta.namespace == namespace and p.meta.name == name:
                return p
        return None

    def pod_by_ip(self, ip: str) -> Optional[Pod]:
        for p in self.pods:
            if not p.host_network and ip in _pod_ips(p):
                return p
        return None

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self.namespaces.get(namespace, {NAMESPACE_NAME_LABEL: namespace})


def _pod_ips(pod: Pod) -> tuple[str, ...]:
    return pod.pod_ips or ((pod.pod_ip,) if pod.pod_ip else ())


def build_cluster(objects: Iterable[object]) -> PolicyCluster:
    """Loaded objects -> PolicyCluster; kinds other than these three are ignored."""
    namespaces: dict[str, dict[str, str]] = {}
    pods: list[Pod] = []
    policies: list[NetworkPolicy] = []
    for obj in objects:
        if isinstance(obj, Namespace):
            labels = dict(obj.meta.labels)
            labels[NAMESPACE_NAME_LABEL] = obj.meta.name
            namespaces[obj.meta.name] = labels
        elif isinstance(obj, Pod):
            pods.append(obj)
        elif isinstance(obj, NetworkPolicy):
            policies.append(obj)
    for ns in [p.meta.namespace for p in pods] + [p.meta.namespace for p in policies]:
        namespaces.setdefault(ns, {NAMESPACE_NAME_LABEL: ns})
    policies.sort(key=lambda p: (p.meta.namespace, p.meta.name))
    return PolicyCluster(namespaces, tuple(pods), tuple(policies))


# --- connection ends ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (with its IP) or an address outside the pods."""

    ip: str
    pod: Optional[Pod] = None

    @property
    def name(self) -> str:
        if self.pod is not None:
            return f"{self.pod.meta.namespace}/{self.pod.meta.name}"
        return self.ip


def resolve_endpoint(cluster: PolicyCluster, text: str) -> Endpoint:
    """"NS/POD" or an IP address -> Endpoint; an IP that is a pod's IP is that pod."""
    if "/" in text:
        ns, _, name = text.partition("/")
        pod = cluster.pod(ns, name)
        if pod is None:
            known = ", ".join(f"{p.meta.namespace}/{p.meta.name}" for p in cluster.pods) or "none"
            raise NetpolError(f"pod {text} is not in the manifests (fix: name a pod as NAMESPACE/NAME; "
                              f"known pods: {known})")
        ips = _pod_ips(pod)
        return Endpoint(ips[0] if ips else "", pod)
    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        raise NetpolError(f"{text!r} is neither NAMESPACE/POD nor an IP address "
                          f"(fix: write x/a or 203.0.113.7)") from None
    pod = cluster.pod_by_ip(ip)
    return Endpoint(ip, pod)


# --- verdicts ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleRef:
    """Which part of which policy allowed a connection.

    peer is None when the rule has no from/to (every peer); port is None when
    it has no ports (every port).
    """

    policy: str  # "namespace/name"
    direction: str  # Ingress or Egress
    rule: int
    peer: Optional[int]
    port: Optional[int]

    def render(self) -> str:
        where = "from" if self.direction == INGRESS else "to"
        peer = f"{where}[{self.peer}]" if self.peer is not None else f"any peer (no {where})"
        port = f"ports[{self.port}]" if self.port is not None else "any port (no ports)"
        return f"NetworkPolicy {self.policy} {self.direction.lower()}[{self.rule}] {peer}, {port}"


@dataclass(frozen=True)
class DirectionVerdict:
    """The answer for one direction: the source's egress or the destination's ingress."""

    direction: str
    end: str  # the pod it is about ("x/a"), or the address when the end is not a pod
    is_pod: bool
    isolated_by: tuple[str, ...] = ()  # "ns/name" of every policy of this type selecting the pod
    allowed_by: tuple[RuleRef, ...] = ()  # every matching rule (policies are a union)
    exemption: str = ""  # allowed whatever the policies say, and why

    @property
    def allowed(self) -> bool:
        return not self.isolated_by or bool(self.allowed_by) or bool(self.exemption)

    def render(self) -> str:
        what = "egress from" if self.direction == EGRESS else "ingress to"
        head = f"{what} {self.end}"
        if not self.is_pod:
            return f"{head}: not a pod, no policy applies"
        if self.exemption:
            return f"{head}: allowed, {self.exemption}"
        if not self.isolated_by:
            return f"{head}: not isolated (no NetworkPolicy selects it for {self.direction})"
        isolated = f"isolated by {', '.join(self.isolated_by)}"
        if not self.allowed_by:
            return f"{head}: {isolated}; no {self.direction.lower()} rule of them allows it"
        more = f" (and {len(self.allowed_by) - 1} more)" if len(self.allowed_by) > 1 else ""
        return f"{head}: {isolated}; allowed by {self.allowed_by[0].render()}{more}"


@dataclass(frozen=True)
class Verdict:
    source: str
    destination: str
    port: int
    protocol: str
    egress: DirectionVerdict
    ingress: DirectionVerdict
    loopback: bool = False  # the pod talks to itself

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    @property
    def reason(self) -> str:
        head = "allowed" if self.allowed else "denied"
        text = (f"{head}: {self.source} -> {self.destination} {self.protocol}/{self.port}. "
                f"{_capital(self.egress.render())}. {_capital(self.ingress.render())}.")
        if self.loopback:
            text += (" (A pod's traffic to itself never leaves the pod: real dataplanes let it "
                     "through and the upstream e2e suite ignores it.)")
        return text

    def to_json(self) -> dict:
        def side(d: DirectionVerdict) -> dict:
            return {
                "allowed": d.allowed,
                "isolatedBy": list(d.isolated_by),
                "allowedBy": [_ref_json(r) for r in d.allowed_by],
                **({"exemption": d.exemption} if d.exemption else {}),
            }

        return {"allowed": self.allowed, "reason": self.reason, "from": self.source,
                "to": self.destination, "port": self.port, "protocol": self.protocol,
                "egress": side(self.egress), "ingress": side(self.ingress)}


def _ref_json(r: RuleRef) -> dict:
    return {"policy": r.policy, "direction": r.direction, "rule": r.rule,
            "peer": r.peer, "port": r.port}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- the semantics -----------------------------------------------------------


def effective_policy_types(policy: NetworkPolicy) -> tuple[str, ...]:
    """policyTypes after the API server's defaulting (absent or empty -> derived)."""
    if policy.policy_types:
        return tuple(policy.policy_types)
    return (INGRESS, EGRESS) if policy.egress else (INGRESS,)


def policy_selects(policy: NetworkPolicy, pod: Pod) -> bool:
    """spec.podSelector, within the policy's own namespace; host-network pods are never selected."""
    return (not pod.host_network and pod.meta.namespace == policy.meta.namespace
            and selector_matches(policy.pod_selector, pod.meta.labels))


def isolating_policies(cluster: PolicyCluster, pod: Pod, direction: str) -> tuple[NetworkPolicy, ...]:
    """The policies that select `pod` and have `direction` among their effective types."""
    return tuple(p for p in cluster.policies
                 if direction in effective_policy_types(p) and policy_selects(p, pod))


def ip_in_block(ip: str, block: IPBlock) -> bool:
    """Inside cidr and outside every except (host bits in a CIDR are ignored, as the API does)."""
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block.cidr, strict=False)
    if addr.version != net.version or addr not in net:
        return False
    for exc in block.except_:
        ex = ipaddress.ip_network(exc, strict=False)
        if addr.version == ex.version and addr in ex:
            return False
    return True


def peer_matches(cluster: PolicyCluster, policy_ns: str, peer: NetworkPolicyPeer, other: Endpoint) -> bool:
    """Does one from/to entry of a policy in `policy_ns` match the other end?"""
    if peer.ip_block is not None:
        return ip_in_block(other.ip, peer.ip_block)
    pod = other.pod
    if pod is None or pod.host_network:
        return False
    if peer.namespace_selector is not None:
        if not selector_matches(peer.namespace_selector, cluster.namespace_labels(pod.meta.namespace)):
            return False
    elif pod.meta.namespace != policy_ns:
        return False  # a bare podSelector means the policy's own namespace
    if peer.pod_selector is not None:
        return selector_matches(peer.pod_selector, pod.meta.labels)
    return True


def resolve_named_port(pod: Optional[Pod], name: str, protocol: str) -> Optional[int]:
    """The container port called `name` with `protocol` on `pod`, or None."""
    if pod is None:
        return None
    for c in pod.containers:
        for cp in c.ports:
            if cp.name == name and cp.protocol == protocol:
                return cp.container_port
    return None


def port_matches(np_port: NetworkPolicyPort, destination: Endpoint, port: int, protocol: str) -> bool:
    """One ports[] entry against the connection's destination port and protocol."""
    if np_port.protocol != protocol:
        return False
    if np_port.port is None:
        return True
    if isinstance(np_port.port, str):
        return resolve_named_port(destination.pod, np_port.port, protocol) == port
    end = np_port.end_port if np_port.end_port is not None else np_port.port
    return np_port.port <= port <= end


def _allowing_rules(cluster: PolicyCluster, policy: NetworkPolicy, direction: str, other: Endpoint,
                    destination: Endpoint, port: int, protocol: str) -> list[RuleRef]:
    rules = (policy.ingress if direction == INGRESS else policy.egress) or ()
    name = f"{policy.meta.namespace}/{policy.meta.name}"
    found: list[RuleRef] = []
    for ri, rule in enumerate(rules):
        if rule.peers:
            peer_idx = next((i for i, peer in enumerate(rule.peers)
                             if peer_matches(cluster, policy.meta.namespace, peer, other)), None)
            if peer_idx is None:
                continue
        else:
            peer_idx = None
        if rule.ports:
            port_idx = next((i for i, p in enumerate(rule.ports)
                             if port_matches(p, destination, port, protocol)), None)
            if port_idx is None:
                continue
        else:
            port_idx = None
        found.append(RuleRef(name, direction, ri, peer_idx, port_idx))
    return found


def check_direction(cluster: PolicyCluster, direction: str, end: Endpoint, other: Endpoint,
                    destination: Endpoint, port: int, protocol: str) -> DirectionVerdict:
    """Egress of `end` toward `other`, or ingress of `end` from `other`."""
    pod = end.pod
    if pod is None or pod.host_network:
        return DirectionVerdict(direction, end.name, False)
    policies = isolating_policies(cluster, pod, direction)
    names = tuple(f"{p.meta.namespace}/{p.meta.name}" for p in policies)
    exemption = ""
    if direction == INGRESS and pod.host_ip and other.ip == pod.host_ip and other.pod is None:
        exemption = "traffic from the pod's own node is always allowed"
    allowed: list[RuleRef] = []
    for p in policies:
        allowed += _allowing_rules(cluster, p, direction, other, destination, port, protocol)
    return DirectionVerdict(direction, end.name, True, names, tuple(allowed), exemption)


def check_port(port: int, protocol: str) -> tuple[int, str]:
    """A probe's port and protocol, validated; the protocol upper-cased."""
    proto = protocol.upper()
    if proto not in PROTOCOLS:
        raise NetpolError(f"protocol {protocol!r} is not one NetworkPolicy knows "
                          f"(fix: use one of {', '.join(PROTOCOLS)})")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise NetpolError(f"port {port!r} is not a port number (fix: give 1-65535)")
    return port, proto


def check_connection(cluster: PolicyCluster, source: Endpoint, destination: Endpoint,
                     port: int, protocol: str = "TCP") -> Verdict:
    """The verdict for a new connection from `source` to `destination` on port/protocol."""
    port, protocol = check_port(port, protocol)
    egress = check_direction(cluster, EGRESS, source, destination, destination, port, protocol)
    ingress = check_direction(cluster, INGRESS, destination, source, destination, port, protocol)
    loopback = source.pod is not None and source.pod is destination.pod
    return Verdict(source.name, destination.name, port, protocol, egress, ingress, loopback)


def describe_policy(policy: NetworkPolicy) -> str:
    """One line naming what a policy selects and isolates (for listings and comments)."""
    sel = render_selector(policy.pod_selector) or "all pods"
    return (f"NetworkPolicy {policy.meta.namespace}/{policy.meta.name}: selects {sel}; "
            f"types {', '.join(effective_policy_types(policy))}")


__all__: Sequence[str] = (
    "EGRESS", "INGRESS", "PROTOCOLS", "NetpolError", "PolicyCluster", "Endpoint", "RuleRef",
    "DirectionVerdict", "Verdict", "build_cluster", "resolve_endpoint", "effective_policy_types",
    "policy_selects", "isolating_policies", "ip_in_block", "peer_matches", "resolve_named_port",
    "port_matches", "check_direction", "check_port", "check_connection", "describe_policy",
)
