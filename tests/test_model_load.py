"""Loading manifests: each kind, compared in full, with the API server's defaults."""
from pathlib import Path

import pytest

from labkit.errors import ManifestError
from labkit.model import load_manifests, parse_object, ref
from labkit.model.objects import (
    Container, ContainerPort, Deployment, Endpoint, EndpointConditions, EndpointPort,
    EndpointSlice, HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressServiceBackend,
    IngressTLS, IPBlock, LabelSelector, LabelSelectorRequirement, LoadBalancerIngress, Namespace,
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, Node, NodeAddress,
    ObjectMeta, ObjectReference, Pod, PodCondition, PodTemplate, Service, ServicePort,
)

MANIFESTS = Path(__file__).parent / "manifests"


def load_file(name: str) -> list:
    path = MANIFESTS / name
    return load_manifests(path.read_text(), str(path))


def load_one(text: str):
    objs = load_manifests(text)
    assert len(objs) == 1
    return objs[0]


# --- the example manifests, each compared in full ------------------------------------


def test_web_deployment_and_service():
    deploy, svc = load_file("web.yaml")
    assert deploy == Deployment(
        meta=ObjectMeta("web", "default", {"app": "web"}),
        selector=LabelSelector({"app": "web"}),
        template=PodTemplate(
            meta=ObjectMeta("", "", {"app": "web", "tier": "frontend"}),
            containers=(Container("nginx", "nginx:1.27", (ContainerPort(80, "http", "TCP"),)),)),
        replicas=3)
    assert svc == Service(
        meta=ObjectMeta("web", "default", {"app": "web"}),
        ports=(ServicePort(80, "TCP", "http", "http"),),
        type="ClusterIP", selector={"app": "web"},
        cluster_ip="10.96.0.80", cluster_ips=("10.96.0.80",),
        external_traffic_policy="", internal_traffic_policy="Cluster", session_affinity="None")


def test_nodeport_service_defaults_external_traffic_policy_to_cluster():
    (svc,) = load_file("nodeport.yaml")
    assert svc == Service(
        meta=ObjectMeta("web-nodeport", "default"),
        ports=(ServicePort(80, "TCP", "http", 80, node_port=30080),),
        type="NodePort", selector={"app": "web"},
        external_traffic_policy="Cluster", internal_traffic_policy="Cluster")


def test_loadbalancer_with_source_ranges_and_status():
    (svc,) = load_file("loadbalancer.yaml")
    assert svc == Service(
        meta=ObjectMeta("web-lb", "default", annotations={
            "labkit.example.com/note": "external clients come from 203.0.113.0/24 and 198.51.100.0/24"}),
        ports=(ServicePort(80, "TCP", "http", 80, 31080), ServicePort(443, "TCP", "https", 443, 31443)),
        type="LoadBalancer", selector={"app": "web"},
        load_balancer_source_ranges=("203.0.113.0/24", "198.51.100.0/24"),
        external_traffic_policy="Local", health_check_node_port=32000,
        load_balancer_ingress=(LoadBalancerIngress(ip="192.0.2.10", ip_mode="VIP"),))


def test_selectorless_service_and_hand_written_endpointslice():
    svc, eps = load_file("selectorless.yaml")
    assert svc == Service(
        meta=ObjectMeta("db", "default"),
        ports=(ServicePort(5432, "TCP", "postgres", 5432),),
        selector=None, cluster_ip="10.96.0.50", cluster_ips=("10.96.0.50",))
    assert eps == EndpointSlice(
        meta=ObjectMeta("db-manual", "default", {
            "kubernetes.io/service-name": "db",
            "endpointslice.kubernetes.io/managed-by": "labkit.example.com"}),
        address_type="IPv4",
        endpoints=(
            Endpoint(("198.51.100.20",), EndpointConditions(ready=True)),
            Endpoint(("10.244.1.7",), EndpointConditions(True, True, False), node_name="kind-worker")),
        ports=(EndpointPort(5432, "postgres", "TCP"),))
    assert eps.service_name == "db"


