"""kube-proxy's iptables mode as a pure function: Services + EndpointSlices -> rules.

A line-by-line port of syncProxyRules (pkg/proxy/iptables/proxier.go, the
release with nfacct counters and KUBE-PROXY-FIREWALL) for one full sync on one
node. The order of steps and the text of every rule, comment and chain name
follow kube-proxy, so `restore_text` is byte-identical to what kube-proxy feeds
`iptables-restore --noflush` (up to the order in which services are visited,
which in kube-proxy is Go map order and here is sorted).

Three outputs:
  restore_text  the --noflush input (tables filter and nat);
  jump_rules    what kube-proxy installs separately with EnsureChain/EnsureRule
                (built-in chain jumps, KUBE-FIREWALL jumps, canary chains);
  full_text     one plain iptables-restore file that recreates the node's
                kube-proxy rules in an empty network namespace.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence

from labkit.controllers.kube_proxy.config import (
    CT_STATE_INVALID_DROPPED,
    LOCALHOST_NODEPORT_ACCEPTED,
    HostFeatures,
    KubeProxyConfig,
)
from labkit.controllers.kube_proxy.netaddr import parse_cidr_sloppy, parse_ip_sloppy
from labkit.controllers.kube_proxy.proxymodel import (
    build_endpoints_map,
    build_service_ports,
    categorize_endpoints,
    first_ip_of_family,
)
from labkit.errors import ManifestError, Problem
from labkit.model.objects import EndpointSlice, Service

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's anti-martian chain, duplicated by kube-proxy

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000

_NEW = ("-m", "conntrack", "--ctstate", "NEW")

# iptablesJumpChains then iptablesKubeletJumpChains, in kube-proxy's order:
# (table, target chain, built-in chain, comment, extra match args).
JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", KUBE_EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports", ()),
    ("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    ("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", KUBE_PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
    ("filter", KUBE_FIREWALL, "INPUT", "", ()),
    ("filter", KUBE_FIREWALL, "OUTPUT", "", ()),
)

# ipt.Monitor creates an empty canary chain in these tables.
CANARY_TABLES = ("mangle", "nat", "filter")

BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}
TABLE_ORDER = ("mangle", "filter", "nat")


@dataclass(frozen=True)
class JumpRule:
    """A rule kube-proxy keeps in a built-in chain with EnsureRule(Prepend, ...)."""

    table: str
    chain: str
    target: str
    comment: str = ""
    match: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The rule as an iptables-restore line."""
        parts = ["-A", self.chain, *self.match]
        if self.comment:
            parts += ["-m", "comment", "--comment", _quote(self.comment)]
        parts += ["-j", self.target]
        return " ".join(parts)


@dataclass(frozen=True)
class KubeProxyRuleset:
    """Everything kube-proxy programs on one node after a full sync.

    restore_text: kube-proxy's `iptables-restore --noflush` input (filter, nat).
    jump_rules: the EnsureRule jumps from built-in chains, in kernel order.
    ensured_chains: (table, chain) made with EnsureChain, canary chains included.
    full_text (computed on first use): one plain iptables-restore file giving an
        empty namespace exactly this node's kube-proxy rules.
    """

    restore_text: str
    jump_rules: tuple[JumpRule, ...]
    ensured_chains: tuple[tuple[str, str], ...]
    ip_family: str
    rule_count: int
    _tables: dict = field(repr=False, compare=False)

    @cached_property
    def full_text(self) -> str:
        return _full_text(self._tables, self.jump_rules, self.ensured_chains)


def _quote(comment: str) -> str:
    return f'"{comment}"' if (" " in comment or not comment) else comment


def _detector(config: KubeProxyConfig, family: str) -> tuple[str, str]:
    """(IfLocal, IfNotLocal) match text of the local-traffic detector; ("", "") = none."""
    mode = config.detect_local_mode
    want = 6 if family == "IPv6" else 4
    if mode in ("ClusterCIDR", "NodeCIDR"):
        source = config.cluster_cidr.split(",") if mode == "ClusterCIDR" else config.node_pod_cidrs
        for c in source:
            c = c.strip()
            net = parse_cidr_sloppy(c) if c else None
            if net is not None and net.version == want:
                return f"-s {c}", f"! -s {c}"
        return "", ""
    if mode == "BridgeInterface" and config.bridge_interface:
        return f"-i {config.bridge_interface}", f"! -i {config.bridge_interface}"
    if mode == "InterfaceNamePrefix" and config.interface_name_prefix:
        return f"-i {config.interface_name_prefix}+", f"! -i {config.interface_name_prefix}+"
    return "", ""


