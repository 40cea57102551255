"""kube-proxy's UDP conntrack cleanup: the pure function, then the same story on both backends.

The pure part reads as kubernetes/kubernetes pkg/proxy/conntrack/cleanup.go's tests do: a
cluster before and after a sync, a node's entries, and exactly the entries to delete.
The story: a UDP client that keeps its source port keeps its conntrack entry (and so its
endpoint); when that pod goes, kube-proxy's cleanup deletes the entry and the next datagram
from the same port reaches a pod that is still there -- on the sim and on the kernel alike.
"""
from __future__ import annotations

import pytest

from labkit.backends.base import ANSWERED, REFUSED, ConntrackEntry, Tuple4
from labkit.controllers.cluster import ClusterState
from labkit.controllers.kube_proxy.conntrack_cleanup import (
    check_cleanup_required,
    render_conntrack_delete,
    stale_udp_entries,
)
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
from outside_scenario import BACKENDS, make_lab

# --- the pure function ---------------------------------------------------------------------

DNS_IP, LB_IP, EXT_IP, NODE_IP = "10.96.0.10", "203.0.113.10", "198.51.100.7", "172.18.0.3"
POD_A, POD_B, CLIENT = "10.244.1.2", "10.244.2.2", "10.244.1.9"


def service(name: str, cluster_ip: str, protocol: str = "UDP", **extra) -> Service:
    ports = (ServicePort(53, protocol, "dns", 8081, node_port=extra.pop("node_port", 0)),)
    return Service(ObjectMeta(name, "default"), ports, cluster_ip=cluster_ip, **extra)


def endpoints(name: str, *ips: str, protocol: str = "UDP", conditions=EndpointConditions()) -> EndpointSlice:
    return EndpointSlice(ObjectMeta(f"{name}-x", "default", labels={SERVICE_NAME_LABEL: name}), "IPv4",
                         tuple(Endpoint((ip,), conditions) for ip in ips),
                         (EndpointPort(8081, "dns", protocol),))


def state(*objects) -> ClusterState:
    return ClusterState(services=tuple(o for o in objects if isinstance(o, Service)),
                        endpoint_slices=tuple(o for o in objects if isinstance(o, EndpointSlice)))


def udp(dst: str, dport: int, reply_src: str, reply_sport: int = 8081, sport: int = 40000,
        proto: str = "udp") -> ConntrackEntry:
    return ConntrackEntry(proto, Tuple4(CLIENT, dst, sport, dport), Tuple4(reply_src, CLIENT, reply_sport, sport))


DNS = service("dns", DNS_IP, type="LoadBalancer", node_port=30053, external_ips=(EXT_IP,),
              load_balancer_ingress=(LoadBalancerIngress(LB_IP),))
BEFORE = state(DNS, endpoints("dns", POD_A, POD_B))
AFTER = state(DNS, endpoints("dns", POD_B))  # POD_A is gone


def test_entries_dnated_to_a_gone_endpoint_are_deleted_from_every_frontend():
    entries = [
        udp(DNS_IP, 53, POD_A, sport=40001),  # ClusterIP -> the gone pod: stale
        udp(DNS_IP, 53, POD_B, sport=40002),  # ClusterIP -> a pod still serving: kept
        udp(LB_IP, 53, POD_A, sport=40003),  # LoadBalancer VIP: stale
        udp(EXT_IP, 53, POD_A, sport=40004),  # externalIP: stale
        udp(NODE_IP, 30053, POD_A, sport=40005),  # NodePort, on any address: stale
        udp("10.244.2.7", 30053, "10.244.2.7", sport=40006),  # any flow to port 30053 not to an endpoint
        udp(DNS_IP, 54, POD_A, 8082, sport=40007),  # another port of the ClusterIP: kept
        udp(DNS_IP, 53, POD_A, sport=40008, proto="tcp"),  # TCP is left to its own end: kept
        udp("192.0.2.1", 53, "192.0.2.1", 53, sport=40009),  # not a Service: kept
    ]
    stale = stale_udp_entries(BEFORE, AFTER, entries)
    assert [e.orig.sport for e in stale] == [40001, 40003, 40004, 40005, 40006]