def test_network_policy_in_full():
    (np,) = load_file("networkpolicy.yaml")
    assert np == NetworkPolicy(
        meta=ObjectMeta("api-allow-frontend", "default"),
        pod_selector=LabelSelector({"app": "api"}),
        policy_types=("Ingress", "Egress"),
        ingress=(NetworkPolicyRule(
            peers=(
                NetworkPolicyPeer(pod_selector=LabelSelector({"tier": "frontend"})),
                NetworkPolicyPeer(namespace_selector=LabelSelector({}, (
                    LabelSelectorRequirement("kubernetes.io/metadata.name", "In", ("monitoring",)),))),
                NetworkPolicyPeer(ip_block=IPBlock("203.0.113.0/24", ("203.0.113.66/32",)))),
            ports=(NetworkPolicyPort("TCP", 8080),)),),
        egress=(NetworkPolicyRule(
            peers=(NetworkPolicyPeer(pod_selector=LabelSelector({"k8s-app": "kube-dns"}),
                                     namespace_selector=LabelSelector()),),
            ports=(NetworkPolicyPort("UDP", 53), NetworkPolicyPort("TCP", 53),
                   NetworkPolicyPort("TCP", 30000, 32767))),))


def test_ingress_in_full():
    (ing,) = load_file("ingress.yaml")
    web80 = IngressBackend(IngressServiceBackend("web", port_number=80))
    assert ing == Ingress(
        meta=ObjectMeta("web", "default", annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/"}),
        ingress_class_name="nginx",
        rules=(
            IngressRule("web.example.com", (
                HTTPIngressPath("Prefix", IngressBackend(IngressServiceBackend("api", 8080)), "/api"),
                HTTPIngressPath("Exact", IngressBackend(IngressServiceBackend("web", port_name="http")), "/"))),
            IngressRule("*.example.com", (HTTPIngressPath("Prefix", web80, "/"),))),
        tls=(IngressTLS(("web.example.com",), "web-tls"),))


def test_node_list_is_flattened_and_pod_cidrs_synced():
    nodes = load_file("nodes.yaml")
    assert nodes == [
        Node(ObjectMeta("kind-control-plane", "", {"kubernetes.io/hostname": "kind-control-plane",
                                                   "node-role.kubernetes.io/control-plane": ""}),
             "10.244.0.0/24", ("10.244.0.0/24",),
             (NodeAddress("InternalIP", "172.18.0.2"), NodeAddress("Hostname", "kind-control-plane"))),
        Node(ObjectMeta("kind-worker", "", {"kubernetes.io/hostname": "kind-worker"}),
             "10.244.1.0/24", ("10.244.1.0/24",),
             (NodeAddress("InternalIP", "172.18.0.3"), NodeAddress("Hostname", "kind-worker"))),
        Node(ObjectMeta("kind-worker2", "", {"kubernetes.io/hostname": "kind-worker2"}),
             "10.244.2.0/24", ("10.244.2.0/24",),
             (NodeAddress("InternalIP", "172.18.0.4"), NodeAddress("Hostname", "kind-worker2"))),
    ]


def test_kind_cluster_dump_loads():
    objs = load_file("kind-dump.yaml")
    assert [ref(o) for o in objs] == [
        "Service default/kubernetes", "Service default/web", "Service kube-system/kube-dns",
        "EndpointSlice default/kubernetes", "EndpointSlice default/web-8hq4r",
        "EndpointSlice kube-system/kube-dns-vx2fl",
        "Pod default/web-6f9c8d7b5d-4xk2p", "Pod default/web-6f9c8d7b5d-t8wln",
        "Pod kube-system/etcd-kind-control-plane", "Pod kube-system/coredns-7c65d6cfc9-8mxvq",
    ]
    dns = objs[2]
    assert dns.ports == (ServicePort(53, "UDP", "dns", 53), ServicePort(53, "TCP", "dns-tcp", 53),
                         ServicePort(9153, "TCP", "metrics", 9153))
    assert (dns.cluster_ip, dns.cluster_ips, dns.ip_families, dns.ip_family_policy) == (
        "10.96.0.10", ("10.96.0.10",), ("IPv4",), "SingleStack")
    web_slice = objs[4]
    assert web_slice.endpoints[2] == Endpoint(
        ("10.244.1.3",), EndpointConditions(False, True, True), node_name="kind-worker",
        target_ref=ObjectReference("Pod", "default", "web-6f9c8d7b5d-t8wln",
                                   "3b4c5d6e-7f8a-4b9c-8d1e-2f3a4b5c6d7e"))
    ready, leaving, etcd, coredns = objs[6:]
    assert ready == Pod(
        meta=ObjectMeta("web-6f9c8d7b5d-4xk2p", "default",
                        {"app": "web", "pod-template-hash": "6f9c8d7b5d", "tier": "frontend"},
                        uid="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"),
        containers=(Container("nginx", "nginx:1.27", (ContainerPort(80, "http", "TCP"),)),),
        node_name="kind-worker", phase="Running", pod_ip="10.244.1.2", pod_ips=("10.244.1.2",),
        host_ip="172.18.0.3",
        conditions=(PodCondition("PodReadyToStartContainers", "True"), PodCondition("Initialized", "True"),
                    PodCondition("Ready", "True"), PodCondition("ContainersReady", "True"),
                    PodCondition("PodScheduled", "True")))
    assert (ready.ready, ready.terminating) == (True, False)
    assert (leaving.ready, leaving.terminating) == (False, True)
    assert (etcd.host_network, etcd.pod_ip, etcd.containers[0].command[0]) == (True, "172.18.0.2", "etcd")
    assert coredns.containers[0].args == ("-conf", "/etc/coredns/Corefile")


# --- defaults, one by one ----------------------------------------------------------

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
"""


def test_service_defaults():
    svc = load_one(SVC)
    assert svc == Service(meta=ObjectMeta("web", "default"), ports=(ServicePort(80, "TCP", "", 80),),
                          type="ClusterIP", selector={"app": "web"}, external_traffic_policy="",
                          internal_traffic_policy="Cluster", session_affinity="None",
                          session_affinity_timeout=0)


def test_client_ip_affinity_defaults_to_three_hours():
    svc = load_one(SVC + "  sessionAffinity: ClientIP\n")
    assert (svc.session_affinity, svc.session_affinity_timeout) == ("ClientIP", 10800)


def test_client_ip_affinity_timeout_given():
    svc = load_one(SVC + "  sessionAffinity: ClientIP\n"
                   "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n")
    assert svc.session_affinity_timeout == 60


@pytest.mark.parametrize("selector", ["{}", "null"])
def test_empty_or_null_selector_is_none(selector):
    svc = load_one(SVC.replace("{app: web}", selector))
    assert svc.selector is None


def test_selector_absent_is_none():
    svc = load_one(SVC.replace("  selector: {app: web}\n", ""))
    assert svc.selector is None


def test_cluster_ips_fill_cluster_ip_and_back():
    a = load_one(SVC + "  clusterIPs: [10.96.0.5]\n")
    b = load_one(SVC + "  clusterIP: 10.96.0.5\n")
    assert (a.cluster_ip, a.cluster_ips) == (b.cluster_ip, b.cluster_ips) == ("10.96.0.5", ("10.96.0.5",))


def test_headless_service_needs_no_ports():
    svc = load_one(SVC.replace("  ports:\n  - port: 80\n", "  clusterIP: None\n"))
    assert (svc.headless, svc.ports, svc.cluster_ips) == (True, (), ("None",))


def test_external_name_service():
    svc = load_one("apiVersion: v1\nkind: Service\nmetadata: {name: db}\n"
                   "spec: {type: ExternalName, externalName: db.example.com.}\n")
    assert svc == Service(ObjectMeta("db", "default"), type="ExternalName",
                          external_name="db.example.com.", internal_traffic_policy="")


def test_cluster_ip_with_external_ips_gets_cluster_policy():
    svc = load_one(SVC + "  externalIPs: [203.0.113.7]\n")
    assert (svc.external_ips, svc.external_traffic_policy) == (("203.0.113.7",), "Cluster")


def test_target_port_zero_means_port_and_names_are_kept():
    svc = load_one(SVC.replace("- port: 80", "- {port: 80, targetPort: 0, name: a}\n"
                               "  - {port: 81, targetPort: metrics, name: b, protocol: UDP}"))
    assert svc.ports == (ServicePort(80, "TCP", "a", 80), ServicePort(81, "UDP", "b", "metrics"))


def test_ipv6_service_addresses():
    svc = load_one(SVC + "  clusterIP: fd00:10:96::a\n  ipFamilies: [IPv6]\n")
    assert (svc.cluster_ip, svc.ip_families) == ("fd00:10:96::a", ("IPv6",))


def test_pod_defaults_and_status():
    pod = load_one("""\
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: lab, labels: {role: client}}
spec:
  nodeName: kind-worker
  hostname: client
  subdomain: clients
  containers:
  - name: shell
    image: busybox
    command: [sleep, infinity]
    ports: [{containerPort: 8080, hostPort: 8080}]
