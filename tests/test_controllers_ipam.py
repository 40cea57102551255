"""Allocators: node /24s, pod IPs from .2, ClusterIPs and NodePorts as the API server picks them."""
import ipaddress
import random

from labkit.controllers import ipam


def test_nth_subnet_and_count():
    assert ipam.nth_subnet("10.244.0.0/16", 24, 0) == "10.244.0.0/24"
    assert ipam.nth_subnet("10.244.0.0/16", 24, 2) == "10.244.2.0/24"
    assert ipam.nth_subnet("10.244.0.0/16", 24, 255) == "10.244.255.0/24"
    assert ipam.subnet_count("10.244.0.0/16", 24) == 256
    assert ipam.subnet_count("10.244.0.0/23", 24) == 2


def test_node_cidrs_lowest_free_first_skipping_given():
    a = ipam.NodeCIDRAllocator("10.244.0.0/16", 24)
    a.reserve("10.244.1.0/24")
    assert [a.allocate(), a.allocate(), a.allocate()] == [
        "10.244.0.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
    ]


def test_node_cidrs_exhausted_returns_none():
    a = ipam.NodeCIDRAllocator("10.244.0.0/23", 24)
    assert [a.allocate(), a.allocate(), a.allocate()] == ["10.244.0.0/24", "10.244.1.0/24", None]


def test_pod_ips_from_dot_two_upward_skipping_taken():
    a = ipam.SequentialIPAllocator("10.244.1.0/24")
    a.reserve("10.244.1.3")
    assert [a.allocate(), a.allocate(), a.allocate()] == ["10.244.1.2", "10.244.1.4", "10.244.1.5"]


def test_pod_ips_never_network_gateway_or_broadcast():
    a = ipam.SequentialIPAllocator("10.244.1.0/24")
    assert a.capacity() == 253
    got = [a.allocate() for _ in range(253)]
    assert got[0] == "10.244.1.2" and got[-1] == "10.244.1.254"
    assert a.allocate() is None


def test_service_ip_slots_exclude_network_and_broadcast():
    a = ipam.ServiceIPAllocator("10.96.0.0/16")
    assert a.size == 65534
    assert a.slot_of("10.96.0.1") == 0
    assert a.slot_of("10.96.0.10") == 9
    assert a.slot_of("10.96.255.254") == 65533
    assert a.slot_of("10.96.0.0") is None
    assert a.slot_of("10.96.255.255") is None
    assert a.slot_of("10.97.0.1") is None
    assert a.slot_of("banana") is None
    assert a.ip_of(9) == "10.96.0.10"


def test_service_ip_static_band_sizes_match_calculate_range_offset():
    assert ipam.ServiceIPAllocator("10.96.0.0/16").bitmap.offset == 256  # capped at 256
    assert ipam.ServiceIPAllocator("10.96.0.0/20").bitmap.offset == 256  # 4096/16
    assert ipam.ServiceIPAllocator("10.96.0.0/22").bitmap.offset == 64  # 1024/16
    assert ipam.ServiceIPAllocator("10.96.0.0/27").bitmap.offset == 16  # at least 16
    assert ipam.ServiceIPAllocator("10.96.0.0/28").bitmap.offset == 0  # 16 or fewer: none


def test_dynamic_cluster_ip_is_random_start_in_upper_band():
    a = ipam.ServiceIPAllocator("10.96.0.0/16")
    first = a.allocate(random.Random(7))
    start = random.Random(7).randrange(65534 - 256)
    assert first == str(ipaddress.ip_address("10.96.0.1") + 256 + start)
    assert first == "10.96.83.231"


def test_dynamic_cluster_ips_under_a_seed():
    a = ipam.ServiceIPAllocator("10.96.0.0/16")
    rng = random.Random(7)
    assert [a.allocate(rng) for _ in range(3)] == ["10.96.83.231", "10.96.243.168", "10.96.39.159"]


def test_upper_band_full_falls_back_to_lower_band_then_none():
    a = ipam.ServiceIPAllocator("10.96.0.0/27")  # 30 addresses, static band 16
    rng = random.Random(1)
    upper = {a.allocate(rng) for _ in range(14)}
    assert upper == {f"10.96.0.{i}" for i in range(17, 31)}
    lower = {a.allocate(rng) for _ in range(16)}
    assert lower == {f"10.96.0.{i}" for i in range(1, 17)}
    assert a.allocate(rng) is None


def test_scan_moves_forward_from_a_random_start_with_wrap_around():
    for seed in range(6):
        b = ipam.BitmapAllocator(size=10, offset=4)  # upper band: slots 4..9
        start = random.Random(seed).randrange(6)
        first_free = 4 + (start + 2) % 6
        later_free = 4 + (start + 4) % 6
        for slot in range(4, 10):
            if slot not in (first_free, later_free):
                b.reserve(slot)
        assert b.allocate(random.Random(seed)) == first_free


def test_reserving_given_cluster_ips():
    a = ipam.ServiceIPAllocator("10.96.0.0/16")
    assert a.reserve("10.96.0.10") is True
    assert a.is_taken("10.96.0.10") is True
    assert a.reserve("192.0.2.1") is False


def test_node_ports_dynamic_from_30086_upward_first():
    a = ipam.NodePortAllocator((30000, 32767))
    assert (a.bitmap.size, a.bitmap.offset) == (2768, 86)
    rng = random.Random(7)
    assert [a.allocate(rng) for _ in range(3)] == [31412, 30703, 31703]
    assert a.contains(30000) and a.contains(32767)
    assert not a.contains(29999) and not a.contains(32768)
    assert a.reserve(33000) is False


def test_node_ports_exhausted():
    a = ipam.NodePortAllocator((30000, 30003))
    rng = random.Random(0)
    assert sorted(a.allocate(rng) for _ in range(4)) == [30000, 30001, 30002, 30003]
    assert a.allocate(rng) is None


def test_pod_ips_continue_after_the_last_one_handed_out_and_wrap():
    """host-local's last_reserved_ip: a freed address is not handed out again at once."""
    a = ipam.SequentialIPAllocator("10.244.1.0/28", last="10.244.1.3")
    a.reserve("10.244.1.2")
    assert [a.allocate() for _ in range(3)] == ["10.244.1.4", "10.244.1.5", "10.244.1.6"]
    assert a.last == "10.244.1.6"
    b = ipam.SequentialIPAllocator("10.244.1.0/28", last="10.244.1.14")
    assert [b.allocate(), b.allocate()] == ["10.244.1.2", "10.244.1.3"]  # wrapped, .15 is broadcast


def test_a_replaced_pod_gets_a_new_address():
    import random

    from labkit.controllers.cluster import ClusterSettings, reconcile
    from labkit.model.objects import Container, ObjectMeta, Pod

    def pod(name):
        return Pod(ObjectMeta(name, "default"), containers=(Container("c"),), node_name="n1")

    first = reconcile([pod("a"), pod("b")], ClusterSettings(), random.Random(0), node_names=["n1"])
    assert [p.pod_ip for p in first.pods] == ["10.244.0.2", "10.244.0.3"]
    kept = [p for p in first.pods if p.meta.name == "a"]
    second = reconcile(kept + [pod("b2")], ClusterSettings(), random.Random(1), node_names=["n1"],
                       last_pod_ips=first.last_pod_ips)
    assert {p.meta.name: p.pod_ip for p in second.pods} == {"a": "10.244.0.2", "b2": "10.244.0.4"}
    assert second.last_pod_ips == {"n1": "10.244.0.4"}
