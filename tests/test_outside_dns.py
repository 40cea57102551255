"""Cluster DNS: the same answers, and the same queries sent, from dnsmasq in the kernel and the pure resolver.

The kube-dns add-on (kube-system/kube-dns at 10.96.0.10, two DNS pods) is
applied to the lab; in the kernel its pods run dnsmasq with the cluster's
records, and each query is a UDP datagram from the pod through kube-proxy's
DNAT. A short name walks the search list (ndots:5): the number of queries is
what environment variables save.
"""
import pytest

from outside_scenario import BACKENDS, MANIFESTS, TOOLS, make_lab, service, svc

HEADLESS = service("db", "  clusterIP: None\n  selector: {app: web}\n  ports: [{name: http, port: 8080}]\n")


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param, "---\n".join([MANIFESTS, HEADLESS]), tools=TOOLS + ("dnsmasq",))
    try:
        lab.enable_dns()
        yield lab
    finally:
        lab.down()


def view(res):
    return (res.status, [q.name for q in res.queries], sorted(res.addresses))


def test_kube_dns_is_at_the_conventional_address(lab):
    assert svc(lab, "kube-dns").cluster_ip == "10.96.0.10"
    assert sorted(p.meta.namespace for p in lab.pods() if p.meta.labels.get("k8s-app") == "kube-dns") == [
        "kube-system", "kube-system"]


def test_a_cluster_ip_service_by_its_short_name(lab):
    assert view(lab.dns("default/client", "web-np")) == (
        "NOERROR", ["web-np.default.svc.cluster.local"], [svc(lab, "web-np").cluster_ip])


def test_a_fully_qualified_name_still_walks_the_search_list(lab):
    """4 dots < ndots:5, so the search domains come first: 4 queries, the last one answered."""
    res = lab.dns("default/client", "web-np.default.svc.cluster.local")
    assert view(res) == ("NOERROR", ["web-np.default.svc.cluster.local.default.svc.cluster.local",
                                     "web-np.default.svc.cluster.local.svc.cluster.local",
                                     "web-np.default.svc.cluster.local.cluster.local",
                                     "web-np.default.svc.cluster.local"], [svc(lab, "web-np").cluster_ip])
    assert view(lab.dns("default/client", "web-np.default.svc.cluster.local."))[1] == [
        "web-np.default.svc.cluster.local"]


def test_a_headless_service_returns_the_pods(lab):
    pods = sorted(p.pod_ip for p in lab.pods() if p.meta.labels.get("app") == "web")
    assert view(lab.dns("default/client", "db")) == ("NOERROR", ["db.default.svc.cluster.local"], pods)


def test_srv_for_a_named_port(lab):
    res = lab.dns("default/client", "_http._tcp.db.default.svc.cluster.local", "SRV")
    assert res.status == "NOERROR"
    assert sorted((r.srv[2], r.srv[3].split(".")[0]) for r in res.records) == [
        (8080, "10-244-2-2"), (8080, "10-244-2-3")]


def test_a_name_that_does_not_exist(lab):
    assert view(lab.dns("default/client", "nothing")) == (
        "NXDOMAIN", ["nothing.default.svc.cluster.local", "nothing.svc.cluster.local", "nothing.cluster.local",
                     "nothing"], [])


def test_the_query_goes_through_the_kube_dns_dnat(lab):
    lab.dns("default/client", "web-np")
    dns_ips = {p.pod_ip for p in lab.pods() if p.meta.labels.get("k8s-app") == "kube-dns"}
    udp = [e for e in lab.conntrack("kind-worker") if e.proto == "udp" and e.orig.dst == "10.96.0.10"]
    assert udp and all(e.orig.dport == 53 and e.reply.src in dns_ips and e.reply.sport == 53 for e in udp)