status:
  phase: Pending
  podIPs: [{ip: 10.244.1.9}]
""")
    assert pod == Pod(
        meta=ObjectMeta("client", "lab", {"role": "client"}),
        containers=(Container("shell", "busybox", (ContainerPort(8080, "", "TCP", 8080),),
                              ("sleep", "infinity")),),
        node_name="kind-worker", hostname="client", subdomain="clients",
        phase="Pending", pod_ip="10.244.1.9", pod_ips=("10.244.1.9",))
    assert pod.ready is False and pod.terminating is False


def test_deployment_replicas_default_to_one_and_expressions_select():
    d = load_one("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector:
    matchLabels: {app: api}
    matchExpressions: [{key: tier, operator: NotIn, values: [db]}]
  template:
    metadata: {labels: {app: api, tier: backend}}
    spec: {containers: [{name: api, image: "registry.example.com/api:1"}]}
""")
    assert d == Deployment(
        ObjectMeta("api", "default"),
        LabelSelector({"app": "api"}, (LabelSelectorRequirement("tier", "NotIn", ("db",)),)),
        PodTemplate(ObjectMeta("", "", {"app": "api", "tier": "backend"}),
                    (Container("api", "registry.example.com/api:1"),)),
        replicas=1)


def test_namespace_is_cluster_scoped():
    ns = load_one("apiVersion: v1\nkind: Namespace\nmetadata: {name: lab, labels: {team: net}}\n"
                  "status: {phase: Active}\n")
    assert ns == Namespace(ObjectMeta("lab", "", {"team": "net"}))
    assert ref(ns) == "Namespace lab"


