"""Cluster DNS records (the Kubernetes DNS specification) and how the server answers from them."""
import pytest

import dns_scenario
from labkit.controllers.dns import (
    Answer,
    DnsError,
    Record,
    cluster_dns_records,
    dns_records,
    find_records,
    render_records,
)
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    Service,
    ServicePort,
)

GOLDEN = """\
kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1
web.default.svc.cluster.local. 5 IN A 10.96.0.20
kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10
db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.2
db-1.db.default.svc.cluster.local. 5 IN A 10.244.2.2
db.default.svc.cluster.local. 5 IN A 10.244.1.2
db.default.svc.cluster.local. 5 IN A 10.244.2.2
10-244-1-2.default.pod.cluster.local. 5 IN A 10.244.1.2
10-244-2-2.default.pod.cluster.local. 5 IN A 10.244.2.2
10-244-1-3.default.pod.cluster.local. 5 IN A 10.244.1.3
10-244-2-3.default.pod.cluster.local. 5 IN A 10.244.2.3
10-244-1-4.default.pod.cluster.local. 5 IN A 10.244.1.4
internet.example. 5 IN A 203.0.113.10
ext.default.svc.cluster.local. 5 IN CNAME internet.example.
_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.
_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local.
_https._tcp.kubernetes.default.svc.cluster.local. 5 IN SRV 0 100 443 kubernetes.default.svc.cluster.local.
_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.
_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.
_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.
_metrics._tcp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 9153 kube-dns.kube-system.svc.cluster.local.
dns-version.cluster.local. 5 IN TXT "1.1.0"
1.0.96.10.in-addr.arpa. 5 IN PTR kubernetes.default.svc.cluster.local.
20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.
10.0.96.10.in-addr.arpa. 5 IN PTR kube-dns.kube-system.svc.cluster.local.
2.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local.
2.2.244.10.in-addr.arpa. 5 IN PTR db-1.db.default.svc.cluster.local.
3.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-3.default.pod.cluster.local.
3.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-3.default.pod.cluster.local.
4.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-4.default.pod.cluster.local.
10.113.0.203.in-addr.arpa. 5 IN PTR internet.example.
"""


@pytest.fixture(scope="module")
def records():
    return cluster_dns_records(dns_scenario.cluster(), extra=dns_scenario.INTERNET)


def test_golden_records_of_the_scenario(records):
    assert render_records(records) == GOLDEN


def test_same_seed_same_records():
    assert cluster_dns_records(dns_scenario.cluster(3)) == cluster_dns_records(dns_scenario.cluster(3))


# --- answers ---------------------------------------------------------------------


def ans(records, name, qtype):
    a = records.answer(name, qtype)
    return a.status, [str(r) for r in a.records]


def test_cluster_ip_service(records):
    assert ans(records, "web.default.svc.cluster.local", "A") == (
        "NOERROR", ["web.default.svc.cluster.local. 5 IN A 10.96.0.20"])


def test_headless_service_answers_every_ready_pod_only(records):
    status, rrs = ans(records, "db.default.svc.cluster.local.", "A")
    assert status == "NOERROR"
    assert [r.split()[-1] for r in rrs] == ["10.244.1.2", "10.244.2.2"]  # db-2 (10.244.1.3) not ready
    assert ans(records, "db-2.db.default.svc.cluster.local", "A") == ("NXDOMAIN", [])


def test_srv_for_a_named_port(records):
    assert ans(records, "_http._tcp.web.default.svc.cluster.local", "SRV") == (
        "NOERROR", ["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."])
    r = records.answer("_pg._tcp.db.default.svc.cluster.local", "SRV").records[1]
    assert r.srv == (0, 50, 5432, "db-1.db.default.svc.cluster.local")


def test_unknown_name_is_nxdomain(records):
    assert ans(records, "nope.default.svc.cluster.local", "A") == ("NXDOMAIN", [])
    assert ans(records, "example.com", "A") == ("NXDOMAIN", [])


def test_external_name_is_a_cname_followed_within_the_records(records):
    assert ans(records, "ext.default.svc.cluster.local", "A") == ("NOERROR", [
        "ext.default.svc.cluster.local. 5 IN CNAME internet.example.",
        "internet.example. 5 IN A 203.0.113.10",
    ])
    assert ans(records, "ext.default.svc.cluster.local", "CNAME") == (
        "NOERROR", ["ext.default.svc.cluster.local. 5 IN CNAME internet.example."])


def test_nodata_for_other_types_and_for_parents_of_names(records):
    assert ans(records, "web.default.svc.cluster.local", "AAAA") == ("NODATA", [])
    assert ans(records, "default.svc.cluster.local", "A") == ("NODATA", [])
    assert ans(records, "_tcp.web.default.svc.cluster.local", "SRV") == ("NODATA", [])
    assert ans(records, "244.10.in-addr.arpa", "PTR") == ("NXDOMAIN", [])  # reverse names: no parents
    assert ans(records, "x.web.default.svc.cluster.local", "A") == ("NXDOMAIN", [])


