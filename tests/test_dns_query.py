"""DNS packets for probes: scapy queries built, replies read back into Answers."""
import pytest
from scapy.layers.dns import DNS, DNSRR, DNSRRSRV
from scapy.layers.inet import IP, UDP

from labkit.controllers.dns import DnsError
from labkit.dns.query import build_dns_message, build_dns_query, parse_dns_response, response_for


def test_build_dns_query_is_a_pod_asking_kube_dns():
    p = build_dns_query("web.default.svc.cluster.local", "A", src="10.244.1.4")
    assert p.summary() == "IP / UDP / DNS Qry b'web.default.svc.cluster.local.'"
    assert (p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport) == ("10.244.1.4", "10.96.0.10", 40053, 53)
    assert (p[DNS].id, p[DNS].rd, p[DNS].qd[0].qtype) == (0x4C4B, 1, 1)


def test_query_bytes_are_exact():
    assert bytes(build_dns_message("web", "SRV", qid=7)).hex() == (
        "000701000001000000000000" "03776562" "00" "0021" "0001")


def test_unknown_qtype_is_refused():
    with pytest.raises(DnsError, match="query type 'MX' is not supported"):
        build_dns_message("web", "MX")


def reply(query, rcode=0, an=()):
    q = query[DNS]
    dns = DNS(id=q.id, qr=1, aa=1, rd=1, ra=1, rcode=rcode, qd=q.qd, an=list(an))
    return IP(src=query[IP].dst, dst=query[IP].src) / UDP(sport=53, dport=query[UDP].sport) / dns


def test_parse_a_srv_cname_txt_reply_round_trips_through_bytes():
    q = build_dns_query("ext.default.svc.cluster.local", "A", src="10.244.1.4")
    r = reply(q, an=[
        DNSRR(rrname="ext.default.svc.cluster.local.", type="CNAME", ttl=5, rdata="internet.example."),
        DNSRR(rrname="internet.example.", type="A", ttl=5, rdata="203.0.113.10"),
        DNSRRSRV(rrname="_http._tcp.web.default.svc.cluster.local.", ttl=5, priority=0, weight=100, port=80,
                 target="web.default.svc.cluster.local."),
        DNSRR(rrname="dns-version.cluster.local.", type="TXT", ttl=5, rdata=["1.1.0"]),
    ])
    assert response_for(q, r)
    a = parse_dns_response(bytes(r[DNS]))
    assert (a.qname, a.qtype, a.status) == ("ext.default.svc.cluster.local", "A", "NOERROR")
    assert [str(x) for x in a.records] == [
        "ext.default.svc.cluster.local. 5 IN CNAME internet.example.",
        "internet.example. 5 IN A 203.0.113.10",
        "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
        'dns-version.cluster.local. 5 IN TXT "1.1.0"',
    ]


def test_nxdomain_and_nodata():
    q = build_dns_query("nope", "A", src="10.244.1.4")
    assert parse_dns_response(reply(q, rcode=3)).status == "NXDOMAIN"
    assert parse_dns_response(reply(q)).status == "NODATA"


def test_response_for_checks_id_and_ports():
    q = build_dns_query("web", "A", src="10.244.1.4")
    other = build_dns_query("web", "A", src="10.244.1.4", qid=9)
    assert not response_for(other, reply(q))
    assert not response_for(q, q)


def test_a_query_is_not_a_response():
    with pytest.raises(DnsError, match=r"this is a query, not a response \(qr=0\)"):
        parse_dns_response(build_dns_query("web", "A", src="10.244.1.4"))
    with pytest.raises(DnsError, match="not a DNS message"):
        parse_dns_response(IP() / UDP())