def test_network_policy_absent_and_empty_rules_differ():
    np = load_one("""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress:
  - {}
  - from: []
    ports: [{port: http, protocol: SCTP}]
""")
    assert np == NetworkPolicy(
        ObjectMeta("p", "default"), LabelSelector(), policy_types=None,
        ingress=(NetworkPolicyRule(None, None),
                 NetworkPolicyRule((), (NetworkPolicyPort("SCTP", "http"),))),
        egress=None)


def test_network_policy_without_pod_selector_selects_all():
    np = load_one("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
                  "spec: {policyTypes: [Egress]}\n")
    assert (np.pod_selector, np.policy_types, np.egress) == (LabelSelector(), ("Egress",), None)


def test_ingress_default_backend_and_ipv6_endpoints():
    ing, eps = load_manifests("""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: all}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v6, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
endpoints:
- addresses: ["fd00:10:244:1::5"]
  zone: zone-a
  hints: {forZones: [{name: zone-a}], forNodes: [{name: kind-worker}]}
ports:
- {}
""")
    assert ing == Ingress(ObjectMeta("all", "default"),
                          default_backend=IngressBackend(IngressServiceBackend("web", 80)))
    assert eps == EndpointSlice(
        ObjectMeta("v6", "default", {"kubernetes.io/service-name": "web"}), "IPv6",
        (Endpoint(("fd00:10:244:1::5",), zone="zone-a", hints_for_zones=("zone-a",),
                  hints_for_nodes=("kind-worker",)),),
        (EndpointPort(None, "", "TCP"),))


