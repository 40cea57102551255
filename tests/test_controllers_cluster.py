"""reconcile(): nodes, pods, scheduling, addresses, ports, slices, admission errors."""
import ipaddress
import random

import pytest
from hypothesis import given, settings, strategies as hst

from labkit.controllers.cluster import (
    ClusterSettings,
    ClusterState,
    ObjectNotFound,
    reconcile,
)
from labkit.errors import ManifestError
from labkit.model.objects import (
    Container,
    ContainerPort,
    Deployment,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    LabelSelector,
    Namespace,
    Node,
    NodeAddress,
    ObjectMeta,
    Pod,
    PodCondition,
    PodTemplate,
    Service,
    ServicePort,
)

KIND = ("kind-control-plane", "kind-worker", "kind-worker2")
S = ClusterSettings()


def deployment(name="web", replicas=3, ns="default", labels=None):
    labels = labels or {"app": name}
    return Deployment(
        ObjectMeta(name, ns),
        LabelSelector(labels),
        PodTemplate(ObjectMeta("", labels=labels),
                    containers=(Container("nginx", "nginx:1.27", ports=(ContainerPort(80, "http"),)),)),
        replicas=replicas,
    )


def service(name="web", ns="default", type="ClusterIP", ports=None, selector=None, **kw):
    return Service(ObjectMeta(name, ns),
                   ports=ports or (ServicePort(80, target_port="http"),),
                   type=type,
                   selector={"app": name} if selector is None else selector, **kw)


def run(objects, seed=1, nodes=KIND, admit=True, settings=S):
    return reconcile(objects, settings, random.Random(seed), node_names=nodes, admit=admit)


def problems(objects, **kw):
    with pytest.raises(ManifestError) as e:
        run(objects, **kw)
    return [str(p) for p in e.value.problems]


# --- end to end ----------------------------------------------------------------


def test_three_replica_deployment_and_nodeport_service_end_to_end():
    st = run([deployment(), service(type="NodePort")])
    assert [(n.meta.name, n.pod_cidr, n.addresses[0].address) for n in st.nodes] == [
        ("kind-control-plane", "10.244.0.0/24", "172.18.0.2"),
        ("kind-worker", "10.244.1.0/24", "172.18.0.3"),
        ("kind-worker2", "10.244.2.0/24", "172.18.0.4"),
    ]
    assert [(p.meta.name, p.node_name, p.pod_ip, p.host_ip, p.phase, p.ready) for p in st.pods] == [
        ("web-64f7f6df4f-gx87d", "kind-worker", "10.244.1.2", "172.18.0.3", "Running", True),
        ("web-64f7f6df4f-st2q8", "kind-worker2", "10.244.2.2", "172.18.0.4", "Running", True),
        ("web-64f7f6df4f-9qrz7", "kind-worker", "10.244.1.3", "172.18.0.3", "Running", True),
    ]
    web = st.service("default", "web")
    assert (web.cluster_ip, web.cluster_ips, web.ip_families, web.ip_family_policy) == (
        "10.96.69.47", ("10.96.69.47",), ("IPv4",), "SingleStack")
    assert web.ports == (ServicePort(80, "TCP", "", "http", node_port=31023),)
    assert web.external_traffic_policy == "Cluster"
    (s,) = st.slices_for("default", "web")
    assert s.meta.name == "web-xfnbb"
    assert s.ports == (EndpointPort(80, "", "TCP"),)
    assert [(e.addresses, e.node_name, e.target_ref.name, e.conditions) for e in s.endpoints] == [
        (("10.244.1.3",), "kind-worker", "web-64f7f6df4f-9qrz7", EndpointConditions(True, True, False)),
        (("10.244.1.2",), "kind-worker", "web-64f7f6df4f-gx87d", EndpointConditions(True, True, False)),
        (("10.244.2.2",), "kind-worker2", "web-64f7f6df4f-st2q8", EndpointConditions(True, True, False)),
    ]
    assert s.endpoints[0].target_ref.uid == st.pod("default", "web-64f7f6df4f-9qrz7").meta.uid


def test_same_seed_same_cluster_other_seed_other_names():
    objs = [deployment(), service(type="NodePort")]
    assert run(objs, seed=5) == run(objs, seed=5)
    a, b = run(objs, seed=5), run(objs, seed=6)
    assert [p.meta.name for p in a.pods] != [p.meta.name for p in b.pods]
    assert [p.pod_ip for p in a.pods] == [p.pod_ip for p in b.pods]  # addresses are not random