def _node_port_addresses(config: KubeProxyConfig, family: str, node_ips: Sequence[str]):
    """proxyutil.NewNodePortAddresses: (match_all, cidrs, contains IPv4 loopback)."""
    want = 6 if family == "IPv6" else 4
    cidrs = []
    for text in config.node_port_addresses:
        if text == "primary":
            ip = first_ip_of_family(node_ips, family)
            if ip is not None:
                cidrs.append(parse_cidr_sloppy(f"{ip}/{32 if want == 4 else 128}"))
            continue
        net = parse_cidr_sloppy(text)
        if net is not None and net.version == want:
            cidrs.append(net)
    if not cidrs:
        cidrs = [parse_cidr_sloppy("0.0.0.0/0" if want == 4 else "::/0")]
    loopback4 = parse_ip_sloppy("127.0.0.0")
    contains_loopback = any(
        n.version == 4 and (n.network_address.is_loopback or loopback4 in n) for n in cidrs)
    match_all = any(n.prefixlen == 0 for n in cidrs)
    return match_all, cidrs, contains_loopback


def render_iptables(
    services: Sequence[Service],
    endpoint_slices: Sequence[EndpointSlice],
    *,
    node_name: str,
    node_ips: Sequence[str] = (),
    local_addresses: Sequence[str] = (),
    config: KubeProxyConfig = KubeProxyConfig(),
    host: HostFeatures = HostFeatures(),
    ip_family: str = "IPv4",
    node_labels: Mapping[str, str] = {},
) -> KubeProxyRuleset:
    """The rules kube-proxy (iptables mode) programs on `node_name` after a full sync.

    node_ips: the node's addresses (the first of `ip_family` is kube-proxy's
        nodeIP, used for loadBalancerSourceRanges); local_addresses: every
        address on the node's interfaces, used to expand nodePortAddresses.
    """
    if ip_family not in ("IPv4", "IPv6"):
        raise ManifestError([Problem("render_iptables", "ip_family", f"is {ip_family!r}",
                                     "use IPv4 or IPv6")])
    # Rendering allocates hundreds of thousands of short-lived, acyclic objects;
    # the cyclic collector would spend half the time rescanning them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _render(services, endpoint_slices, node_name, node_ips, local_addresses,
                       config, host, ip_family, node_labels)
    finally:
        if gc_was_enabled:
            gc.enable()


