"""Builders and the comparison helper of kube-proxy's own proxier_test.go.

makeTestService / makeTestEndpointSlice / NewFakeProxier become Python
builders; sortIPTablesRules (with iptablestest.ParseIPTablesDump and
IPTablesDump.String) becomes `sort_iptables_rules`, so a golden dump copied
from the Go test compares byte for byte with our renderer's output after the
very same normalisation.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Optional

from labkit.controllers.kube_proxy.config import (
    CT_STATE_INVALID_DROPPED,
    LOCALHOST_NODEPORT_ACCEPTED,
    HostFeatures,
    KubeProxyConfig,
)
from labkit.controllers.kube_proxy.iptables import render_iptables
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    LoadBalancerIngress,
    ObjectMeta,
    Service,
    ServicePort,
)

# NewFakeProxier's world (proxier_test.go "Conventions for tests").
TEST_NODE_NAME = "test-node"
TEST_NODE_IP = "192.168.0.2"
TEST_NODE_IPV6 = "2001:db8::1"
# The fake network interfaces: lo and eth0.
TEST_LOCAL_ADDRESSES = ("127.0.0.1", "::1", "192.168.0.2", "192.168.1.2", "192.168.99.11",
                        "2001:db8::1", "2001:db8:1::2")
FAKE_MASQUERADE_MARK = "0x4000"  # NewFakeProxier sets masqueradeMark directly


def fake_config(ip_family: str = "IPv4", **overrides: Any) -> KubeProxyConfig:
    """NewFakeProxier's settings: detect-local by pod CIDR 10.0.0.0/8 (fd00:10::/64)."""
    values: dict[str, Any] = dict(
        cluster_cidr="fd00:10::/64" if ip_family == "IPv6" else "10.0.0.0/8",
        detect_local_mode="ClusterCIDR",
        masquerade_mark=FAKE_MASQUERADE_MARK,
        localhost_node_ports=True,
    )
    values.update(overrides)
    return KubeProxyConfig(**values)


# The newest proxier_test.go ensures both nfacct counters; the 1.28-era test
# file predates nfacct. iptablestest.NewFake() has no --random-fully.
NEW_FAKE_HOST = HostFeatures(random_fully=False, nfacct=frozenset(
    {CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORT_ACCEPTED}))
OLD_FAKE_HOST = HostFeatures(random_fully=False, nfacct=frozenset())


def fake_render(services, slices, *, ip_family: str = "IPv4", config: Optional[KubeProxyConfig] = None,
                host: HostFeatures = OLD_FAKE_HOST):
    return render_iptables(
        services, slices, node_name=TEST_NODE_NAME,
        node_ips=(TEST_NODE_IP, TEST_NODE_IPV6), local_addresses=TEST_LOCAL_ADDRESSES,
        config=config or fake_config(ip_family), host=host, ip_family=ip_family)


def make_service(namespace: str, name: str, *, ports=(), **fields: Any) -> Service:
    """makeTestService: an empty Service with the given spec fields."""
    return Service(meta=ObjectMeta(name=name, namespace=namespace), ports=tuple(ports), **fields)


def port(name: str, port: int, protocol: str = "TCP", node_port: int = 0,
         target_port: Any = 0) -> ServicePort:
    return ServicePort(port=port, protocol=protocol, name=name, node_port=node_port,
                       target_port=target_port or port)


def lb(*ips: str) -> tuple[LoadBalancerIngress, ...]:
    return tuple(LoadBalancerIngress(ip=ip) for ip in ips)


def ep(address: str, node: str = "", ready=None, serving=None, terminating=None) -> Endpoint:
    return Endpoint(addresses=(address,), node_name=node,
                    conditions=EndpointConditions(ready=ready, serving=serving,
                                                  terminating=terminating))


def make_slice(namespace: str, name: str, slice_num: int, endpoints, ports,
               address_type: str = "IPv4") -> EndpointSlice:
    """makeTestEndpointSlice: slice "<name>-<n>" labelled for service <name>."""
    return EndpointSlice(
        meta=ObjectMeta(name=f"{name}-{slice_num}", namespace=namespace,
                        labels={SERVICE_NAME_LABEL: name}),
        address_type=address_type, endpoints=tuple(endpoints), ports=tuple(ports))