def test_builtin_namespaces_exist_and_state_lists_every_object():
    st = run([Namespace(ObjectMeta("shop")), deployment(replicas=1)])
    assert [n.meta.name for n in st.namespaces] == [
        "default", "kube-node-lease", "kube-public", "kube-system", "shop"]
    assert [o.kind for o in st.objects()] == ["Namespace"] * 5 + ["Node"] * 3 + ["Deployment", "Pod"]
    assert isinstance(st, ClusterState) and st.settings == S


# --- nodes and scheduling --------------------------------------------------------


def test_kind_node_labels_and_given_pod_cidr_kept():
    given = Node(ObjectMeta("kind-worker"), pod_cidr="10.244.0.0/24")
    st = run([given])
    assert [(n.meta.name, n.pod_cidr) for n in st.nodes] == [
        ("kind-worker", "10.244.0.0/24"),
        ("kind-control-plane", "10.244.1.0/24"),
        ("kind-worker2", "10.244.2.0/24"),
    ]
    assert st.node("kind-control-plane").meta.labels == {
        "kubernetes.io/hostname": "kind-control-plane",
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
    }
    assert st.node("kind-worker2").addresses == (
        NodeAddress("InternalIP", "172.18.0.4"), NodeAddress("Hostname", "kind-worker2"))
    assert st.node_ip("kind-worker") == "172.18.0.2"


def test_control_plane_gets_pods_only_when_it_is_the_only_node():
    st = run([deployment(replicas=4)])
    assert sorted(p.node_name for p in st.pods) == ["kind-worker"] * 2 + ["kind-worker2"] * 2
    alone = run([deployment(replicas=2)], nodes=("kind-control-plane",))
    assert [(p.node_name, p.pod_ip) for p in alone.pods] == [
        ("kind-control-plane", "10.244.0.2"), ("kind-control-plane", "10.244.0.3")]


def test_scheduler_counts_pods_already_bound():
    pinned = [Pod(ObjectMeta(f"pinned{i}", "default"), node_name="kind-worker") for i in range(2)]
    st = run(pinned + [deployment(replicas=3)])
    new = [p.node_name for p in st.pods[2:]]
    assert new == ["kind-worker2", "kind-worker2", "kind-worker"]


def test_given_pod_ip_and_status_are_kept_and_others_skip_them():
    given = Pod(ObjectMeta("db", "default"), node_name="kind-worker", pod_ip="10.244.0.2",
                phase="Running", conditions=(PodCondition("Ready", "False"),))
    st = run([given, deployment(replicas=1)], nodes=("kind-worker",))
    db, web = st.pods
    assert (db.pod_ip, db.phase, db.ready, db.pod_ips) == ("10.244.0.2", "Running", False, ("10.244.0.2",))
    assert db.meta.uid != ""  # the API server gives every object a uid
    assert (web.pod_ip, web.phase, web.ready) == ("10.244.0.3", "Running", True)


def test_host_network_pod_takes_its_node_ip():
    hostnet = Pod(ObjectMeta("agent", "kube-system"), host_network=True)
    st = run([hostnet], nodes=("kind-worker",))
    assert (st.pods[0].pod_ip, st.pods[0].host_ip) == ("172.18.0.2", "172.18.0.2")


# --- ClusterIPs and NodePorts --------------------------------------------------------


def test_kubernetes_and_kube_dns_get_their_conventional_addresses():
    dns = service("kube-dns", "kube-system", ports=(ServicePort(53, "UDP", "dns", 53),),
                  selector={"k8s-app": "kube-dns"})
    st = run([service("web"), dns, service("kubernetes", selector={})])
    assert st.service("default", "kubernetes").cluster_ip == "10.96.0.1"
    assert st.service("kube-system", "kube-dns").cluster_ip == "10.96.0.10"
    # the first dynamic draw: 10.96.0.1 + 256 + Random(1).randrange(65534 - 256)
    assert st.service("default", "web").cluster_ip == "10.96.35.102"