def _render(services, endpoint_slices, node_name, node_ips, local_addresses, config, host,
            ip_family, node_labels) -> KubeProxyRuleset:
    is_v6 = ip_family == "IPv6"
    mark = config.mark
    masq_mark = f"{mark}/{mark}"
    if_local, if_not_local = _detector(config, ip_family)
    match_all, np_cidrs, contains_loopback = _node_port_addresses(config, ip_family, node_ips)
    localhost_node_ports = config.localhost_node_ports and contains_loopback
    node_ip_text = first_ip_of_family(node_ips, ip_family)
    node_ip = parse_ip_sloppy(node_ip_text) if node_ip_text else None
    nfacct_localhost = LOCALHOST_NODEPORT_ACCEPTED in host.nfacct and not is_v6
    masquerade_all = config.masquerade_all

    filter_chains = [f":{c} - [0:0]" for c in (
        KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL)]
    filter_rules: list[str] = []
    nat_chains = [f":{c} - [0:0]" for c in (
        KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ)]
    nat_rules = [
        f"-A KUBE-POSTROUTING -m mark ! --mark {masq_mark} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {mark}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
        " -j MASQUERADE" + (" --random-fully" if host.random_fully else ""),
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {mark}",
    ]
    if not is_v6 and localhost_node_ports:
        filter_chains.append(f":{KUBE_FIREWALL} - [0:0]")
        filter_rules.append(
            '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections"'
            " -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"
            " -j DROP")

    svc_ports = build_service_ports(services, ip_family)
    endpoints_map = build_endpoints_map(endpoint_slices, ip_family, node_name)
    total_endpoints = sum(len(endpoints_map.get(s.key, ())) for s in svc_ports)
    large = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
    probabilities: dict[int, str] = {}

    fa = filter_rules.append
    na = nat_rules.append
    nc = nat_chains.append
    for svc in svc_ports:
        proto = svc.proto
        name = svc.name_string
        all_eps = endpoints_map.get(svc.key, ())
        cluster_eps, local_eps, reachable, has_endpoints = categorize_endpoints(
            all_eps, svc, node_name, node_labels)
        svc_chain, svl_chain, fw_chain, ext_chain = (
            svc.svc_chain, svc.svl_chain, svc.fw_chain, svc.ext_chain)
        uses_cluster_chain = bool(cluster_eps) and svc.uses_cluster_endpoints()
        uses_local_chain = bool(local_eps) and svc.uses_local_endpoints()

        internal_chain = svc_chain
        has_internal = has_endpoints
        if svc.internal_policy_local:
            internal_chain = svl_chain
            if not local_eps:
                has_internal = False
        external_policy_chain = svc_chain
        has_external = has_endpoints
        if svc.external_policy_local:
            external_policy_chain = svl_chain
            if not local_eps:
                has_external = False
        uses_ext_chain = has_endpoints and svc.externally_accessible()
        lb_chain = ext_chain
        uses_fw_chain = has_endpoints and bool(svc.lb_vips) and bool(svc.lb_source_ranges)
        if uses_fw_chain:
            lb_chain = fw_chain

        internal_target = internal_comment = external_target = external_comment = ""
        if not has_endpoints:
            internal_target = external_target = "REJECT"
            internal_comment = external_comment = f'"{name} has no endpoints"'
        else:
            if not has_internal:
                internal_target = "DROP"
                internal_comment = f'"{name} has no local endpoints"'
            if not has_external:
                external_target = "DROP"
                external_comment = f'"{name} has no local endpoints"'

        port = svc.port
        cluster_ip = svc.cluster_ip
        cluster_match = (f'-m comment --comment "{name} cluster IP" -m {proto} -p {proto}'
                         f" -d {cluster_ip} --dport {port}")
        if has_internal:
            na(f"-A KUBE-SERVICES {cluster_match} -j {internal_chain}")
        else:
            fa(f"-A KUBE-SERVICES -m comment --comment {internal_comment} -m {proto} -p {proto}"
               f" -d {cluster_ip} --dport {port} -j {internal_target}")

        for eip in svc.external_ips:
            if has_endpoints:
                na(f'-A KUBE-SERVICES -m comment --comment "{name} external IP" -m {proto}'
                   f" -p {proto} -d {eip} --dport {port} -j {ext_chain}")
            if not has_external:
                fa(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment}"
                   f" -m {proto} -p {proto} -d {eip} --dport {port} -j {external_target}")

        for lbip in svc.lb_vips:
            if has_endpoints:
                na(f'-A KUBE-SERVICES -m comment --comment "{name} loadbalancer IP" -m {proto}'
                   f" -p {proto} -d {lbip} --dport {port} -j {lb_chain}")
            if uses_fw_chain:
                fa(f'-A KUBE-PROXY-FIREWALL -m comment --comment "{name} traffic not accepted by'
                   f' {fw_chain}" -m {proto} -p {proto} -d {lbip} --dport {port} -j DROP')
        if not has_external:
            for lbip in svc.lb_vips:
                fa(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment}"
                   f" -m {proto} -p {proto} -d {lbip} --dport {port} -j {external_target}")

        node_port = svc.node_port
        if node_port:
            if has_endpoints:
                if localhost_node_ports and nfacct_localhost:
                    na(f"-A KUBE-NODEPORTS -m comment --comment {name} -m {proto} -p {proto}"
                       f" -d 127.0.0.0/8 --dport {node_port} -m nfacct --nfacct-name"
                       f" {LOCALHOST_NODEPORT_ACCEPTED} -j {ext_chain}")
                na(f"-A KUBE-NODEPORTS -m comment --comment {name} -m {proto} -p {proto}"
                   f" --dport {node_port} -j {ext_chain}")
            if not has_external:
                fa(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment}"
                   f" -m addrtype --dst-type LOCAL -m {proto} -p {proto} --dport {node_port}"
                   f" -j {external_target}")

        if svc.health_check_node_port:
            fa(f'-A KUBE-NODEPORTS -m comment --comment "{name} health check node port"'
               f" -m tcp -p tcp --dport {svc.health_check_node_port} -j ACCEPT")

        if has_internal:
            if masquerade_all:
                na(f"-A {internal_chain} {cluster_match} -j KUBE-MARK-MASQ")
            elif if_not_local:
                na(f"-A {internal_chain} {cluster_match} {if_not_local} -j KUBE-MARK-MASQ")

        if uses_ext_chain:
            nc(f":{ext_chain} - [0:0]")
            if not svc.external_policy_local:
                na(f'-A {ext_chain} -m comment --comment "masquerade traffic for {name} external'
                   f' destinations" -j KUBE-MARK-MASQ')
            else:
                if if_local:
                    na(f'-A {ext_chain} -m comment --comment "pod traffic for {name} external'
                       f' destinations" {if_local} -j {svc_chain}')
                na(f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for {name}'
                   f' external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ')
                na(f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {name}'
                   f' external destinations" -m addrtype --src-type LOCAL -j {svc_chain}')
            if has_external:
                na(f"-A {ext_chain} -j {external_policy_chain}")

        if uses_fw_chain:
            nc(f":{fw_chain} - [0:0]")
            fw_args = f'-A {fw_chain} -m comment --comment "{name} loadbalancer IP"'
            allow_from_node = False
            for cidr in svc.lb_source_ranges:
                na(f"{fw_args} -s {cidr} -j {ext_chain}")
                if node_ip is not None and node_ip in cidr:
                    allow_from_node = True
            if allow_from_node:
                for lbip in svc.lb_vips:
                    na(f"{fw_args} -s {lbip} -j {ext_chain}")
            na(f'-A {fw_chain} -m comment --comment "other traffic to {name} will be dropped by'
               f' KUBE-PROXY-FIREWALL"')

        if uses_cluster_chain:
            nc(f":{svc_chain} - [0:0]")
            _write_service_to_endpoint_rules(na, name, svc, svc_chain, cluster_eps, large,
                                             probabilities)
        if uses_local_chain:
            nc(f":{svl_chain} - [0:0]")
            _write_service_to_endpoint_rules(na, name, svc, svl_chain, local_eps, large,
                                             probabilities)

        sep_comment = "" if large else f" -m comment --comment {name}"
        affinity = svc.session_affinity == "ClientIP"
        for ep in reachable:
            chain = ep.chain
            nc(f":{chain} - [0:0]")
            na(f"-A {chain}{sep_comment} -s {ep.ip} -j KUBE-MARK-MASQ")
            if affinity:
                na(f"-A {chain}{sep_comment} -m recent --name {chain} --set -m {proto} -p {proto}"
                   f" -j DNAT --to-destination {ep.endpoint}")
            else:
                na(f"-A {chain}{sep_comment} -m {proto} -p {proto}"
                   f" -j DNAT --to-destination {ep.endpoint}")

    nodeports_comment = ('-m comment --comment "kubernetes service nodeports; NOTE: this must be'
                         ' the last rule in this chain"')
    if match_all:
        dest = "-m addrtype --dst-type LOCAL"
        if is_v6:
            dest += " ! -d ::1/128"
        elif not localhost_node_ports:
            dest += " ! -d 127.0.0.0/8"
        na(f"-A KUBE-SERVICES {nodeports_comment} {dest} -j KUBE-NODEPORTS")
    else:
        matched = {}
        for text in local_addresses:
            ip = parse_ip_sloppy(text.split("/")[0])
            if ip is None:
                continue
            if any(ip.version == n.version and ip in n for n in np_cidrs):
                matched[str(ip)] = ip
        for key in sorted(matched, key=lambda k: (matched[k].version, matched[k].packed)):
            ip = matched[key]
            if ip.is_loopback and (is_v6 or not localhost_node_ports):
                continue
            na(f"-A KUBE-SERVICES {nodeports_comment} -d {ip} -j KUBE-NODEPORTS")

    if not host.tcp_be_liberal:
        rule = "-A KUBE-FORWARD -m conntrack --ctstate INVALID"
        if CT_STATE_INVALID_DROPPED in host.nfacct:
            rule += f" -m nfacct --nfacct-name {CT_STATE_INVALID_DROPPED}"
        fa(rule + " -j DROP")
    fa(f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark'
       f" {masq_mark} -j ACCEPT")
    fa('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack'
       " --ctstate RELATED,ESTABLISHED -j ACCEPT")

    restore_text = "\n".join([
        "*filter", *filter_chains, *filter_rules, "COMMIT",
        "*nat", *nat_chains, *nat_rules, "COMMIT", ""])

    jumps, ensured = _jump_rules()
    return KubeProxyRuleset(
        restore_text=restore_text,
        jump_rules=jumps,
        ensured_chains=ensured,
        ip_family=ip_family,
        rule_count=len(filter_rules) + len(nat_rules) + len(jumps),
        _tables={"filter": (filter_chains, filter_rules), "nat": (nat_chains, nat_rules)},
    )


