"""The EndpointSlice controller: conditions, ports, grouping, naming, replacement."""
import random

from labkit.controllers.endpointslices import (
    CONTROLLER_NAME,
    compute_endpoint_slices,
    find_port,
    reconcile_endpoint_slices,
)
from labkit.model.objects import (
    Container,
    ContainerPort,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Node,
    NodeAddress,
    ObjectMeta,
    ObjectReference,
    Pod,
    PodCondition,
    Service,
    ServicePort,
)

READY = (PodCondition("Ready", "True"),)
NOT_READY = (PodCondition("Ready", "False"),)
NODES = {
    "w1": Node(ObjectMeta("w1", labels={"topology.kubernetes.io/zone": "zone-a"}),
               pod_cidr="10.244.1.0/24", addresses=(NodeAddress("InternalIP", "172.18.0.3"),)),
    "w2": Node(ObjectMeta("w2"), pod_cidr="10.244.2.0/24",
               addresses=(NodeAddress("InternalIP", "172.18.0.4"),)),
}
HTTP = (Container("app", ports=(ContainerPort(8080, "http"),)),)


def pod(name, ip, node="w1", labels=None, ns="default", conditions=READY, containers=HTTP, **kw):
    return Pod(
        ObjectMeta(name, ns, labels={"app": "web"} if labels is None else labels, uid=f"uid-{name}"),
        containers=containers,
        node_name=node,
        phase=kw.pop("phase", "Running"),
        pod_ip=ip,
        conditions=conditions,
        **kw,
    )


def svc(name="web", ports=(ServicePort(80, target_port="http"),), selector=None, **kw):
    kw.setdefault("cluster_ip", "10.96.0.20")
    kw.setdefault("ip_families", ("IPv4",))
    return Service(ObjectMeta(name, "default", labels=kw.pop("labels", {})), ports=ports,
                   selector={"app": "web"} if selector is None else selector, **kw)


def eps(service, pods, seed=1, **kw):
    return compute_endpoint_slices(service, pods, NODES, random.Random(seed), **kw)


def conds(slices):
    return {
        e.target_ref.name: (e.conditions.ready, e.conditions.serving, e.conditions.terminating)
        for s in slices
        for e in s.endpoints
    }


