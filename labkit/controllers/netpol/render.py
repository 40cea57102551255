"""NetworkPolicy as filter rules for one node, the way a CNI's policy agent programs them.

One `*filter` table in iptables-restore form. The lab loads it whole with
the node's other rules (labkit.backends.netns.rules.merge_policy_first), and
the rule we follow is the real policy agents' one: the policy's jumps come
FIRST in INPUT and FORWARD, ahead of kube-proxy's. kube-router inserts its
KUBE-ROUTER-INPUT/FORWARD jumps at position 1 and moves them back to the top
at every sync (pkg/controllers/netpol, ensureTopLevelChains); Calico's
default ChainInsertMode "Insert" puts cali-FORWARD at the top too. Behind
kube-proxy's KUBE-FORWARD the policy would be skipped for every packet it
accepts: the masquerade-marked ones (0x4000: NodePort and LoadBalancer
traffic, a ClusterIP reached from outside the pod network).
Nothing is lost by going first: the policy only RETURNs or DROPs, so an
allowed packet goes on to kube-proxy's chains unchanged.

    FORWARD -> LABKIT-NP-FORWARD   replies (ESTABLISHED,RELATED) accepted first,
                                   then the source's egress, then the
                                   destination's ingress
    INPUT   -> LABKIT-NP-INPUT     a local pod talking to this node: egress only
    LABKIT-NP-EGRESS   -s <pod IP> -> LABKIT-NP-E-<hash>   one per isolated local pod
    LABKIT-NP-INGRESS  -d <pod IP> -> LABKIT-NP-I-<hash>

A per-pod chain RETURNs for every (peer, port) some rule of its isolating
policies allows, and ends in DROP: a denied SYN is dropped, never answered. A
pod that no policy isolates in a direction gets no chain for it. A pod's own
node reaches it through OUTPUT, which these rules never touch (the API's
"the node may always reach its pods").

Selectors become the pod IPs they select, ipBlock.except becomes the CIDRs
left after removing the exceptions, and named ports become numbers looked up
on the destination pod. Every rule carries a comment naming the policy, rule,
peer and port it implements. Chain names are stable: the prefix and the first
16 characters of base32(sha256(namespace/name)), as kube-proxy names its
chains. Only matches the simulation interprets are used: -s/-d, -p, --dport,
-m multiport --dports, -m comment, -m conntrack --ctstate.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Optional, Sequence

from labkit.controllers.netpol.evaluate import (
    EGRESS,
    INGRESS,
    Endpoint,
    PolicyCluster,
    ip_in_block,
    isolating_policies,
    peer_matches,
    resolve_named_port,
)
from labkit.model.objects import IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod

CHAIN_PREFIX = "LABKIT-NP-"
NP_FORWARD = "LABKIT-NP-FORWARD"
NP_INPUT = "LABKIT-NP-INPUT"
NP_EGRESS = "LABKIT-NP-EGRESS"
NP_INGRESS = "LABKIT-NP-INGRESS"
POD_CHAIN_PREFIX = {INGRESS: "LABKIT-NP-I-", EGRESS: "LABKIT-NP-E-"}

# (built-in chain, our chain, comment): the jumps into the policy rules, in order.
JUMPS: tuple[tuple[str, str, str], ...] = (
    ("INPUT", NP_INPUT, "labkit network policy: local pods to this node"),
    ("FORWARD", NP_FORWARD, "labkit network policy"),
)

# The fixed part of the table: (chain, matches, target, comment), one loop renders them.
_REPLIES = "-m conntrack --ctstate RELATED,ESTABLISHED"
FIXED_RULES: tuple[tuple[str, str, str, str], ...] = (
    (NP_FORWARD, _REPLIES, "ACCEPT", "replies of allowed connections"),
    (NP_FORWARD, "", NP_EGRESS, "egress of the pods on this node"),
    (NP_FORWARD, "", NP_INGRESS, "ingress of the pods on this node"),
    (NP_INPUT, _REPLIES, "RETURN", "replies of allowed connections"),
    (NP_INPUT, "", NP_EGRESS, "egress of the pods on this node"),
)

BUILTIN = ("INPUT", "FORWARD", "OUTPUT")


def pod_chain_name(direction: str, namespace: str, name: str) -> str:
    """LABKIT-NP-I-/LABKIT-NP-E- + 16 base32 characters of sha256("namespace/name")."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return POD_CHAIN_PREFIX[direction] + base64.b32encode(digest).decode()[:16]