def _probability(n: int, cache: dict[int, str]) -> str:
    p = cache.get(n)
    if p is None:
        p = cache[n] = "%0.10f" % (1.0 / n)
    return p


def _write_service_to_endpoint_rules(na, name: str, svc, chain: str, endpoints, large: bool,
                                     probabilities: dict[int, str]) -> None:
    """writeServiceToEndpointRules: affinity checks first, then the random spread."""
    if svc.session_affinity == "ClientIP":
        seconds = svc.sticky_seconds
        for ep in endpoints:
            comment = "" if large else f' -m comment --comment "{name} -> {ep.endpoint}"'
            na(f"-A {chain}{comment} -m recent --name {ep.chain} --rcheck --seconds {seconds}"
               f" --reap -j {ep.chain}")
    n = len(endpoints)
    last = n - 1
    for i, ep in enumerate(endpoints):
        comment = "" if large else f' -m comment --comment "{name} -> {ep.endpoint}"'
        if i < last:
            na(f"-A {chain}{comment} -m statistic --mode random --probability"
               f" {_probability(n - i, probabilities)} -j {ep.chain}")
        else:
            na(f"-A {chain}{comment} -j {ep.chain}")


def _jump_rules() -> tuple[tuple[JumpRule, ...], tuple[tuple[str, str], ...]]:
    """The EnsureRule(Prepend) jumps in the order the kernel ends up holding them.

    Each is inserted at position 1, so a later jump in the same built-in chain
    ends up above an earlier one. kubelet installs its KUBE-FIREWALL jumps at
    start-up, before kube-proxy runs, so on a node those sit below kube-proxy's
    (kube-proxy's EnsureRule then finds them present and leaves them).
    """
    per_chain: dict[tuple[str, str], list[JumpRule]] = {}
    ensured: list[tuple[str, str]] = []
    kubelet_first = [j for j in JUMP_CHAINS if j[1] == KUBE_FIREWALL] + [
        j for j in JUMP_CHAINS if j[1] != KUBE_FIREWALL]
    for table, target, builtin, comment, match in kubelet_first:
        if (table, target) not in ensured:
            ensured.append((table, target))
        per_chain.setdefault((table, builtin), []).insert(
            0, JumpRule(table, builtin, target, comment, match))
    for table in CANARY_TABLES:
        ensured.append((table, KUBE_PROXY_CANARY))
    rules: list[JumpRule] = []
    for table in TABLE_ORDER:
        for builtin in BUILTIN_CHAINS[table]:
            rules.extend(per_chain.get((table, builtin), ()))
    return tuple(rules), tuple(ensured)


def _full_text(restore: dict, jumps: tuple[JumpRule, ...],
               ensured: tuple[tuple[str, str], ...]) -> str:
    lines: list[str] = []
    for table in TABLE_ORDER:
        chains, rules = restore.get(table, ([], []))
        lines.append(f"*{table}")
        lines.extend(f":{c} ACCEPT [0:0]" for c in BUILTIN_CHAINS[table])
        declared = set(chains)
        extra = [f":{c} - [0:0]" for t, c in ensured if t == table]
        lines.extend(c for c in extra if c not in declared)
        lines.extend(chains)
        lines.extend(j.text for j in jumps if j.table == table)
        lines.extend(rules)
        lines.append("COMMIT")
    lines.append("")
    return "\n".join(lines)