def test_given_cluster_ip_kept_headless_and_externalname_untouched():
    st = run([
        service("fixed", cluster_ip="10.96.0.20"),
        service("headless", cluster_ip="None"),
        Service(ObjectMeta("ext", "default"), type="ExternalName", external_name="example.com"),
    ])
    assert st.service("default", "fixed").cluster_ip == "10.96.0.20"
    headless = st.service("default", "headless")
    assert (headless.cluster_ip, headless.cluster_ips) == ("None", ("None",))
    ext = st.service("default", "ext")
    assert (ext.cluster_ip, ext.ip_families) == ("", ())
    assert st.slices_for("default", "ext") == ()
    (hs,) = st.slices_for("default", "headless")
    assert hs.meta.labels["service.kubernetes.io/headless"] == ""


def test_tcp_and_udp_on_one_port_share_a_node_port():
    ports = (ServicePort(53, "TCP", "dns-tcp", 53), ServicePort(53, "UDP", "dns", 53),
             ServicePort(8080, "TCP", "metrics", 8080))
    st = run([service("dns", type="NodePort", ports=ports)])
    assert [p.node_port for p in st.service("default", "dns").ports] == [32417, 32417, 30344]


def test_load_balancer_local_gets_health_check_node_port_nodeport_local_does_not():
    lb = service("lb", type="LoadBalancer", external_traffic_policy="Local")
    np = service("np", type="NodePort", external_traffic_policy="Local")
    no_np = service("nonp", type="LoadBalancer", allocate_load_balancer_node_ports=False)
    st = run([lb, np, no_np])
    lb_, np_, no_np_ = st.services
    # ClusterIPs draw first, then ports in Service order, the health check port after its Service's ports
    assert (lb_.ports[0].node_port, lb_.health_check_node_port) == (30344, 31130)
    assert (np_.ports[0].node_port, np_.health_check_node_port) == (30568, 0)
    assert (no_np_.ports[0].node_port, no_np_.health_check_node_port) == (0, 0)


# --- admission ---------------------------------------------------------------------


def test_admission_collects_every_problem_with_object_field_and_fix():
    objs = [
        service("a", cluster_ip="10.0.0.5"),
        service("b", cluster_ip="10.96.0.20"),
        service("c", cluster_ip="10.96.0.20"),
        service("d", cluster_ip="10.96.x"),
        service("e", type="NodePort", ports=(ServicePort(80, node_port=33000),)),
        service("f", type="NodePort", ports=(ServicePort(80, node_port=30080),)),
        service("g", type="NodePort", ports=(ServicePort(81, node_port=30080),)),
        service("h", ports=(ServicePort(80, node_port=30081),)),
        Pod(ObjectMeta("p", "default"), node_name="kind-worker", pod_ip="10.244.5.7"),
        Pod(ObjectMeta("q", "default"), node_name="kind-worker3"),
        Pod(ObjectMeta("r", "shop")),
    ]
    assert problems(objs) == [
        'Pod shop/r: metadata.namespace: namespace "shop" does not exist '
        "(fix: add a Namespace named shop to the manifests (kubectl create namespace shop))",
        'Pod default/q: spec.nodeName: node "kind-worker3" does not exist (the nodes: '
        "kind-control-plane, kind-worker, kind-worker2) "
        "(fix: use one of the nodes, or leave nodeName out to have the pod scheduled)",
        "Pod default/p: status.podIP: 10.244.5.7 is not in the pod CIDR 10.244.1.0/24 of node "
        "kind-worker (fix: leave status.podIP out to have one allocated, or put the pod on the "
        "node whose pod CIDR holds this address)",
        "Service default/a: spec.clusterIP: 10.0.0.5 is not in the cluster's service CIDR "
        "10.96.0.0/16 (or is its network or broadcast address) (fix: choose an address in "
        "10.96.0.0/16, or leave clusterIP out to have one allocated)",
        "Service default/c: spec.clusterIP: 10.96.0.20 is already allocated to Service default/b "
        "(fix: choose another address, or leave clusterIP out to have one allocated)",
        'Service default/d: spec.clusterIP: "10.96.x" is not an IP address (fix: write an address '
        'such as 10.96.0.20, "None" for a headless Service, or leave clusterIP out)',
        "Service default/e: spec.ports[0].nodePort: 33000 is outside the cluster's NodePort range "
        "30000-32767 (fix: choose a port in 30000-32767, or leave it out to have one allocated)",
        "Service default/g: spec.ports[0].nodePort: 30080 is already allocated to Service "
        "default/f (spec.ports[0].nodePort) (fix: choose another port in 30000-32767, or leave it "
        "out to have one allocated)",
        "Service default/h: spec.ports[0].nodePort: a nodePort is only allowed for Services of "
        "type NodePort or LoadBalancer, not ClusterIP (fix: remove nodePort, or set type: NodePort)",
    ]