def eport(name: str, port: int, protocol: str = "TCP") -> EndpointPort:
    return EndpointPort(port=port, name=name, protocol=protocol)


# --- sortIPTablesRules -------------------------------------------------------

_WORD = re.compile(r'(?:^|\s)("[^"]*"|[^"]\S*)')


def _comment(rule: str) -> Optional[str]:
    words = [w.strip('"') for w in _WORD.findall(rule)]
    value = None
    i = 0
    while i < len(words):
        if words[i] == "-m" and i < len(words) - 1:
            i += 2
            continue
        if words[i] == "--comment" and i + 1 < len(words):
            value = words[i + 1]
            i += 2
            continue
        i += 1
    return value


def _service_name(comment: str) -> str:
    cut = [i for i in (comment.find(" "), comment.find(":")) if i != -1]
    return comment[:min(cut)] if cut else comment


def _by_service_name(a: str, b: str) -> int:
    ca, cb = _comment(a), _comment(b)
    if ca is None or cb is None:
        return 0
    na, nb = _service_name(ca), _service_name(cb)
    return -1 if na < nb else (1 if nb < na else 0)


def _nat_services_order(a: str, b: str) -> int:
    ca, cb = _comment(a), _comment(b)
    a_last = ca is not None and "must be the last rule" in ca
    b_last = cb is not None and "must be the last rule" in cb
    if a_last and b_last:
        return 0
    if a_last:
        return 1
    if b_last:
        return -1
    return _by_service_name(a, b)


def _chain_key(name: str) -> tuple:
    if name == "KUBE-NODEPORTS":
        return (0, "")
    if name == "KUBE-SERVICES":
        return (1, "")
    return (2 if name.startswith("KUBE-") else 3, name)


def sort_iptables_rules(text: str) -> str:
    """Go's sortIPTablesRules(ParseIPTablesDump(text)).String()."""
    tables: list[tuple[str, list[str], dict[str, list[str]], list[str]]] = []
    state = "table"
    for raw in text.strip("\n").split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        while True:
            if state == "table":
                assert line.startswith("*"), line
                tables.append((line[1:], [], {}, []))
                state = "chains"
            elif state == "chains":
                m = re.match(r"^:([^ ]*) - \[([0-9]*):([0-9]*)\]$", line)
                if m is None:
                    state = "rules"
                    continue
                tables[-1][1].append(m.group(1))
                tables[-1][2][m.group(1)] = []
            else:
                name, chains, rules, deleted = tables[-1]
                if line.startswith("-A "):
                    rules[line.split(" ", 2)[1]].append(line)
                elif line.startswith("-X "):
                    deleted.append(line[3:])
                elif line == "COMMIT":
                    state = "table"
                else:
                    raise AssertionError(f"error parsing rule {line!r}")
            break
    assert state == "table", "no COMMIT line"
    out: list[str] = []
    for name, chains, rules, deleted in sorted(tables, key=lambda t: t[0]):
        chains = sorted(chains, key=_chain_key)
        for chain in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
            if chain in rules:
                cmp = _nat_services_order if (name, chain) == ("nat", "KUBE-SERVICES") \
                    else _by_service_name
                rules[chain] = sorted(rules[chain], key=functools.cmp_to_key(cmp))
        out.append(f"*{name}")
        out.extend(f":{c} - [0:0]" for c in chains)
        for c in chains:
            out.extend(rules[c])
        out.extend(f"-X {c}" for c in chains if c in deleted)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def chain_rules(text: str, table: str, chain: str) -> str:
    """assertIPTablesChainEqual's view: the raw rules of one chain, one per line."""
    current = ""
    lines = []
    for line in text.split("\n"):
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line.startswith(f"-A {chain} "):
            lines.append(line + "\n")
    return "".join(lines)