def test_one_ready_pod_gives_one_slice_with_everything_filled_in():
    (s,) = eps(svc(), [pod("a", "10.244.1.2")])
    assert s == EndpointSlice(
        meta=ObjectMeta(
            "web-gx87d",
            "default",
            labels={
                "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        ),
        address_type="IPv4",
        endpoints=(
            Endpoint(
                addresses=("10.244.1.2",),
                conditions=EndpointConditions(ready=True, serving=True, terminating=False),
                node_name="w1",
                zone="zone-a",
                target_ref=ObjectReference("Pod", "default", "a", "uid-a"),
            ),
        ),
        ports=(EndpointPort(port=8080, name="", protocol="TCP"),),
    )


def test_conditions_as_the_real_controller_sets_them():
    pods = [
        pod("ready", "10.244.1.2"),
        pod("notready", "10.244.1.3", conditions=NOT_READY),
        pod("noconditions", "10.244.1.4", conditions=()),
        pod("leaving", "10.244.1.5", terminating=True),
        pod("leaving-unready", "10.244.1.6", terminating=True, conditions=NOT_READY),
        pod("pending", "10.244.1.7", phase="Pending", conditions=()),
    ]
    assert conds(eps(svc(), pods)) == {
        "ready": (True, True, False),
        "notready": (False, False, False),
        "noconditions": (False, False, False),
        "leaving": (False, True, True),
        "leaving-unready": (False, False, True),
        "pending": (False, False, False),
    }


def test_publish_not_ready_addresses_makes_every_endpoint_ready():
    pods = [pod("notready", "10.244.1.3", conditions=NOT_READY),
            pod("leaving", "10.244.1.5", terminating=True)]
    assert conds(eps(svc(publish_not_ready_addresses=True), pods)) == {
        "notready": (True, False, False),
        "leaving": (True, True, True),
    }


def test_terminal_ipless_foreign_and_unlabelled_pods_are_left_out():
    pods = [
        pod("done", "10.244.1.2", phase="Succeeded"),
        pod("failed", "10.244.1.3", phase="Failed"),
        pod("noip", ""),
        pod("elsewhere", "10.244.1.4", ns="prod"),
        pod("other-app", "10.244.1.5", labels={"app": "api"}),
        pod("kept", "10.244.1.6"),
    ]
    assert list(conds(eps(svc(), pods))) == ["kept"]


def test_host_network_pod_is_an_endpoint_at_its_node_ip():
    p = pod("hostnet", "172.18.0.4", node="w2", host_network=True)
    (s,) = eps(svc(), [p])
    assert s.endpoints[0].addresses == ("172.18.0.4",)
    assert s.endpoints[0].node_name == "w2" and s.endpoints[0].zone == ""


def test_pod_on_a_missing_node_is_skipped_unless_publish_not_ready():
    p = pod("ghost", "10.244.9.2", node="gone")
    (placeholder,) = eps(svc(), [p])
    assert placeholder.endpoints == () and placeholder.ports == ()
    (s,) = eps(svc(publish_not_ready_addresses=True), [p])
    assert [e.target_ref.name for e in s.endpoints] == ["ghost"]
    assert s.endpoints[0].zone == ""


def test_named_target_port_is_resolved_with_its_protocol():
    dns = (Container("dns", ports=(ContainerPort(5353, "dns", "UDP"), ContainerPort(5354, "dns-tcp", "TCP"))),)
    tcp_named_dns = ServicePort(53, protocol="TCP", name="tcp", target_port="dns")
    udp_named_dns = ServicePort(53, protocol="UDP", name="udp", target_port="dns")
    p = pod("dns", "10.244.1.2", containers=dns)
    assert find_port(p, udp_named_dns) == 5353
    assert find_port(p, tcp_named_dns) is None
    assert find_port(p, ServicePort(80, target_port=9090)) == 9090
    assert find_port(p, ServicePort(80, target_port=0)) == 80  # not defaulted yet: the port
    (s,) = eps(svc(ports=(tcp_named_dns, udp_named_dns)), [p])
    assert s.ports == (EndpointPort(port=5353, name="udp", protocol="UDP"),)


def test_pods_resolving_a_named_port_differently_get_separate_slices():
    old = (Container("app", ports=(ContainerPort(8080, "http"),)),)
    new = (Container("app", ports=(ContainerPort(9090, "http"),)),)
    none = (Container("app"),)
    pods = [pod("a-old", "10.244.1.2", containers=old), pod("b-new", "10.244.1.3", containers=new),
            pod("c-old", "10.244.1.4", containers=old), pod("d-none", "10.244.1.5", containers=none)]
    slices = eps(svc(), pods)
    assert [(s.meta.name, [p.port for p in s.ports], [e.target_ref.name for e in s.endpoints])
            for s in slices] == [
        ("web-gx87d", [8080], ["a-old", "c-old"]),
        ("web-lft7s", [9090], ["b-new"]),
        ("web-t2q8j", [], ["d-none"]),
    ]


def test_multi_port_service_keeps_service_port_order_and_names():
    containers = (Container("app", ports=(ContainerPort(8080, "http"), ContainerPort(8443, "https"))),)
    ports = (ServicePort(443, name="https", target_port="https", app_protocol="https"),
             ServicePort(80, name="http", target_port="http"))
    (s,) = eps(svc(ports=ports), [pod("a", "10.244.1.2", containers=containers)])
    assert s.ports == (EndpointPort(8443, "https", "TCP", "https"), EndpointPort(8080, "http", "TCP"))


def test_no_matching_pods_gives_one_placeholder_slice():
    (s,) = eps(svc(), [])
    assert (s.meta.name, s.address_type, s.endpoints, s.ports) == ("web-gx87d", "IPv4", (), ())


def test_at_most_100_endpoints_per_slice():
    pods = [pod(f"p{i:03d}", f"10.244.{1 + i // 200}.{2 + i % 200}") for i in range(250)]
    slices = eps(svc(), pods)
    assert [len(s.endpoints) for s in slices] == [100, 100, 50]
    assert slices[0].endpoints[0].target_ref.name == "p000"
    assert slices[2].endpoints[-1].target_ref.name == "p249"
    assert len({s.meta.name for s in slices}) == 3


def test_hostname_only_when_subdomain_names_the_service():
    a = pod("a", "10.244.1.2", hostname="db-0", subdomain="web")
    b = pod("b", "10.244.1.3", hostname="db-1", subdomain="other")
    (s,) = eps(svc(), [a, b])
    assert [e.hostname for e in s.endpoints] == ["db-0", ""]


def test_headless_service_labels_and_service_labels_copied():
    headless = svc(cluster_ip="None", labels={"team": "blue", "kubernetes.io/service-name": "evil"})
    (s,) = eps(headless, [pod("a", "10.244.1.2")])
    assert s.meta.labels == {
        "team": "blue",
        "service.kubernetes.io/headless": "",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": CONTROLLER_NAME,
    }


def test_address_types_follow_ip_families():
    dual = pod("a", "10.244.1.2", pod_ips=("10.244.1.2", "fd00:10:244:1::2"))
    slices = eps(svc(ip_families=("IPv4", "IPv6")), [dual])
    assert [(s.address_type, s.endpoints[0].addresses) for s in slices] == [
        ("IPv4", ("10.244.1.2",)),
        ("IPv6", ("fd00:10:244:1::2",)),
    ]
    v6_only = eps(svc(ip_families=("IPv6",), cluster_ip="fd00:10:96::20"), [pod("b", "10.244.1.3")])
    assert [(s.address_type, s.endpoints) for s in v6_only] == [("IPv6", ())]


def test_services_without_selector_or_externalname_get_nothing():
    assert eps(svc(selector={}), [pod("a", "10.244.1.2")]) == ()
    no_selector = Service(ObjectMeta("manual", "default"), ports=(ServicePort(80),), cluster_ip="10.96.0.30")
    assert eps(no_selector, [pod("a", "10.244.1.2")]) == ()
    assert eps(svc(type="ExternalName", external_name="example.com", cluster_ip=""), []) == ()


def test_generated_names_avoid_taken_ones():
    (s,) = eps(svc(), [], taken_names={"web-gx87d"})
    assert s.meta.name == "web-lft7s"


MANUAL = EndpointSlice(
    ObjectMeta("manual-1", "default", labels={"kubernetes.io/service-name": "manual"}),
    "IPv4",
    endpoints=(Endpoint(("192.0.2.10",)),),
    ports=(EndpointPort(80),),
)
STALE = EndpointSlice(
    ObjectMeta("web-old12", "default",
               labels={"kubernetes.io/service-name": "web",
                       "endpointslice.kubernetes.io/managed-by": CONTROLLER_NAME}),
    "IPv4",
    endpoints=(Endpoint(("10.244.7.7",)),),
    ports=(EndpointPort(8080),),
)


def test_admit_replaces_managed_slices_keeping_their_names_and_keeps_manual_ones():
    manual_svc = Service(ObjectMeta("manual", "default"), ports=(ServicePort(80),), cluster_ip="10.96.0.30")
    out = reconcile_endpoint_slices(
        [svc(), manual_svc], [pod("a", "10.244.1.2")], NODES, [MANUAL, STALE], random.Random(1), admit=True
    )
    assert [s.meta.name for s in out] == ["manual-1", "web-old12"]
    assert out[0] is MANUAL
    assert [e.addresses for e in out[1].endpoints] == [("10.244.1.2",)]


def test_without_admit_given_slices_are_kept_and_only_bare_services_filled_in():
    other = svc(name="api")
    out = reconcile_endpoint_slices(
        [svc(), other], [pod("a", "10.244.1.2")], NODES, [STALE], random.Random(1), admit=False
    )
    assert out[0] is STALE
    assert [(s.meta.name, s.service_name) for s in out] == [("web-old12", "web"), ("api-gx87d", "api")]


def test_same_seed_same_slices():
    pods = [pod(f"p{i}", f"10.244.1.{i + 2}") for i in range(5)]
    assert eps(svc(), pods, seed=42) == eps(svc(), list(reversed(pods)), seed=42)