def test_manifest_error_renders_a_count_and_one_line_per_problem():
    with pytest.raises(ManifestError) as e:
        run([service("a", cluster_ip="10.0.0.5")])
    assert str(e.value) == (
        "1 problem found:\n"
        "  - Service default/a: spec.clusterIP: 10.0.0.5 is not in the cluster's service CIDR "
        "10.96.0.0/16 (or is its network or broadcast address) (fix: choose an address in "
        "10.96.0.0/16, or leave clusterIP out to have one allocated)"
    )


def test_deployment_whose_selector_misses_its_template_is_refused():
    bad = Deployment(ObjectMeta("web", "default"), LabelSelector({"app": "web"}),
                     PodTemplate(ObjectMeta("", labels={"app": "webb"})))
    assert problems([bad]) == [
        "Deployment default/web: spec.template.metadata.labels: the Deployment's selector does "
        "not match its pod template's labels, so it would never count the pods it creates "
        "(fix: give spec.template.metadata.labels every label spec.selector asks for)"
    ]


def test_health_check_node_port_only_for_load_balancer_local():
    assert problems([service("np", type="NodePort", health_check_node_port=30500)]) == [
        "Service default/np: spec.healthCheckNodePort: healthCheckNodePort may only be set when "
        "type is LoadBalancer and externalTrafficPolicy is Local (fix: remove healthCheckNodePort)"
    ]


def test_without_admit_values_from_another_cluster_are_kept():
    objs = [
        service("a", cluster_ip="10.0.0.5"),
        service("e", type="NodePort", ports=(ServicePort(80, node_port=33000),)),
        Pod(ObjectMeta("p", "default"), node_name="kind-worker", pod_ip="10.244.5.7"),
        Pod(ObjectMeta("r", "shop"), node_name="gone", pod_ip="10.1.2.3"),
    ]
    st = run(objs, admit=False)
    assert st.service("default", "a").cluster_ip == "10.0.0.5"
    assert st.service("default", "e").ports[0].node_port == 33000
    assert st.pod("default", "p").pod_ip == "10.244.5.7"
    assert st.pod("shop", "r").pod_ip == "10.1.2.3"
    assert "shop" in [n.meta.name for n in st.namespaces]


def test_exhaustion_is_a_clear_error_even_without_admit():
    tiny = ClusterSettings(service_cidr="10.96.0.0/30")  # two addresses: .1 and .2
    objs = [service("a"), service("b"), service("c")]
    assert problems(objs, settings=tiny, admit=False) == [
        "Service default/c: spec.clusterIP: no free ClusterIP left in the service CIDR "
        "10.96.0.0/30 (all 2 addresses are allocated) "
        "(fix: use a larger service_cidr in ClusterSettings, or fewer Services)"
    ]
    small_nodes = ClusterSettings(node_cidr_mask_size=30)  # one pod IP per node: .2
    assert problems([deployment(replicas=2)], settings=small_nodes, nodes=("w",)) == [
        "Pod default/web-64f7f6df4f-st2q8: status.podIP: the pod CIDR 10.244.0.0/30 of node w is "
        "full (1 pod IPs, all in use) (fix: use a smaller node_cidr_mask_size in ClusterSettings, "
        "more nodes, or fewer pods)"
    ]


def test_without_nodes_pods_stay_pending_and_services_have_no_endpoints():
    st = run([deployment(replicas=1), service()], nodes=())
    (p,) = st.pods
    assert (p.node_name, p.pod_ip, p.phase, p.conditions) == (
        "", "", "Pending", (PodCondition("PodScheduled", "False"),))
    (s,) = st.slices_for("default", "web")
    assert (s.endpoints, s.ports) == ((), ())


# --- endpoint slices in the cluster, lookups --------------------------------------------