@dataclass(frozen=True)
class _Address:
    """Where a peer is: a CIDR (any address in it) or one pod (its IP, and its ports by name)."""

    cidr: str
    pod: Optional[Pod] = None


def _ipv4(pod: Pod) -> str:
    for ip in pod.pod_ips or ((pod.pod_ip,) if pod.pod_ip else ()):
        if ipaddress.ip_address(ip).version == 4:
            return ip
    return ""


def _cluster_pods(cluster: PolicyCluster) -> list[Pod]:
    return sorted((p for p in cluster.pods if not p.host_network and _ipv4(p)),
                  key=lambda p: (p.meta.namespace, p.meta.name))


def block_cidrs(block: IPBlock) -> list[str]:
    """cidr minus every except, as the smallest list of IPv4 CIDRs (empty for IPv6 blocks)."""
    net = ipaddress.ip_network(block.cidr, strict=False)
    if net.version != 4:
        return []
    nets = [net]
    for exc in block.except_:
        ex = ipaddress.ip_network(exc, strict=False)
        out = []
        for n in nets:
            if ex.version == 4 and n.overlaps(ex):
                if ex.supernet_of(n):
                    continue
                out.extend(n.address_exclude(ex))
            else:
                out.append(n)
        nets = out
    return [str(n) for n in sorted(nets)]


def _peer_addresses(cluster: PolicyCluster, policy: NetworkPolicy, peer: NetworkPolicyPeer,
                    pods: list[Pod], want_pods: bool) -> list[_Address]:
    """The peer as addresses; want_pods asks for pods only (for named ports on a peer)."""
    if peer.ip_block is not None and not want_pods:
        return [_Address(c) for c in block_cidrs(peer.ip_block)]
    if peer.ip_block is not None:
        return [_Address(f"{_ipv4(p)}/32", p) for p in pods if ip_in_block(_ipv4(p), peer.ip_block)]
    return [_Address(f"{_ipv4(p)}/32", p) for p in pods
            if peer_matches(cluster, policy.meta.namespace, peer, Endpoint(_ipv4(p), p))]


def _port_match(np_port: NetworkPolicyPort, number: Optional[int]) -> str:
    proto = np_port.protocol.lower()
    if np_port.port is None:
        return f"-p {proto}"
    if isinstance(np_port.port, int) and np_port.end_port is not None and np_port.end_port != np_port.port:
        return f"-p {proto} -m multiport --dports {np_port.port}:{np_port.end_port}"
    return f"-p {proto} -m {proto} --dport {number if number is not None else np_port.port}"


def _quote(comment: str) -> str:
    return '"' + comment.replace("\\", "\\\\").replace('"', "'") + '"'


def _rule(chain: str, comment: str, matches: str, target: str) -> str:
    middle = f" {matches}" if matches else ""
    return f"-A {chain} -m comment --comment {_quote(comment)}{middle} -j {target}"


def _pod_chain_rules(cluster: PolicyCluster, pod: Pod, direction: str, chain: str,
                     policies: Sequence[NetworkPolicy], pods: list[Pod]) -> list[str]:
    """RETURN for everything the policies allow, then DROP."""
    addr_opt = "-s" if direction == INGRESS else "-d"
    where = "from" if direction == INGRESS else "to"
    lines: list[str] = []
    for policy in policies:
        pname = f"{policy.meta.namespace}/{policy.meta.name}"
        rules = (policy.ingress if direction == INGRESS else policy.egress) or ()
        for ri, rule in enumerate(rules):
            peer_list: list[tuple[str, Optional[NetworkPolicyPeer]]] = (
                [(f"{where}[{i}]", p) for i, p in enumerate(rule.peers)] if rule.peers
                else [(f"any peer (no {where})", None)])
            port_list: list[tuple[str, Optional[NetworkPolicyPort]]] = (
                [(f"ports[{i}]", p) for i, p in enumerate(rule.ports)] if rule.ports
                else [("any port (no ports)", None)])
            for peer_label, peer in peer_list:
                for port_label, np_port in port_list:
                    comment = f"{pname} {direction.lower()}[{ri}] {peer_label} {port_label}"
                    named = np_port is not None and isinstance(np_port.port, str)
                    lines += _allow_rules(cluster, policy, pod, direction, chain, comment, addr_opt,
                                          peer, np_port, named, pods)
    names = ", ".join(f"{p.meta.namespace}/{p.meta.name}" for p in policies)
    lines.append(_rule(chain, f"{pod.meta.namespace}/{pod.meta.name} {direction.lower()}: "
                       f"default deny (isolated by {names})", "", "DROP"))
    return lines


