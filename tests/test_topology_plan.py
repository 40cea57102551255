"""The lab plan: names, addresses and routes as kindnet's ptp CNI and kind's docker network make them."""
import pytest

from labkit.errors import ManifestError
from labkit.topology.kind_config import default_topology, parse_kind_config_text
from labkit.topology.plan import IFNAMSIZ, PodPlacement, build_plan, check_lab_name, pod_veth_name

PODS = [
    PodPlacement("default", "web-0", "kind-worker", "10.244.1.2"),
    PodPlacement("default", "web-1", "kind-worker2", "10.244.2.2"),
]


@pytest.fixture
def plan():
    return build_plan("demo", default_topology(), PODS)


def test_namespaces_are_the_lab_prefix_and_a_short_name(plan):
    assert plan.prefix == "lkdemo"
    assert plan.netns_names() == (
        "lkdemo-net", "lkdemo-control-plane", "lkdemo-worker", "lkdemo-worker2",
        "lkdemo-outside", "lkdemo-internet", "lkdemo-pod-default.web-0", "lkdemo-pod-default.web-1",
    )


def test_every_lab_named_link_has_the_prefix_and_fits_15_bytes(plan):
    assert plan.link_names == ("lkdemo-br", "lkdemo-n1", "lkdemo-n2", "lkdemo-n3", "lkdemo-out",
                               "lkdemo-inet", "lkdemo-0102", "lkdemo-0202")
    assert all(n.startswith("lkdemo-") and len(n.encode()) <= IFNAMSIZ for n in plan.link_names)
    # the far ends are eth0, and only ever inside the lab's own namespaces
    assert {v.peer_name for v in plan.veths} == {"eth0"}
    assert all(v.peer_netns.startswith("lkdemo-") and v.netns.startswith("lkdemo-") for v in plan.veths)


def test_nodes_sit_on_kinds_docker_network(plan):
    assert [(n.name, n.ip, n.pod_cidr, n.pod_gateway) for n in plan.nodes] == [
        ("kind-control-plane", "172.18.0.2", "10.244.0.0/24", "10.244.0.1"),
        ("kind-worker", "172.18.0.3", "10.244.1.0/24", "10.244.1.1"),
        ("kind-worker2", "172.18.0.4", "10.244.2.0/24", "10.244.2.1"),
    ]


def test_routes_mirror_kindnet(plan):
    routes = [f"{r.netns}: {r.spec()}" for r in plan.routes]
    assert routes == [
        "lkdemo-control-plane: default via 172.18.0.1 dev eth0",
        "lkdemo-worker: default via 172.18.0.1 dev eth0",
        "lkdemo-worker2: default via 172.18.0.1 dev eth0",
        # kindnet: a route to every other node's pod CIDR via that node
        "lkdemo-control-plane: 10.244.1.0/24 via 172.18.0.3 dev eth0",
        "lkdemo-control-plane: 10.244.2.0/24 via 172.18.0.4 dev eth0",
        "lkdemo-worker: 10.244.0.0/24 via 172.18.0.2 dev eth0",
        "lkdemo-worker: 10.244.2.0/24 via 172.18.0.4 dev eth0",
        "lkdemo-worker2: 10.244.0.0/24 via 172.18.0.2 dev eth0",
        "lkdemo-worker2: 10.244.1.0/24 via 172.18.0.3 dev eth0",
        "lkdemo-outside: default via 192.0.2.1 dev eth0",
        "lkdemo-internet: default via 203.0.113.1 dev eth0",
        # ptp: a /32 host route per pod on the node; in the pod, everything via the gateway
        "lkdemo-worker: 10.244.1.2 dev lkdemo-0102 scope host",
        "lkdemo-pod-default.web-0: 10.244.1.1 dev eth0 scope link src 10.244.1.2",
        "lkdemo-pod-default.web-0: 10.244.1.0/24 via 10.244.1.1 dev eth0 src 10.244.1.2",
        "lkdemo-pod-default.web-0: default via 10.244.1.1 dev eth0",
        "lkdemo-worker2: 10.244.2.2 dev lkdemo-0202 scope host",
        "lkdemo-pod-default.web-1: 10.244.2.1 dev eth0 scope link src 10.244.2.2",
        "lkdemo-pod-default.web-1: 10.244.2.0/24 via 10.244.2.1 dev eth0 src 10.244.2.2",
        "lkdemo-pod-default.web-1: default via 10.244.2.1 dev eth0",
    ]


