"""Packet-flow tables in the style of kube-proxy's runPacketFlowTests.

Each case names a source, destination and port, and the expected output:
the DNAT destinations (", "-joined over all branches), or the explicit
verdict ACCEPT / DROP / REJECT, or "" when no rule decided; plus whether
POSTROUTING masquerades. The Go test's own tracer skips conntrack, marks and
hooks; ours runs the kernel's hook order, so these are a stricter check.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from kube_proxy_fixtures import (TEST_NODE_NAME, ep, eport, fake_render, lb, make_service,
                                 make_slice, port)
from labkit.cli.trace_cmd import trace_rules
from labkit.dataplane.packet import Packet, tcp_syn
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import reply_packet, walk_packet

FIXTURES = Path(__file__).parent / "dataplane_fixtures"
NODE_IPS = ["192.168.0.2", "192.168.1.2", "192.168.99.11"]  # testNodeIPs (IPv4)
TEST_NODE_IP = "192.168.0.2"
EXTERNAL_CLIENT = "203.0.113.2"
EXTERNAL_CLIENT_BLOCKED = "203.0.113.130"


def flow(rules: str, src: str, dst: str, dport: int, proto: str = "tcp"):
    outcomes = trace_rules(rules, src, dst, dport, proto, NODE_IPS, all_branches=True)
    out: list[str] = []
    for o in outcomes:
        value = o["destination"] or (o["verdict"] if o["explicit"] else None)
        if value and value not in out:
            out.append(value)
    return ", ".join(out), any(o["masquerade"] for o in outcomes)


TRACE_PACKET_CASES = [
    # name, source, destination, port, output, masq  (TestTracePacket)
    ("no match", "10.0.0.2", "10.0.0.3", 80, "", False),
    ("single endpoint", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80", False),
    ("multiple endpoints", "10.0.0.2", "172.30.0.44", 80, "10.180.0.4:80, 10.180.0.5:80", False),
    ("LOCAL, KUBE-MARK-MASQ", TEST_NODE_IP, "192.168.99.22", 80, "10.180.0.2:80", True),
    ("DROP", EXTERNAL_CLIENT, "192.168.99.22", 80, "DROP", False),
    ("ACCEPT (NodePortHealthCheck)", TEST_NODE_IP, TEST_NODE_IP, 30000, "ACCEPT", False),
    ("REJECT", "10.0.0.2", "172.30.0.46", 80, "REJECT", False),
    # beyond the Go table, on the same rules:
    ("LB source range allowed", EXTERNAL_CLIENT, "5.6.7.8", 80, "10.180.0.3:80", True),
    # The Go tracer runs KUBE-PROXY-FIREWALL by hand; these rules never jump to it
    # (no FORWARD/INPUT rule does), so on a real kernel the blocked client is
    # not dropped. The rendered rules below do jump to it, and do drop.
    ("LB source range blocked: no jump", EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "", False),
    ("NodePort from outside", EXTERNAL_CLIENT, TEST_NODE_IP, 3003, "10.180.0.3:80", True),
    ("hairpin", "10.180.0.1", "172.30.0.41", 80, "10.180.0.1:80", True),
]


@pytest.mark.parametrize("name,src,dst,dport,output,masq", TRACE_PACKET_CASES,
                         ids=[c[0] for c in TRACE_PACKET_CASES])
def test_trace_packet_fixture(name, src, dst, dport, output, masq):
    rules = (FIXTURES / "tracepacket.rules").read_text()
    assert flow(rules, src, dst, dport) == (output, masq)


# --- on the renderer's output ------------------------------------------------------


def svc_port(n=80, node_port=0, proto="TCP"):
    return port("p80" if proto == "TCP" else "dns", n, proto, node_port=node_port)


def render(services, slices) -> str:
    return fake_render(services, slices).full_text


@pytest.fixture(scope="module")
def cluster_rules() -> str:
    """One service per feature the issue lists, rendered by our kube-proxy."""
    services = [
        make_service("ns1", "one", ports=[svc_port()], cluster_ip="172.30.0.41"),
        make_service("ns1", "three", ports=[svc_port()], cluster_ip="172.30.0.42"),
        make_service("ns1", "empty", ports=[svc_port(node_port=3001)], type="NodePort",
                     cluster_ip="172.30.0.43"),
        make_service("ns1", "np", ports=[svc_port(node_port=3002)], type="NodePort",
                     cluster_ip="172.30.0.44"),
        make_service("ns1", "lb", ports=[svc_port(node_port=3003)], type="LoadBalancer",
                     cluster_ip="172.30.0.45", load_balancer_ingress=lb("5.6.7.8"),
                     load_balancer_source_ranges=("203.0.113.0/25",),
                     external_traffic_policy="Cluster"),
        make_service("ns1", "local", ports=[svc_port(node_port=3004)], type="LoadBalancer",
                     cluster_ip="172.30.0.46", load_balancer_ingress=lb("1.2.3.4"),
                     external_traffic_policy="Local", health_check_node_port=30000),
        make_service("ns1", "remote", ports=[svc_port(node_port=3005)], type="LoadBalancer",
                     cluster_ip="172.30.0.47", load_balancer_ingress=lb("1.2.3.5"),
                     external_traffic_policy="Local", health_check_node_port=30001),
        make_service("ns1", "dns", ports=[svc_port(53, proto="UDP")], cluster_ip="172.30.0.10"),
    ]
    p80 = [eport("p80", 80)]
    slices = [
        make_slice("ns1", "one", 1, [ep("10.180.0.1")], p80),
        make_slice("ns1", "three", 1, [ep("10.180.0.1"), ep("10.180.0.2"), ep("10.180.0.3")], p80),
        make_slice("ns1", "np", 1, [ep("10.180.0.4")], p80),
        make_slice("ns1", "lb", 1, [ep("10.180.0.5")], p80),
        make_slice("ns1", "local", 1, [ep("10.180.0.6", node=TEST_NODE_NAME),
                                       ep("10.180.2.6", node="node2")], p80),
        make_slice("ns1", "remote", 1, [ep("10.180.2.7", node="node2")], p80),
        make_slice("ns1", "dns", 1, [ep("10.180.0.53")], [eport("dns", 53, "UDP")]),
    ]
    return render(services, slices)


RENDERED_CASES = [
    ("pod to ClusterIP, 1 endpoint", "10.0.0.2", "172.30.0.41", 80, "tcp", "10.180.0.1:80", False),
    ("pod to ClusterIP, 3 endpoints", "10.0.0.2", "172.30.0.42", 80, "tcp",
     "10.180.0.1:80, 10.180.0.2:80, 10.180.0.3:80", False),
    ("hairpin: endpoint to its own service", "10.180.0.1", "172.30.0.41", 80, "tcp",
     "10.180.0.1:80", True),
    ("host to ClusterIP masquerades", TEST_NODE_IP, "172.30.0.41", 80, "tcp", "10.180.0.1:80", True),
    ("no endpoints: ClusterIP", "10.0.0.2", "172.30.0.43", 80, "tcp", "REJECT", False),
    ("no endpoints: NodePort from outside", EXTERNAL_CLIENT, TEST_NODE_IP, 3001, "tcp",
     "REJECT", False),
    ("NodePort from outside", EXTERNAL_CLIENT, TEST_NODE_IP, 3002, "tcp", "10.180.0.4:80", True),
    ("LoadBalancer, allowed source", EXTERNAL_CLIENT, "5.6.7.8", 80, "tcp", "10.180.0.5:80", True),
    ("LoadBalancer, blocked source", EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "tcp", "DROP", False),
    ("eTP Local: outside to LB keeps the client IP", EXTERNAL_CLIENT, "1.2.3.4", 80, "tcp",
     "10.180.0.6:80", False),
    ("eTP Local: pod to LB uses every endpoint", "10.0.0.2", "1.2.3.4", 80, "tcp",
     "10.180.0.6:80, 10.180.2.6:80", False),
    ("eTP Local, no local endpoint: dropped", EXTERNAL_CLIENT, "1.2.3.5", 80, "tcp", "DROP", False),
    ("UDP to a DNS ClusterIP", "10.0.0.2", "172.30.0.10", 53, "udp", "10.180.0.53:53", False),
    ("UDP does not match the TCP port", "10.0.0.2", "172.30.0.10", 53, "tcp", "", False),
]


@pytest.mark.parametrize("name,src,dst,dport,proto,output,masq", RENDERED_CASES,
                         ids=[c[0] for c in RENDERED_CASES])
def test_rendered_flows(cluster_rules, name, src, dst, dport, proto, output, masq):
    assert flow(cluster_rules, src, dst, dport, proto) == (output, masq)


def test_three_endpoints_each_one_third(cluster_rules):
    outcomes = trace_rules(cluster_rules, "10.0.0.2", "172.30.0.42", 80, "tcp", NODE_IPS,
                           all_branches=True)
    assert [(o["destination"], round(o["probability"], 9)) for o in outcomes] == [
        ("10.180.0.1:80", 0.333333333), ("10.180.0.2:80", 0.333333333),
        ("10.180.0.3:80", 0.333333333)]


# --- session affinity and conntrack across a small lab ------------------------------


def affinity_rules() -> str:
    services = [make_service("ns1", "sticky", ports=[svc_port()], cluster_ip="172.30.0.50",
                             session_affinity="ClientIP", session_affinity_timeout=10800)]
    slices = [make_slice("ns1", "sticky", 1, [ep("10.180.0.1"), ep("10.180.0.2"),
                                              ep("10.180.0.3")], [eport("p80", 80)])]
    return render(services, slices)


def small_lab(rules: str) -> Topology:
    """client pod -- node (kube-proxy rules) -- three endpoint pods, routed veths."""
    t = Topology()
    t.add_namespace("node", forwarding=True, rules=rules)
    t.add_address("node", "lo", "192.168.0.2/32")
    for name, ip in (("client", "10.0.0.2"), ("ep1", "10.180.0.1"), ("ep2", "10.180.0.2"),
                     ("ep3", "10.180.0.3")):
        t.add_namespace(name)
        t.add_veth(name, "eth0", "node", f"veth-{name}")
        t.add_address(name, "eth0", f"{ip}/32")
        t.add_address("node", f"veth-{name}", "10.244.0.1/32")
        t.add_route(name, "default", via="10.244.0.1", dev="eth0", onlink=True)
        t.add_route("node", f"{ip}/32", dev=f"veth-{name}")
    return t


def test_session_affinity_second_connection_sticks():
    topo = small_lab(affinity_rules())
    for seed in range(12):
        state, rng = LabState(), random.Random(seed)
        first = walk_packet(topo, state, "client", tcp_syn("10.0.0.2", "172.30.0.50", 40000, 80),
                            now=100.0, rng=rng)
        second = walk_packet(topo, state, "client", tcp_syn("10.0.0.2", "172.30.0.50", 40001, 80),
                             now=160.0, rng=rng)
        assert first.verdict == second.verdict == "delivered"
        assert second.ns == first.ns, f"seed {seed}: {first.ns} then {second.ns}"
        hit = [e for e in second.trace if e.rule is not None and "--rcheck" in e.rule.canonical]
        assert len(hit) == 1 and second.decisions == ()  # no coin: the recent table decided


def test_session_affinity_expires_after_timeout():
    topo = small_lab(affinity_rules())
    state = LabState()
    walk_packet(topo, state, "client", tcp_syn("10.0.0.2", "172.30.0.50", 40000, 80), now=0.0)
    late = walk_packet(topo, state, "client", tcp_syn("10.0.0.2", "172.30.0.50", 40001, 80),
                       now=10801.0)
    assert [e for e in late.trace if e.rule is not None and "--rcheck" in e.rule.canonical] == []
    assert len(late.decisions) >= 1


def test_tcp_reply_is_un_dnatted_by_conntrack():
    topo = small_lab(fake_render(
        [make_service("ns1", "one", ports=[svc_port()], cluster_ip="172.30.0.41")],
        [make_slice("ns1", "one", 1, [ep("10.180.0.2")], [eport("p80", 80)])]).full_text)
    state = LabState()
    syn = walk_packet(topo, state, "client", tcp_syn("10.0.0.2", "172.30.0.41", 40000, 80))
    assert (syn.verdict, syn.ns, syn.packet.src, syn.packet.dst, syn.packet.dport) == \
        ("delivered", "ep2", "10.0.0.2", "10.180.0.2", 80)
    synack = walk_packet(topo, state, "ep2", reply_packet(syn))
    assert synack.verdict == "delivered" and synack.ns == "client"
    assert synack.packet.summary() == "tcp 172.30.0.41:80 > 10.0.0.2:40000 [SYN,ACK]"
    assert [(h.ns, h.where) for h in synack.hops if "DNAT" in h.where] == [
        ("node", "POSTROUTING un-DNAT")]
    node_ct = [c for c in synack.conntrack if c.ns == "node"][0]
    assert node_ct.entry.render(0.0) == (
        "tcp      6 60 SYN_RECV src=10.0.0.2 dst=172.30.0.41 sport=40000 dport=80 "
        "src=10.180.0.2 dst=10.0.0.2 sport=80 dport=40000 mark=0 use=1")
    # the handshake's last ACK: nat chains are not consulted again
    ack = walk_packet(topo, state, "client",
                      Packet("tcp", "10.0.0.2", "172.30.0.41", 40000, 80, flags="ACK"))
    assert ack.ns == "ep2" and [e for e in ack.trace if e.table == "nat"] == []
    assert state.of("node").conntrack.render(1.0) == (
        "tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=172.30.0.41 sport=40000 dport=80 "
        "src=10.180.0.2 dst=10.0.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1\n")
