"""kube-proxy iptables rules, byte for byte against kube-proxy's own tests.

Each golden file in tests/golden/kube_proxy/ is an expected dump copied from
kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go and carries the Go
test's name. The inputs below rebuild the same Services and EndpointSlices
with the Go test's builders; the comparison applies the Go test's own
normalisation (sortIPTablesRules) to our output only.

Two generations of proxier_test.go are used: the newest (nfacct counters
ensured by NewFakeProxier) and the 1.28-era file (no nfacct); HostFeatures
says which.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kube_proxy_fixtures import (
    NEW_FAKE_HOST,
    TEST_NODE_NAME,
    chain_rules,
    ep,
    eport,
    fake_config,
    fake_render,
    lb,
    make_service,
    make_slice,
    port,
    sort_iptables_rules,
)
from labkit.controllers.kube_proxy.config import (
    CT_STATE_INVALID_DROPPED,
    HostFeatures,
    KubeProxyConfig,
)
from labkit.controllers.kube_proxy.iptables import render_iptables
from labkit.controllers.kube_proxy.naming import endpoint_chain_name, port_proto_hash
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointSlice,
    LoadBalancerIngress,
    ObjectMeta,
)

GOLDEN = Path(__file__).parent / "golden" / "kube_proxy"


# --- inputs of the Go tests --------------------------------------------------

def overall_services(session_affinity: bool):
    """TestOverallIPTablesRules(WithMultipleServices): six service kinds."""
    svc5_extra = dict(session_affinity="ClientIP", session_affinity_timeout=10800) \
        if session_affinity else {}
    services = [
        make_service("ns1", "svc1", cluster_ip="172.30.0.41", ports=[port("p80", 80)]),
        make_service("ns2", "svc2", type="LoadBalancer", external_traffic_policy="Local",
                     cluster_ip="172.30.0.42", ports=[port("p80", 80, node_port=3001)],
                     load_balancer_ingress=lb("1.2.3.4"), external_ips=("192.168.99.22",),
                     health_check_node_port=30000),
        make_service("ns3", "svc3", type="NodePort", cluster_ip="172.30.0.43",
                     ports=[port("p80", 80, node_port=3003)]),
        make_service("ns4", "svc4", type="NodePort", cluster_ip="172.30.0.44",
                     external_ips=("192.168.99.33",), ports=[port("p80", 80, target_port=80)]),
        make_service("ns5", "svc5", type="LoadBalancer", external_traffic_policy="Cluster",
                     cluster_ip="172.30.0.45", ports=[port("p80", 80, node_port=3002)],
                     load_balancer_ingress=lb("5.6.7.8"), health_check_node_port=30000,
                     load_balancer_source_ranges=(" 203.0.113.0/25",), **svc5_extra),
        make_service("ns6", "svc6", type="ClusterIP", cluster_ip="172.30.0.46",
                     ports=[port("p80", 80, target_port=80)]),
    ]
    p80 = [eport("p80", 80)]
    slices = [
        make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], p80),
        make_slice("ns2", "svc2", 1, [ep("10.180.0.2")], p80),
        make_slice("ns3", "svc3", 1, [ep("10.180.0.3")], p80),
        make_slice("ns4", "svc4", 1, [ep("10.180.0.4"), ep("10.180.0.5", TEST_NODE_NAME)], p80),
        make_slice("ns5", "svc5", 1, [ep("10.180.0.3")], p80),
    ]
    return services, slices


def case_overall_new():
    return fake_render(*overall_services(True), host=NEW_FAKE_HOST)


def case_overall_old():
    return fake_render(*overall_services(False))


def case_load_balancer():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.0.41",
                       ports=[port("p80", 80, node_port=3001)],
                       load_balancer_ingress=lb("1.2.3.4", "5.6.7.8"),
                       load_balancer_source_ranges=("192.168.0.0/24", " 203.0.113.0/25"))
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], [eport("p80", 80)])
    return fake_render([svc], [es])


def case_node_port():
    svc = make_service("ns1", "svc1", type="NodePort", cluster_ip="172.30.0.41",
                       ports=[port("p80", 80, node_port=3001)])
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], [eport("p80", 80)])
    return fake_render([svc], [es])


def case_health_check_node_port():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.0.42",
                       ports=[port("p80", 80, node_port=3001)], health_check_node_port=30000,
                       external_traffic_policy="Local")
    return fake_render([svc], [], config=fake_config(node_port_addresses=("127.0.0.0/8",)))


def case_masquerade(random_fully: bool):
    return lambda: fake_render([], [], host=HostFeatures(random_fully=random_fully))


def case_external_traffic_policy_local():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.0.41",
                       ports=[port("p80", 80, node_port=3001)], health_check_node_port=30000,
                       external_ips=("192.168.99.11",), load_balancer_ingress=lb("1.2.3.4"),
                       external_traffic_policy="Local")
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1"), ep("10.180.2.1", TEST_NODE_NAME)],
                    [eport("p80", 80)])
    return fake_render([svc], [es])


def case_non_local_external_ips():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41", external_ips=("192.168.99.11",),
                       ports=[port("p80", 80, target_port=80)])
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1"), ep("10.180.2.1", TEST_NODE_NAME)],
                    [eport("p80", 80)])
    return fake_render([svc], [es])


def localhost_node_ports_case(ip_family: str, localhost: bool, node_port_addresses=()):
    """TestEnable/DisableLocalhostNodePorts*: NodePort eTP=Local, no local detector."""
    if ip_family == "IPv4":
        svc_ip, ips, family = "10.69.0.10", ("10.244.0.1", "10.244.2.1"), "IPv4"
    else:
        svc_ip, ips, family = "fd00:ab34::20", ("ff06::c1", "ff06::c2"), "IPv6"

    def run():
        svc = make_service("ns1", "svc1", type="NodePort", cluster_ip=svc_ip,
                           ports=[port("p80", 80, node_port=30001)],
                           external_traffic_policy="Local")
        es = make_slice("ns1", "svc1", 1, [ep(ips[0]), ep(ips[1], TEST_NODE_NAME)],
                        [eport("p80", 80)], address_type=family)
        config = fake_config(ip_family, cluster_cidr="", localhost_node_ports=localhost,
                             node_port_addresses=node_port_addresses)
        return fake_render([svc], [es], ip_family=ip_family, config=config)
    return run


def only_local_node_ports_case(local_detector: bool):
    def run():
        svc = make_service("ns1", "svc1", type="NodePort", cluster_ip="172.30.0.41",
                           ports=[port("p80", 80, node_port=3001)],
                           external_traffic_policy="Local")
        es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1"), ep("10.180.2.1", TEST_NODE_NAME)],
                        [eport("p80", 80)])
        config = fake_config(cluster_cidr="10.0.0.0/8" if local_detector else "",
                             localhost_node_ports=False,
                             node_port_addresses=("192.168.0.0/24", "2001:db8::/64"))
        return fake_render([svc], [es], config=config)
    return run


def case_sync_proxy_rules_repeated():
    services = [
        make_service("ns1", "svc1", type="ClusterIP", cluster_ip="172.30.0.41",
                     ports=[port("p80", 80)]),
        make_service("ns2", "svc2", type="ClusterIP", cluster_ip="172.30.0.42",
                     ports=[port("p8080", 8080)]),
    ]
    slices = [
        make_slice("ns1", "svc1", 1, [ep("10.0.1.1")], [eport("p80", 80)]),
        make_slice("ns2", "svc2", 1, [ep("10.0.2.1")], [eport("p8080", 8080)]),
    ]
    return fake_render(services, slices, host=NEW_FAKE_HOST)


def case_bad_ips():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.0.041",
                       ports=[port("p80", 80, node_port=3001)],
                       load_balancer_ingress=lb("1.2.3.004"), external_ips=("192.168.099.022",),
                       load_balancer_source_ranges=("203.0.113.000/025",))
    es = make_slice("ns1", "svc1", 1, [ep("10.180.00.001")], [eport("p80", 80)])
    return fake_render([svc], [es], host=NEW_FAKE_HOST)


GOLDEN_CASES = {
    "TestOverallIPTablesRules": case_overall_new,
    "TestOverallIPTablesRulesWithMultipleServices": case_overall_old,
    "TestLoadBalancer": case_load_balancer,
    "TestNodePort": case_node_port,
    "TestHealthCheckNodePort": case_health_check_node_port,
    "TestMasqueradeRule_randomFully_false": case_masquerade(False),
    "TestMasqueradeRule_randomFully_true": case_masquerade(True),
    "TestExternalTrafficPolicyLocal": case_external_traffic_policy_local,
    "TestNonLocalExternalIPs": case_non_local_external_ips,
    "TestEnableLocalhostNodePortsIPv4": localhost_node_ports_case("IPv4", True),
    "TestDisableLocalhostNodePortsIPv4": localhost_node_ports_case("IPv4", False),
    "TestDisableLocalhostNodePortsIPv4WithNodeAddress": localhost_node_ports_case(
        "IPv4", False, ("127.0.0.0/8",)),
    "TestEnableLocalhostNodePortsIPv6": localhost_node_ports_case("IPv6", True),
    "TestDisableLocalhostNodePortsIPv6": localhost_node_ports_case("IPv6", False),
    "TestOnlyLocalNodePorts": only_local_node_ports_case(True),
    "TestOnlyLocalNodePortsNoClusterCIDR": only_local_node_ports_case(False),
    "TestSyncProxyRulesRepeated": case_sync_proxy_rules_repeated,
    "TestBadIPs": case_bad_ips,
}


def test_every_golden_file_has_a_case():
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(GOLDEN_CASES)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_dump_from_proxier_test_go(name):
    expected = (GOLDEN / f"{name}.txt").read_text()
    result = GOLDEN_CASES[name]()
    assert sort_iptables_rules(result.restore_text) == expected


# --- single-chain expectations (assertIPTablesChainEqual) ---------------------

FORWARD_TAIL = (
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark '
    "0x4000/0x4000 -j ACCEPT\n"
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
    "--ctstate RELATED,ESTABLISHED -j ACCEPT\n")


@pytest.mark.parametrize("host, drop_rule", [
    (HostFeatures(random_fully=False), "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"),
    (HostFeatures(random_fully=False, nfacct=frozenset({CT_STATE_INVALID_DROPPED})),
     "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name "
     "ct_state_invalid_dropped_pkts -j DROP\n"),
    (HostFeatures(random_fully=False, tcp_be_liberal=True), ""),
], ids=["plain", "nfacct", "tcp_be_liberal"])
def test_drop_invalid_rule(host, drop_rule):
    """TestDropInvalidRule."""
    result = fake_render([], [], host=host)
    assert chain_rules(result.restore_text, "filter", "KUBE-FORWARD") == drop_rule + FORWARD_TAIL


FIREWALL_RULE = ('-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" '
                 "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate "
                 "RELATED,ESTABLISHED,DNAT -j DROP\n")


@pytest.mark.parametrize("family, localhost, addresses, expect_firewall", [
    ("IPv4", True, (), True),
    ("IPv4", False, (), False),
    ("IPv4", False, ("192.168.0.0/24", "127.0.0.1/32"), False),
    ("IPv4", False, ("192.168.0.0/24", "192.168.1.0/24", "2001:db8::/64"), False),
    ("IPv6", True, (), False),
    ("IPv6", False, (), False),
    ("IPv6", False, ("192.168.0.0/24", "192.168.1.0/24", "2001:db8::/64"), False),
])
def test_node_ports_kube_firewall(family, localhost, addresses, expect_firewall):
    """TestNodePorts: KUBE-FIREWALL holds the anti-martian rule only for IPv4 localhost NodePorts."""
    config = fake_config(family, localhost_node_ports=localhost, node_port_addresses=addresses)
    result = fake_render([], [], ip_family=family, config=config, host=NEW_FAKE_HOST)
    expected = FIREWALL_RULE if expect_firewall else ""
    assert chain_rules(result.restore_text, "filter", "KUBE-FIREWALL") == expected


def test_node_ports_addresses_pick_matching_local_ips():
    """TestNodePorts, multiple nodeport-addresses: one jump per matching node address."""
    config = fake_config(localhost_node_ports=False,
                         node_port_addresses=("192.168.0.0/24", "192.168.1.0/24", "2001:db8::/64"))
    result = fake_render([], [], config=config)
    assert chain_rules(result.restore_text, "nat", "KUBE-SERVICES") == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS\n'
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain" -d 192.168.1.2 -j KUBE-NODEPORTS\n')


# --- behaviour beyond the golden dumps --------------------------------------

def test_chain_names_are_kube_proxys_hashes():
    assert port_proto_hash("ns1/svc1:p80", "tcp") == "XPGD46QRK7WJZT7O"
    assert endpoint_chain_name("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_default_mark_uses_go_format_of_masquerade_bit():
    result = render_iptables([], [], node_name="n", config=KubeProxyConfig(masquerade_bit=14))
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000\n" in result.restore_text
    result = render_iptables([], [], node_name="n", config=KubeProxyConfig(masquerade_bit=0))
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00000001\n" in result.restore_text


def _one_service_rules(svc, slices, **kw):
    return fake_render([svc], slices, **kw).restore_text.splitlines()


def test_masquerade_all_marks_every_cluster_ip_packet():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41", ports=[port("p80", 80)])
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], [eport("p80", 80)])
    lines = _one_service_rules(svc, [es], config=fake_config(masquerade_all=True))
    assert ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp '
            "-p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ") in lines


def test_internal_traffic_policy_local_without_local_endpoints_drops():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.1.1", ports=[port("", 80)],
                       internal_traffic_policy="Local")
    es = make_slice("ns1", "svc1", 1, [ep("10.0.1.1", "node0", ready=True)], [eport("", 80)])
    lines = _one_service_rules(svc, [es])
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1 has no local endpoints" -m tcp -p tcp '
            "-d 172.30.1.1 --dport 80 -j DROP") in lines
    assert not any(line.startswith(":KUBE-SVC") or line.startswith(":KUBE-SEP") for line in lines)


def test_internal_traffic_policy_local_uses_svl_chain():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.1.1", ports=[port("", 80)],
                       internal_traffic_policy="Local")
    es = make_slice("ns1", "svc1", 1, [ep("10.0.1.1", TEST_NODE_NAME, ready=True),
                                      ep("10.0.1.2", "node1", ready=True)], [eport("", 80)])
    lines = _one_service_rules(svc, [es])
    svl = "KUBE-SVL-" + port_proto_hash("ns1/svc1", "tcp")
    assert [l for l in lines if l.startswith(f"-A {svl} ")] == [
        f'-A {svl} -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 '
        "--dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
        f'-A {svl} -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -j '
        + endpoint_chain_name("ns1/svc1", "tcp", "10.0.1.1:80"),
    ]


def _dnat_targets(lines):
    return sorted(l.rsplit(" ", 1)[1] for l in lines if "-j DNAT" in l)


def test_terminating_endpoints_are_a_fallback_only():
    """TestTerminatingEndpointsTrafficPolicyCluster: serving+terminating used only if none ready."""
    svc = make_service("ns1", "svc1", cluster_ip="172.30.1.1", ports=[port("", 80)])
    ready_and_terminating = make_slice("ns1", "svc1", 1, [
        ep("10.0.1.1", TEST_NODE_NAME, True, True, False),
        ep("10.0.1.3", "another-node", False, True, True),
        ep("10.0.1.4", "another-node", False, False, True),
    ], [eport("", 80)])
    assert _dnat_targets(_one_service_rules(svc, [ready_and_terminating])) == ["10.0.1.1:80"]
    only_terminating = make_slice("ns1", "svc1", 1, [
        ep("10.0.1.2", TEST_NODE_NAME, False, True, True),
        ep("10.0.1.4", "another-node", False, False, True),
        ep("10.0.1.5", "another-node", False, True, True),
    ], [eport("", 80)])
    assert _dnat_targets(_one_service_rules(svc, [only_terminating])) == [
        "10.0.1.2:80", "10.0.1.5:80"]
    none_usable = make_slice("ns1", "svc1", 1, [
        ep("10.0.1.5", TEST_NODE_NAME, False, False, True)], [eport("", 80)])
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp '
            "-d 172.30.1.1 --dport 80 -j REJECT") in _one_service_rules(svc, [none_usable])


def test_health_check_node_port_kept_when_only_terminating_local_endpoints():
    """TestHealthCheckNodePortWhenTerminating-like: the ACCEPT stays whatever the endpoints."""
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.1.1",
                       ports=[port("", 80, node_port=30080)], external_traffic_policy="Local",
                       health_check_node_port=30000, load_balancer_ingress=lb("1.2.3.4"))
    es = make_slice("ns1", "svc1", 1, [ep("10.0.1.2", TEST_NODE_NAME, False, True, True)],
                    [eport("", 80)])
    lines = _one_service_rules(svc, [es])
    assert ('-A KUBE-NODEPORTS -m comment --comment "ns1/svc1 health check node port" -m tcp -p tcp '
            "--dport 30000 -j ACCEPT") in lines
    assert _dnat_targets(lines) == ["10.0.1.2:80"]


def test_slices_merge_dedupe_sort_and_filter():
    """Endpoints merge across slices, match by port name and protocol, sort by "ip:port"."""
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41",
                       ports=[port("dns", 53, "UDP"), port("dns", 53, "TCP")])
    slices = [
        make_slice("ns1", "svc1", 1, [ep("10.0.0.10"), ep("10.0.0.9")], [eport("dns", 53, "UDP")]),
        make_slice("ns1", "svc1", 2, [ep("10.0.0.9"), ep("10.0.0.2")], [eport("dns", 53, "UDP")]),
        make_slice("ns1", "svc1", 3, [ep("fd00::1")], [eport("dns", 53, "UDP")],
                   address_type="IPv6"),
        EndpointSlice(meta=ObjectMeta(name="unlabelled", namespace="ns1"), address_type="IPv4",
                      endpoints=(Endpoint(addresses=("10.9.9.9",)),), ports=(eport("dns", 53, "UDP"),)),
    ]
    lines = _one_service_rules(svc, slices)
    udp_svc = "KUBE-SVC-" + port_proto_hash("ns1/svc1:dns", "udp")
    assert [l.split(" --comment ")[1].split('"')[1] for l in lines
            if l.startswith(f"-A {udp_svc} ") and "->" in l] == [
        "ns1/svc1:dns -> 10.0.0.10:53", "ns1/svc1:dns -> 10.0.0.2:53", "ns1/svc1:dns -> 10.0.0.9:53"]
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:dns has no endpoints" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 53 -j REJECT") in lines
    probabilities = [l.split("--probability ")[1].split()[0] for l in lines if "--probability" in l]
    assert probabilities == ["0.3333333333", "0.5000000000"]


def test_headless_and_external_name_services_are_skipped():
    services = [
        make_service("ns1", "headless", cluster_ip="None", ports=[port("p", 80)]),
        make_service("ns1", "ext", type="ExternalName", external_name="example.org",
                     cluster_ip="172.30.0.9", ports=[port("p", 80)]),
    ]
    base = fake_render([], []).restore_text
    assert fake_render(services, []).restore_text == base


def test_ipv6_renderer_ignores_ipv4_addresses():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="172.30.0.41",
                       cluster_ips=("172.30.0.41", "fd00:172:30::41"),
                       ports=[port("p80", 80, node_port=3001)],
                       external_ips=("192.168.99.11", "2001:db8:99::11"),
                       load_balancer_ingress=(LoadBalancerIngress(ip="1.2.3.4"),
                                              LoadBalancerIngress(ip="2001:db8:1::4")))
    slices = [make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], [eport("p80", 80)]),
              make_slice("ns1", "svc1", 2, [ep("fd00:10:180::1")], [eport("p80", 80)],
                         address_type="IPv6")]
    text = fake_render([svc], slices, ip_family="IPv6").restore_text
    assert "-d fd00:172:30::41 --dport 80" in text
    assert "-d 2001:db8:99::11 --dport 80" in text and "-d 2001:db8:1::4 --dport 80" in text
    assert "--to-destination [fd00:10:180::1]:80" in text
    for v4 in ("172.30.0.41", "192.168.99.11", "1.2.3.4", "10.180.0.1"):
        assert v4 not in text


def test_lb_ingress_in_proxy_mode_gets_no_rules():
    svc = make_service("ns1", "svc1", type="LoadBalancer", cluster_ip="10.20.30.41",
                       ports=[port("p80", 80, node_port=3001)],
                       load_balancer_ingress=(LoadBalancerIngress(ip="1.2.3.4", ip_mode="Proxy"),))
    es = make_slice("ns1", "svc1", 1, [ep("10.180.0.1")], [eport("p80", 80)])
    assert "1.2.3.4" not in fake_render([svc], [es]).restore_text


def test_large_cluster_mode_drops_endpoint_comments():
    """TestSyncProxyRulesLargeClusterMode: more than 1000 endpoints, no per-endpoint comments."""
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41", ports=[port("p80", 80)])
    eps = [ep(f"10.0.{i % 256}.{i // 256}") for i in range(1001)]
    es = make_slice("ns1", "svc1", 1, eps, [eport("p80", 80)])
    lines = fake_render([svc], [es], config=fake_config(masquerade_all=True)).restore_text.splitlines()
    assert ("-A KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80"
            in lines)


def test_topology_hints_prefer_same_zone():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41", ports=[port("p80", 80)])
    es = EndpointSlice(
        meta=ObjectMeta(name="svc1-1", namespace="ns1", labels={SERVICE_NAME_LABEL: "svc1"}),
        address_type="IPv4",
        endpoints=(Endpoint(addresses=("10.0.0.1",), hints_for_zones=("zone-a",)),
                   Endpoint(addresses=("10.0.0.2",), hints_for_zones=("zone-b",))),
        ports=(eport("p80", 80),))
    result = render_iptables([svc], [es], node_name="n", node_labels={
        "topology.kubernetes.io/zone": "zone-a"}, config=fake_config())
    assert _dnat_targets(result.restore_text.splitlines()) == ["10.0.0.1:80"]
    unlabeled = render_iptables([svc], [es], node_name="n", config=fake_config())
    assert _dnat_targets(unlabeled.restore_text.splitlines()) == ["10.0.0.1:80", "10.0.0.2:80"]


# --- jump rules and the loadable whole --------------------------------------

def test_jump_rules_in_kernel_order():
    result = render_iptables([], [], node_name="n")
    assert [(j.table, j.text) for j in result.jump_rules] == [
        ("filter", '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load '
                   'balancer firewall" -j KUBE-PROXY-FIREWALL'),
        ("filter", '-A INPUT -m comment --comment "kubernetes health check service ports" '
                   "-j KUBE-NODEPORTS"),
        ("filter", '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes '
                   'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'),
        ("filter", "-A INPUT -j KUBE-FIREWALL"),
        ("filter", '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load '
                   'balancer firewall" -j KUBE-PROXY-FIREWALL'),
        ("filter", '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
        ("filter", '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service '
                   'portals" -j KUBE-SERVICES'),
        ("filter", '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes '
                   'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'),
        ("filter", '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load '
                   'balancer firewall" -j KUBE-PROXY-FIREWALL'),
        ("filter", '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service '
                   'portals" -j KUBE-SERVICES'),
        ("filter", "-A OUTPUT -j KUBE-FIREWALL"),
        ("nat", '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        ("nat", '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        ("nat", '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
                "-j KUBE-POSTROUTING"),
    ]


def test_full_text_declares_every_chain_it_uses():
    services, slices = overall_services(True)
    result = fake_render(services, slices)
    declared: dict[str, set[str]] = {}
    table = ""
    for line in result.full_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            declared[table] = set()
        elif line.startswith(":"):
            declared[table].add(line[1:].split()[0])
        elif line.startswith("-A "):
            words = line.split()
            assert words[1] in declared[table], line
            target = words[words.index("-j") + 1] if "-j" in words else None
            if target and target.startswith("KUBE-"):
                assert target in declared[table], line
    assert declared["mangle"] == {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING",
                                  "KUBE-PROXY-CANARY"}
    assert "KUBE-PROXY-CANARY" in declared["nat"] and "KUBE-PROXY-CANARY" in declared["filter"]
    assert result.full_text.count("COMMIT\n") == 3


def test_bad_ip_family_is_a_learner_error():
    from labkit.errors import ManifestError
    with pytest.raises(ManifestError) as err:
        render_iptables([], [], node_name="n", ip_family="ipv4")
    assert str(err.value) == ("1 problem found:\n  - render_iptables: ip_family: is 'ipv4' "
                              "(fix: use IPv4 or IPv6)")


def test_endpoint_conditions_none_means_ready():
    svc = make_service("ns1", "svc1", cluster_ip="172.30.0.41", ports=[port("p80", 80)])
    es = make_slice("ns1", "svc1", 1, [Endpoint(addresses=("10.0.0.1",),
                                                conditions=EndpointConditions())],
                    [eport("p80", 80)])
    assert _dnat_targets(_one_service_rules(svc, [es])) == ["10.0.0.1:80"]
