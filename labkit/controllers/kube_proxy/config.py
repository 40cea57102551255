"""kube-proxy's settings, and the host facts it probes at start-up.

`KubeProxyConfig` holds what the iptables proxier reads from a
kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration; `HostFeatures` holds
what kube-proxy learns from the machine (does iptables know --random-fully,
is nf_conntrack_tcp_be_liberal set, which nfacct counters exist), so the
renderer stays a pure function of its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from labkit.controllers.kube_proxy.netaddr import parse_cidr_sloppy
from labkit.errors import ManifestError, Problem

# nfacct counter names (pkg/proxy/metrics).
CT_STATE_INVALID_DROPPED = "ct_state_invalid_dropped_pkts"
LOCALHOST_NODEPORT_ACCEPTED = "localhost_nps_accepted_pkts"
NFACCT_COUNTERS = frozenset({CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORT_ACCEPTED})

DETECT_LOCAL_MODES = ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix")


@dataclass(frozen=True)
class KubeProxyConfig:
    """What the iptables proxier is configured with.

    cluster_cidr: "" means no local-traffic detector (kube-proxy's NoOp
        detector); may hold one CIDR per family, comma-separated.
    detect_local_mode: "ClusterCIDR" (default when cluster_cidr is set),
        "NodeCIDR" (uses node_pod_cidrs), "BridgeInterface",
        "InterfaceNamePrefix", or "" for none.
    masquerade_mark: "" derives the mark from masquerade_bit exactly as
        kube-proxy does (fmt "%#08x": bit 14 -> "0x00004000"); set it only to
        reproduce a test that injects its own text.
    node_port_addresses: CIDRs; empty means every local address.
    """

    cluster_cidr: str = ""
    detect_local_mode: str = "ClusterCIDR"
    masquerade_all: bool = False
    masquerade_bit: int = 14
    masquerade_mark: str = ""
    localhost_node_ports: bool = True
    node_port_addresses: tuple[str, ...] = ()
    node_pod_cidrs: tuple[str, ...] = ()
    bridge_interface: str = ""
    interface_name_prefix: str = ""

    @property
    def mark(self) -> str:
        """The masquerade mark as kube-proxy prints it into its rules."""
        if self.masquerade_mark:
            return self.masquerade_mark
        return "0x%08x" % (1 << self.masquerade_bit)


@dataclass(frozen=True)
class HostFeatures:
    """What kube-proxy finds out about the node at start-up.

    The defaults describe this lab's nodes (iptables 1.8.9: --random-fully
    works; no nfacct counters, so the rules load into a bare namespace).
    """

    random_fully: bool = True
    tcp_be_liberal: bool = False
    nfacct: frozenset[str] = field(default_factory=frozenset)


# --- parsing a KubeProxyConfiguration --------------------------------------

_TOP_LEVEL = {
    "apiVersion", "kind", "featureGates", "clientConnection", "logging",
    "hostnameOverride", "bindAddress", "healthzBindAddress", "metricsBindAddress",
    "bindAddressHardFail", "enableProfiling", "showHiddenMetricsForVersion", "mode",
    "iptables", "ipvs", "nftables", "winkernel", "detectLocalMode", "detectLocal",
    "clusterCIDR", "nodePortAddresses", "oomScoreAdj", "conntrack", "configSyncPeriod",
    "portRange", "windowsRunAsService", "syncPeriod", "minSyncPeriod",
}
_IPTABLES = {"masqueradeAll", "masqueradeBit", "localhostNodePorts", "syncPeriod", "minSyncPeriod"}
_DETECT_LOCAL = {"bridgeInterface", "interfaceNamePrefix", "clusterCIDRs"}
_CONNTRACK = {
    "maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout", "tcpBeLiberal",
    "udpTimeout", "udpStreamTimeout",
}
API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"


def parse_kube_proxy_config(text: str, source: str) -> KubeProxyConfig:
    """Read a KubeProxyConfiguration YAML; every problem is reported at once."""
    obj = "KubeProxyConfiguration"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(
            [Problem(obj, "", f"is not valid YAML: {exc}".replace("\n", " "),
                     "check indentation and quoting")], source) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ManifestError([Problem(obj, "", "must be a YAML mapping",
                                     "start the file with 'apiVersion: " + API_VERSION + "'")], source)
    problems: list[Problem] = []

    def bad(path: str, message: str, fix: str = "") -> None:
        problems.append(Problem(obj, path, message, fix))

    def check_keys(mapping: dict, allowed: set[str], prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                bad(f"{prefix}{key}", "unknown field",
                    "remove it or check its spelling against kubeproxy.config.k8s.io/v1alpha1")

    def section(key: str) -> dict:
        value = doc.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            bad(key, f"must be a mapping, not {_kind_of(value)}")
            return {}
        return value

    def typed(mapping: dict, key: str, path: str, kind: type, default: Any) -> Any:
        if key not in mapping or mapping[key] is None:
            return default
        value = mapping[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            bad(path, f"must be {_type_name(kind)}, not {_kind_of(value)} {value!r}")
            return default
        return value

    check_keys(doc, _TOP_LEVEL, "")
    api_version = doc.get("apiVersion")
    if api_version is not None and api_version != API_VERSION:
        bad("apiVersion", f"is {api_version!r}", f"use {API_VERSION}")
    kind = doc.get("kind")
    if kind is not None and kind != KIND:
        bad("kind", f"is {kind!r}", f"use {KIND}")

    ipt = section("iptables")
    check_keys(ipt, _IPTABLES, "iptables.")
    masquerade_all = typed(ipt, "masqueradeAll", "iptables.masqueradeAll", bool, False)
    localhost = typed(ipt, "localhostNodePorts", "iptables.localhostNodePorts", bool, True)
    bit = typed(ipt, "masqueradeBit", "iptables.masqueradeBit", int, 14)
    if not 0 <= bit <= 31:
        bad("iptables.masqueradeBit", f"is {bit}; it must be between 0 and 31",
            "use 14, kube-proxy's default")
        bit = 14

    conntrack = section("conntrack")
    check_keys(conntrack, _CONNTRACK, "conntrack.")
    detect = section("detectLocal")
    check_keys(detect, _DETECT_LOCAL, "detectLocal.")
    bridge = typed(detect, "bridgeInterface", "detectLocal.bridgeInterface", str, "")
    prefix = typed(detect, "interfaceNamePrefix", "detectLocal.interfaceNamePrefix", str, "")

    cluster_cidr = typed(doc, "clusterCIDR", "clusterCIDR", str, "")
    cidrs = [c.strip() for c in cluster_cidr.split(",") if c.strip()]
    for c in cidrs:
        if parse_cidr_sloppy(c) is None:
            bad("clusterCIDR", f"{c!r} is not a CIDR", "write it like 10.244.0.0/16")
    if len(cidrs) > 2:
        bad("clusterCIDR", "holds more than two CIDRs", "give at most one IPv4 and one IPv6 CIDR")

    mode = typed(doc, "detectLocalMode", "detectLocalMode", str, "")
    if mode and mode not in DETECT_LOCAL_MODES:
        bad("detectLocalMode", f"is {mode!r}", "use one of " + ", ".join(DETECT_LOCAL_MODES))
    if not mode:
        mode = "ClusterCIDR"  # kube-proxy's default
    if mode == "BridgeInterface" and not bridge:
        bad("detectLocal.bridgeInterface", "is required when detectLocalMode is BridgeInterface",
            "name the bridge, e.g. cbr0")
    if mode == "InterfaceNamePrefix" and not prefix:
        bad("detectLocal.interfaceNamePrefix", "is required when detectLocalMode is InterfaceNamePrefix",
            "give the pod interface prefix, e.g. veth")

    npa = doc.get("nodePortAddresses")
    node_port_addresses: tuple[str, ...] = ()
    if npa is not None:
        if not isinstance(npa, list):
            bad("nodePortAddresses", f"must be a list of CIDRs, not {_kind_of(npa)}")
        else:
            good = []
            for i, c in enumerate(npa):
                if not isinstance(c, str):
                    bad(f"nodePortAddresses[{i}]", f"must be a string, not {_kind_of(c)}")
                elif c == "primary":
                    good.append(c)
                elif parse_cidr_sloppy(c) is None:
                    bad(f"nodePortAddresses[{i}]", f"{c!r} is not a CIDR",
                        "write it like 192.168.0.0/24, or 'primary'")
                else:
                    good.append(c)
            node_port_addresses = tuple(good)

    if problems:
        raise ManifestError(problems, source)
    return KubeProxyConfig(
        cluster_cidr=",".join(cidrs),
        detect_local_mode=mode,
        masquerade_all=masquerade_all,
        masquerade_bit=bit,
        localhost_node_ports=localhost,
        node_port_addresses=node_port_addresses,
        bridge_interface=bridge,
        interface_name_prefix=prefix,
    )


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", str: "a string"}[kind]


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