def test_case_insensitive(records):
    assert records.answer("WEB.Default.svc.CLUSTER.local", "a").addresses() == ("10.96.0.20",)


def test_ptr_for_cluster_ip_and_endpoint(records):
    assert ans(records, "20.0.96.10.in-addr.arpa", "PTR")[1] == [
        "20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]
    assert ans(records, "2.1.244.10.in-addr.arpa", "PTR")[1] == [
        "2.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."]


def test_unsupported_query_type_says_which_are():
    with pytest.raises(DnsError, match=r"query type 'MX' is not supported \(use one of A, AAAA, CNAME, SRV, PTR, TXT\)"):
        dns_records([]).answer("x", "MX")


def test_answer_key_ignores_order_and_case():
    a = Answer("x", "A", "NOERROR", (Record("X", "A", "1.1.1.1"), Record("x", "A", "2.2.2.2")))
    b = Answer("x", "A", "NOERROR", (Record("x", "A", "2.2.2.2"), Record("x", "A", "1.1.1.1")))
    assert a.key() == b.key()
    assert a.key() != Answer("x", "A", "NOERROR", (Record("x", "A", "1.1.1.1", ttl=30),)).key()


# --- shapes of Services ------------------------------------------------------------


def slice_for(svc_name, endpoints, ports=(EndpointPort(8080, "http"),), name=None):
    return EndpointSlice(
        ObjectMeta(name or f"{svc_name}-abcde", "default", labels={SERVICE_NAME_LABEL: svc_name}),
        "IPv4", tuple(endpoints), tuple(ports))


def headless(name="hl", ports=(ServicePort(80, name="http", target_port=8080),)):
    return Service(ObjectMeta(name, "default"), ports=ports, cluster_ip="None", selector={"app": name})


def test_headless_without_hostnames_uses_dashed_addresses_and_splits_srv_weight():
    eps = [Endpoint(("10.244.1.5",)), Endpoint(("10.244.2.5",)),
           Endpoint(("10.244.2.6",), EndpointConditions(ready=True))]
    recs = dns_records([headless()], [slice_for("hl", eps)])
    assert [str(r) for r in find_records(recs, "_http._tcp.hl.default.svc.cluster.local")] == [
        "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-1-5.hl.default.svc.cluster.local.",
        "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-2-5.hl.default.svc.cluster.local.",
        "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-2-6.hl.default.svc.cluster.local.",
    ]
    assert recs.answer("10-244-2-5.hl.default.svc.cluster.local", "A").addresses() == ("10.244.2.5",)


def test_headless_with_no_ready_endpoint_is_nxdomain():
    eps = [Endpoint(("10.244.1.5",), EndpointConditions(ready=False, serving=True, terminating=True))]
    recs = dns_records([headless()], [slice_for("hl", eps)])
    assert recs.answer("hl.default.svc.cluster.local", "A").status == "NXDOMAIN"


def test_unnamed_ports_have_no_srv_and_dual_stack_gets_aaaa():
    s = Service(ObjectMeta("ds", "default"), ports=(ServicePort(80),), cluster_ip="10.96.0.7",
                cluster_ips=("10.96.0.7", "fd00:10:96::7"), selector={})
    recs = dns_records([s], ttl=30)
    assert render_records(recs) == (
        "ds.default.svc.cluster.local. 30 IN A 10.96.0.7\n"
        "ds.default.svc.cluster.local. 30 IN AAAA fd00:10:96::7\n"
        'dns-version.cluster.local. 30 IN TXT "1.1.0"\n'
        "7.0.96.10.in-addr.arpa. 30 IN PTR ds.default.svc.cluster.local.\n"
        "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 30 IN PTR "
        "ds.default.svc.cluster.local.\n"
    )


def test_service_without_cluster_ip_yet_has_no_records_and_other_zones_work():
    s = Service(ObjectMeta("new", "default"), ports=(ServicePort(80),), selector={})
    recs = dns_records([s], zone="corp.example.")
    assert render_records(recs) == 'dns-version.corp.example. 5 IN TXT "1.1.0"\n'


def test_udp_and_sctp_ports_get_their_protocol_label():
    s = Service(ObjectMeta("m", "default"), cluster_ip="10.96.0.8", selector={},
                ports=(ServicePort(53, "UDP", "dns"), ServicePort(9, "SCTP", "chat")))
    names = [r.name for r in dns_records([s]).records if r.type == "SRV"]
    assert names == ["_dns._udp.m.default.svc.cluster.local", "_chat._sctp.m.default.svc.cluster.local"]


def test_extra_record_of_unknown_type_is_refused():
    with pytest.raises(DnsError, match="record type 'MX' is not served here"):
        dns_records([], extra=[Record("mail.example", "MX", "10 mx.example.")])