def test_pod_addresses_are_ptp(plan):
    pod_side = [a for a in plan.addresses if a.netns == "lkdemo-pod-default.web-0"]
    node_side = [a for a in plan.addresses if a.dev == "lkdemo-0102"]
    assert [(a.dev, a.cidr, a.noprefixroute) for a in pod_side] == [("eth0", "10.244.1.2/24", True)]
    assert [(a.netns, a.cidr) for a in node_side] == [("lkdemo-worker", "10.244.1.1/32")]


def test_sysctls_forwarding_on_nodes_and_the_router(plan):
    sysctls = {n.name: dict(n.sysctls) for n in plan.namespaces}
    assert sysctls["lkdemo-worker"] == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.route_localnet": "1"}
    assert sysctls["lkdemo-net"] == {"net.ipv4.ip_forward": "1"}
    assert sysctls["lkdemo-pod-default.web-0"] == {}


def test_owner_of_addresses(plan):
    assert [plan.owner_of(ip) for ip in ("10.244.2.2", "172.18.0.2", "192.0.2.10", "203.0.113.10", "10.96.0.1")] == [
        "pod default/web-1", "node kind-control-plane", "outside", "internet", ""]


def test_veth_name_is_the_pod_addresss_offset_in_hex():
    assert pod_veth_name("lkab", "10.244.0.0/16", "10.244.1.3") == "lkab-0103"
    assert pod_veth_name("lkab", "10.0.0.0/8", "10.244.255.254") == "lkab-f4fffe"


def test_bad_pods_are_reported_together():
    with pytest.raises(ManifestError) as e:
        build_plan("demo", default_topology(), [
            PodPlacement("default", "a", "kind-worker3", "10.244.1.2"),
            PodPlacement("default", "b", "kind-worker", "10.244.2.5"),
            PodPlacement("default", "c", "kind-worker", "10.244.1.1"),
            PodPlacement("default", "d", "kind-worker", "10.244.1.9"),
            PodPlacement("default", "e", "kind-worker", "10.244.1.9"),
            PodPlacement("default", "d", "kind-worker", "10.244.1.10"),
        ])
    assert str(e.value) == """lab demo: 5 problems found:
  - Pod default/a: spec.nodeName: no node named 'kind-worker3' in the lab (fix: use one of: kind-control-plane, kind-worker, kind-worker2)
  - Pod default/b: status.podIP: 10.244.2.5 is not a usable pod address on node kind-worker (10.244.1.0/24, gateway 10.244.1.1) (fix: pick an address from 10.244.1.0/24 other than its first and last)
  - Pod default/c: status.podIP: 10.244.1.1 is not a usable pod address on node kind-worker (10.244.1.0/24, gateway 10.244.1.1) (fix: pick an address from 10.244.1.0/24 other than its first and last)
  - Pod default/e: status.podIP: 10.244.1.9 is already the address of pod default/d (fix: give each pod its own address)
  - Pod default/d: metadata.name: two pods have this name (fix: give each pod its own name)"""


@pytest.mark.parametrize("name", ["", "Demo", "toolong7", "1ab", "a-b", "test"])
def test_lab_names_that_cannot_be_used(name):
    with pytest.raises(ManifestError):
        check_lab_name(name)


def test_test_is_reserved_with_the_reason():
    with pytest.raises(ManifestError) as e:
        check_lab_name("test")
    assert "reserved (the test suites' namespaces start with 'lktest-')" in str(e.value)


def test_ipvs_and_ipv6_are_refused_by_the_kernel_lab():
    t = parse_kind_config_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
                               "networking: {kubeProxyMode: ipvs, ipFamily: ipv6}\n")
    with pytest.raises(ManifestError) as e:
        build_plan("demo", t)
    assert [p.field for p in e.value.problems] == ["networking.ipFamily", "networking.kubeProxyMode"]


def test_the_control_planes_allocation_wins_over_the_topologys():
    plan = build_plan("demo", default_topology(), [PodPlacement("default", "a", "kind-worker", "10.244.7.2")],
                      node_pod_cidrs={"kind-control-plane": "10.244.5.0/24", "kind-worker": "10.244.7.0/24",
                                      "kind-worker2": "10.244.6.0/24"})
    assert [n.pod_cidr for n in plan.nodes] == ["10.244.5.0/24", "10.244.7.0/24", "10.244.6.0/24"]
    assert plan.pods[0].host_veth == "lkdemo-0702"