def _allow_rules(cluster, policy, pod, direction, chain, comment, addr_opt, peer, np_port, named,
                 pods) -> list[str]:
    # named ports: on ingress the destination is this pod; on egress each destination pod
    if named and direction == INGRESS:
        number = resolve_named_port(pod, np_port.port, np_port.protocol)
        if number is None:
            return []
        port_m = _port_match(np_port, number)
        addrs = _addresses(cluster, policy, peer, pods, want_pods=False)
        return [_rule(chain, comment, _join(a and f"{addr_opt} {a.cidr}", port_m), "RETURN")
                for a in addrs]
    if named:  # egress: only pods that have the named port, each with its own number
        out = []
        for a in _addresses(cluster, policy, peer, pods, want_pods=True):
            number = resolve_named_port(a.pod, np_port.port, np_port.protocol)
            if number is not None:
                out.append(_rule(chain, comment, _join(f"{addr_opt} {a.cidr}", _port_match(np_port, number)),
                                 "RETURN"))
        return out
    port_m = _port_match(np_port, None) if np_port is not None else ""
    return [_rule(chain, comment, _join(a and f"{addr_opt} {a.cidr}", port_m), "RETURN")
            for a in _addresses(cluster, policy, peer, pods, want_pods=False)]


def _addresses(cluster, policy, peer, pods, want_pods: bool) -> list[Optional[_Address]]:
    """[None] means "any address" (a rule without from/to)."""
    if peer is None:
        if want_pods:
            return [_Address(f"{_ipv4(p)}/32", p) for p in pods]
        return [None]
    return list(_peer_addresses(cluster, policy, peer, pods, want_pods))


def _join(*parts: Optional[str]) -> str:
    return " ".join(p for p in parts if p)


def render_netpol_iptables(cluster: PolicyCluster, node_name: str) -> str:
    """The node's NetworkPolicy filter table, as iptables-restore text (IPv4)."""
    pods = _cluster_pods(cluster)
    local = [p for p in pods if p.node_name == node_name]
    chains = [NP_FORWARD, NP_INPUT, NP_EGRESS, NP_INGRESS]
    dispatch: list[str] = []
    pod_rules: list[str] = []
    for direction, dispatch_chain, opt in ((EGRESS, NP_EGRESS, "-s"), (INGRESS, NP_INGRESS, "-d")):
        for pod in local:
            policies = isolating_policies(cluster, pod, direction)
            if not policies:
                continue
            chain = pod_chain_name(direction, pod.meta.namespace, pod.meta.name)
            chains.append(chain)
            names = ", ".join(f"{p.meta.namespace}/{p.meta.name}" for p in policies)
            dispatch.append(_rule(dispatch_chain, f"{pod.meta.namespace}/{pod.meta.name} "
                                  f"{direction.lower()}, isolated by {names}",
                                  f"{opt} {_ipv4(pod)}/32", chain))
            pod_rules += _pod_chain_rules(cluster, pod, direction, chain, policies, pods)
    lines = ["*filter"]
    lines += [f":{c} ACCEPT [0:0]" for c in BUILTIN]
    lines += [f":{c} - [0:0]" for c in chains]
    lines += [_rule(builtin, comment, "", target) for builtin, target, comment in JUMPS]
    lines += [_rule(chain, comment, matches, target) for chain, matches, target, comment in FIXED_RULES]
    lines += dispatch
    lines += pod_rules
    lines += ["COMMIT", ""]
    return "\n".join(lines)