def test_a_service_that_gets_its_first_endpoint_loses_its_rejected_entries():
    """The entry of a datagram rejected while the Service had no endpoint has no DNAT: its
    reply source is the ClusterIP itself, which is no serving endpoint."""
    empty = state(DNS)
    entries = [udp(DNS_IP, 53, DNS_IP, 53), udp(NODE_IP, 30053, NODE_IP, 30053, sport=40001)]
    assert stale_udp_entries(empty, state(DNS, endpoints("dns", POD_A)), entries) == entries


def test_a_service_left_without_serving_endpoints_keeps_its_entries():
    entries = [udp(DNS_IP, 53, POD_A)]
    assert stale_udp_entries(BEFORE, state(DNS), entries) == []
    not_serving = EndpointConditions(ready=False, serving=False, terminating=True)
    assert stale_udp_entries(BEFORE, state(DNS, endpoints("dns", POD_A, POD_B, conditions=not_serving)),
                             entries) == []


def test_serving_decides_not_ready():
    """A terminating endpoint that still serves keeps its flows (kube-proxy's IsServing)."""
    draining = endpoints("dns", POD_A, conditions=EndpointConditions(ready=False, serving=True, terminating=True))
    stopped = EndpointSlice(ObjectMeta("dns-y", "default", labels={SERVICE_NAME_LABEL: "dns"}), "IPv4",
                            (Endpoint((POD_B,), EndpointConditions(ready=False, serving=False)),),
                            (EndpointPort(8081, "dns", "UDP"),))
    entries = [udp(DNS_IP, 53, POD_A, sport=40001), udp(DNS_IP, 53, POD_B, sport=40002)]
    assert [e.orig.sport for e in stale_udp_entries(BEFORE, state(DNS, draining, stopped), entries)] == [40002]


def test_nothing_is_cleaned_unless_a_udp_service_changed_its_endpoints():
    stale_looking = [udp(DNS_IP, 53, "10.244.9.9")]
    assert stale_udp_entries(AFTER, AFTER, stale_looking) == []
    web = service("web", "10.96.0.80", protocol="TCP")
    tcp_change = (state(DNS, endpoints("dns", POD_B), web, endpoints("web", POD_A, protocol="TCP")),
                  state(DNS, endpoints("dns", POD_B), web))
    assert check_cleanup_required(*tcp_change) is False
    assert stale_udp_entries(*tcp_change, stale_looking) == []
    assert check_cleanup_required(BEFORE, AFTER) is True
    assert check_cleanup_required(None, AFTER) is True  # the first sync: every slice is new
    assert check_cleanup_required(state(DNS), state(DNS)) is False


def test_the_kernel_lab_deletes_one_entry_by_its_whole_tuple():
    assert render_conntrack_delete(udp(DNS_IP, 53, POD_A)) == [
        "conntrack", "-D", "-p", "udp", "--orig-src", CLIENT, "--orig-dst", DNS_IP,
        "--orig-port-src", "40000", "--orig-port-dst", "53", "--reply-src", POD_A]


# --- the story, on both backends --------------------------------------------------------------