def test_given_managed_slices_are_replaced_with_admit_and_kept_without():
    stale = EndpointSlice(
        ObjectMeta("web-abcde", "default", labels={
            "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}),
        "IPv4")
    fresh = run([deployment(replicas=1), service(), stale]).slices_for("default", "web")
    assert [(s.meta.name, len(s.endpoints)) for s in fresh] == [("web-abcde", 1)]
    kept = run([deployment(replicas=1), service(), stale], admit=False).slices_for("default", "web")
    assert kept == (stale,)


def test_lookups_name_what_is_there():
    st = run([service("web")])
    assert st.service("default", "web").meta.name == "web"
    assert st.services_in("default") == st.services
    assert st.pods_in("default") == () and st.pods_on("kind-worker") == ()
    with pytest.raises(ObjectNotFound) as e:
        st.service("default", "webb")
    assert str(e.value) == "no Service named 'webb' in namespace 'default'; the Services there: web"
    with pytest.raises(ObjectNotFound) as e:
        st.node("kind-worker3")
    assert str(e.value) == (
        "no Node named 'kind-worker3'; the Nodes there: kind-control-plane, kind-worker, kind-worker2"
    )


def test_duplicate_pod_ip_is_refused():
    a = Pod(ObjectMeta("a", "default"), node_name="kind-worker", pod_ip="10.244.1.9")
    b = Pod(ObjectMeta("b", "default"), node_name="kind-worker", pod_ip="10.244.1.9")
    assert problems([a, b]) == [
        "Pod default/b: status.podIP: 10.244.1.9 is already the IP of Pod default/a "
        "(fix: leave status.podIP out to have one allocated)"
    ]


def test_one_given_node_port_for_tcp_and_udp_of_one_service_is_accepted():
    ports = (ServicePort(53, "TCP", "dns-tcp", 53, node_port=30053),
             ServicePort(53, "UDP", "dns", 53, node_port=30053))
    st = run([service("dns", type="NodePort", ports=ports)])
    assert [p.node_port for p in st.service("default", "dns").ports] == [30053, 30053]
    twice = (ServicePort(53, "TCP", "a", 53, node_port=30053), ServicePort(54, "TCP", "b", 54, node_port=30053))
    assert problems([service("dns", type="NodePort", ports=twice)]) == [
        "Service default/dns: spec.ports[1].nodePort: 30053/TCP is used twice in this Service "
        "(fix: give each port its own nodePort)"
    ]


@settings(max_examples=25, deadline=None)
@given(
    replicas=hst.lists(hst.integers(0, 6), min_size=1, max_size=4),
    n_workers=hst.integers(0, 3),
    seed=hst.integers(0, 2**32),
)
def test_invariants_unique_addresses_inside_their_ranges(replicas, n_workers, seed):
    nodes = ("kind-control-plane",) + tuple(f"kind-worker{i or ''}" for i in range(n_workers))
    objs = []
    for i, r in enumerate(replicas):
        objs += [deployment(f"app{i}", replicas=r), service(f"app{i}", type="NodePort")]
    state = run(objs, seed=seed, nodes=nodes)
    assert state == run(objs, seed=seed, nodes=nodes)
    ips = [p.pod_ip for p in state.pods]
    assert len(ips) == len(set(ips)) == sum(replicas)
    for p in state.pods:
        node = state.node(p.node_name)
        assert ipaddress.ip_address(p.pod_ip) in ipaddress.ip_network(node.pod_cidr)
        assert n_workers == 0 or node.meta.name != "kind-control-plane"
    cips = [s.cluster_ip for s in state.services]
    assert len(set(cips)) == len(cips)
    # dynamic ClusterIPs come from the upper band: 10.96.1.1 .. 10.96.255.254
    assert all(ipaddress.ip_address("10.96.1.1") <= ipaddress.ip_address(c) <= ipaddress.ip_address("10.96.255.254")
               for c in cips)
    nps = [s.ports[0].node_port for s in state.services]
    assert len(set(nps)) == len(nps) and all(30000 <= n <= 32767 for n in nps)
    for i, r in enumerate(replicas):
        (sl,) = state.slices_for("default", f"app{i}")
        assert len(sl.endpoints) == r


def test_pod_cidr_without_room_for_another_node():
    one_node = ClusterSettings(pod_cidr="10.244.0.0/24", node_cidr_mask_size=24)
    assert problems([], settings=one_node, nodes=("kind-worker", "kind-worker2")) == [
        "Node kind-worker2: spec.podCIDR: the pod CIDR 10.244.0.0/24 has no free /24 left for "
        "this node (fix: use a larger pod_cidr or node_cidr_mask_size in ClusterSettings, or fewer nodes)"
    ]
