"""Routing and links: bridges, forwarding off, missing neighbours, route checks."""
from __future__ import annotations

import pytest

from labkit.dataplane.packet import Packet, udp
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import walk_all_branches, walk_packet
from labkit.errors import ManifestError


def two_nodes(forwarding: bool = True) -> Topology:
    """node1 and node2 on a bridge in 'net'; pod-a behind node1."""
    t = Topology()
    t.add_namespace("net")
    t.add_bridge("net", "br0")
    for i, name in ((2, "node1"), (3, "node2")):
        t.add_namespace(name, forwarding=forwarding)
        t.add_veth(name, "eth0", "net", f"p-{name}")
        t.set_master("net", f"p-{name}", "br0")
        t.add_address(name, "eth0", f"172.18.0.{i}/16")
    t.add_namespace("pod-a")
    t.add_veth("pod-a", "eth0", "node1", "veth-a")
    t.add_address("pod-a", "eth0", "10.244.1.2/32")
    t.add_address("node1", "veth-a", "10.244.1.1/32")
    t.add_route("pod-a", "default", via="10.244.1.1", dev="eth0", onlink=True)
    t.add_route("node1", "10.244.1.2/32", dev="veth-a")
    t.add_route("node2", "10.244.1.0/24", via="172.18.0.2")
    return t


def test_packet_crosses_a_bridge_and_a_node():
    t = two_nodes()
    w = walk_packet(t, LabState(), "node2", udp("", "10.244.1.2", 5353, 53))
    assert (w.verdict, w.ns) == ("delivered", "pod-a")
    assert [(h.ns, h.where) for h in w.hops] == [
        ("node2", "sent"), ("node2", "out eth0"), ("node1", "in eth0"), ("node1", "out veth-a"),
        ("pod-a", "in eth0"), ("pod-a", "delivered")]
    assert w.packet.src == "172.18.0.3"


def test_forwarding_off_and_no_neighbour():
    w = walk_packet(two_nodes(forwarding=False), LabState(), "node2",
                    udp("172.18.0.3", "10.244.1.2", 5353, 53))
    assert (w.verdict, w.ns, w.reason) == (
        "forwarding disabled", "node1",
        "10.244.1.2 is not local and net.ipv4.ip_forward is 0 in node1")
    w = walk_packet(two_nodes(), LabState(), "node2", udp("172.18.0.3", "172.18.0.9", 1, 2))
    assert (w.verdict, w.reason) == ("no neighbour", "nobody answers ARP for 172.18.0.9 on eth0")
    w = walk_packet(two_nodes(), LabState(), "pod-a", udp("10.244.1.2", "192.0.2.1", 1, 2))
    assert (w.verdict, w.ns) == ("no route", "node1")


def test_route_checks_name_the_field_and_the_fix():
    t = two_nodes()
    with pytest.raises(ManifestError) as e:
        t.add_route("node2", "default", via="192.0.2.1", dev="eth0")
    assert str(e.value) == (
        "1 problem found:\n  - Namespace node2: routes[default]: gateway 192.0.2.1 is not on a "
        "network of eth0 (ip: 'Nexthop has invalid gateway') (fix: add onlink=True, or an "
        "address on its subnet)")


def test_all_branches_with_no_coins_is_one_outcome():
    ws = walk_all_branches(two_nodes(), LabState(), "node2", udp("", "10.244.1.2", 5353, 53))
    assert [(w.verdict, w.probability) for w in ws] == [("delivered", 1.0)]