def pod(name: str, app: str, node: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
"""


def udp_service(name: str, ip: str, app: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: {ip}
  selector: {{app: {app}}}
  ports: [{{name: dns, port: 53, targetPort: 8081, protocol: UDP}}]
"""


PODS = {"udp-a": pod("udp-a", "udp", "kind-worker"), "udp-b": pod("udp-b", "udp", "kind-worker2")}
LATE = pod("late-a", "late", "kind-worker2")
MANIFESTS = "---\n".join([pod("client", "client", "kind-worker"), *PODS.values(),
                          udp_service("dns", "10.96.0.53", "udp"), udp_service("late", "10.96.0.54", "late")])
SPORT = 41053


@pytest.fixture(params=BACKENDS)
def lab(request):
    lab = make_lab(request.param, MANIFESTS)
    yield lab
    lab.down()


def udp_entries(lab, sport: int) -> list[tuple[str, str]]:
    """The client's node's UDP entries from `sport`: (original destination, reply source)."""
    return [(f"{e.orig.dst}:{e.orig.dport}", e.reply.src) for e in lab.conntrack("kind-worker")
            if e.proto == "udp" and e.orig.sport == sport]


def ip_of(lab, key: str) -> str:
    return next(p.pod_ip for p in lab.pods() if f"{p.meta.namespace}/{p.meta.name}" == key)


def test_a_udp_client_follows_its_endpoint_away_after_the_cleanup(lab):
    [first] = lab.probe("default/client", "10.96.0.53:53", "udp", sport=SPORT)
    assert first.verdict == ANSWERED and first.answered_by in {"default/udp-a", "default/udp-b"}
    gone = first.answered_by
    other = ({"default/udp-a", "default/udp-b"} - {gone}).pop()
    gone_ip = ip_of(lab, gone)
    # the same port keeps the same entry, so the same pod, however many times
    again = lab.probe("default/client", "10.96.0.53:53", "udp", count=3, sport=SPORT)
    assert {r.answered_by for r in again} == {gone}
    assert udp_entries(lab, SPORT) == [("10.96.0.53:53", gone_ip)]

    lab.delete(PODS[gone.split("/")[1]], "the pod it was using")
    assert udp_entries(lab, SPORT) == []  # kube-proxy deleted the stale entry

    [after] = lab.probe("default/client", "10.96.0.53:53", "udp", sport=SPORT)
    assert (after.verdict, after.answered_by, after.client_address) == (
        ANSWERED, other, f"{ip_of(lab, 'default/client')}:{SPORT}")
    assert udp_entries(lab, SPORT) == [("10.96.0.53:53", ip_of(lab, other))]


def test_a_service_that_gets_its_first_endpoint_answers_the_same_client_port(lab):
    """kube-proxy REJECTs in the filter table, before the kernel confirms a new conntrack
    entry, so a rejected datagram leaves none on the node (both backends): the cleanup's
    "first endpoint" case (the pure test above) finds nothing to delete in this lab, and
    the same client port is answered as soon as the Service has an endpoint."""
    [before] = lab.probe("default/client", "10.96.0.54:53", "udp", sport=SPORT + 1)
    assert before.verdict == REFUSED  # kube-proxy's REJECT: ICMP port unreachable
    assert udp_entries(lab, SPORT + 1) == []
    lab.apply(LATE, "the first endpoint")
    [after] = lab.probe("default/client", "10.96.0.54:53", "udp", sport=SPORT + 1)
    assert (after.verdict, after.answered_by) == (ANSWERED, "default/late-a")
    assert udp_entries(lab, SPORT + 1) == [("10.96.0.54:53", ip_of(lab, "default/late-a"))]


def test_without_the_cleanup_the_stale_entry_swallows_the_datagrams(lab):
    """conntrack_cleanup = False (a kube-proxy that cannot delete entries): the entry still sends the
    same client port to the pod that is gone, on both backends, while a new port reaches the other."""
    lab.conntrack_cleanup = False
    [first] = lab.probe("default/client", "10.96.0.53:53", "udp", sport=SPORT + 2)
    gone_ip = ip_of(lab, first.answered_by)
    lab.delete(PODS[first.answered_by.split("/")[1]], "the pod it was using")
    assert udp_entries(lab, SPORT + 2) == [("10.96.0.53:53", gone_ip)]
    [stuck] = lab.probe("default/client", "10.96.0.53:53", "udp", timeout=0.3, sport=SPORT + 2)
    assert (stuck.verdict, stuck.answered_by) == ("no-reply", "")
    [fresh] = lab.probe("default/client", "10.96.0.53:53", "udp", sport=SPORT + 3)
    assert fresh.verdict == ANSWERED and fresh.answered_by != first.answered_by