# --- streams, lists, documents --------------------------------------------------------


def test_stream_with_empty_documents_and_comments():
    text = "---\n# nothing\n---\n" + SVC + "---\n---\n" + SVC.replace("name: web", "name: web2")
    assert [ref(o) for o in load_manifests(text)] == ["Service default/web", "Service default/web2"]


def test_empty_text_loads_nothing():
    assert load_manifests("") == []
    assert load_manifests("# just a comment\n") == []


def test_nested_lists_are_flattened():
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: b}}
  - apiVersion: v1
    kind: List
    items: [{apiVersion: v1, kind: Namespace, metadata: {name: c}}]
"""
    assert [ref(o) for o in load_manifests(text)] == ["Namespace a", "Namespace b", "Namespace c"]


def test_typed_list_items_take_kind_from_the_list():
    text = "apiVersion: v1\nkind: NamespaceList\nitems: [{metadata: {name: a}}, {metadata: {name: b}}]\n"
    assert [ref(o) for o in load_manifests(text)] == ["Namespace a", "Namespace b"]


def test_yaml_anchors_and_merge_keys_work():
    text = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: &labels {app: web}
spec:
  selector: *labels
  ports:
  - &http {name: http, port: 80}
  - <<: *http
    name: alt
    port: 8080
"""
    svc = load_one(text)
    assert svc.selector == {"app": "web"} and svc.meta.labels == {"app": "web"}
    assert svc.ports == (ServicePort(80, "TCP", "http", 80), ServicePort(8080, "TCP", "alt", 8080))


def test_timestamps_and_quoted_numbers_stay_text():
    ns = load_one("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab\n"
                  "  annotations: {when: 2024-10-01T09:12:03Z, port: '80'}\n")
    assert ns.meta.annotations == {"when": "2024-10-01T09:12:03Z", "port": "80"}


def test_label_with_no_value_is_empty_string():
    ns = load_one("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab\n  labels:\n    flag:\n")
    assert ns.meta.labels == {"flag": ""}


def test_bytes_input_is_decoded():
    assert [ref(o) for o in load_manifests(SVC.encode())] == ["Service default/web"]


def test_parse_object_takes_a_decoded_document():
    svc = parse_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}})
    assert svc.ports == (ServicePort(80, "TCP", "", 8080),)


def test_parse_object_refuses_a_list():
    with pytest.raises(ManifestError) as e:
        parse_object({"apiVersion": "v1", "kind": "List", "items": []}, "x.yaml")
    assert str(e.value) == ("x.yaml: 1 problem found:\n  - document 1: kind: a List holds several "
                            "objects (fix: use load_manifests() for Lists)")


def test_same_text_gives_equal_objects():
    a, b = load_manifests(SVC + "---\n" + SVC)
    assert a == b


def test_external_name_on_a_cluster_ip_service_is_kept_but_unused():
    svc = load_one(SVC + "  externalName: db.example.com\n")
    assert (svc.type, svc.external_name) == ("ClusterIP", "db.example.com")
