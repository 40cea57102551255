"""The dnsmasq configuration that serves the cluster's records (the kernel test runs it for real)."""
import pytest

from labkit.controllers.dns import DnsError, DnsRecords, Record, dns_records
from labkit.dns.server_conf import dnsmasq_argv, parse_query_log, render_dnsmasq_conf, render_record
from labkit.model.objects import ObjectMeta, Service, ServicePort

WEB = Service(ObjectMeta("web", "default"), ports=(ServicePort(80, name="http"),),
              cluster_ip="10.96.0.20", selector={"app": "web"})
EXT = Service(ObjectMeta("ext", "default"), type="ExternalName", external_name="Example.COM.")


def test_golden_config():
    conf = render_dnsmasq_conf(dns_records([WEB, EXT]), listen_address="10.244.0.5", port=53,
                               state_dir="/run/labkit/lab1")
    assert conf == """\
# Cluster DNS for the zone cluster.local, written by labkit: serves exactly the records
# below; every other name is NXDOMAIN.
no-resolv
no-hosts
no-poll
keep-in-foreground
bind-interfaces
listen-address=10.244.0.5
port=53
pid-file=/run/labkit/lab1/dnsmasq.pid
user=root
log-queries
log-facility=/run/labkit/lab1/dnsmasq.log
local=/cluster.local/
# no upstream server in the lab: answer every other name from local data (NXDOMAIN)
local=/#/
local-ttl=5
host-record=web.default.svc.cluster.local,10.96.0.20,5
cname=ext.default.svc.cluster.local,example.com,5
srv-host=_http._tcp.web.default.svc.cluster.local,web.default.svc.cluster.local,80,0,100
txt-record=dns-version.cluster.local,1.1.0
"""


def test_user_namespace_mode_skips_the_privilege_drop_and_the_pid_file():
    conf = render_dnsmasq_conf(dns_records([WEB]), state_dir="/tmp/s", user_namespace=True)
    head = conf.split("local=")[0]
    assert head.splitlines()[5:] == [
        "# unprivileged user namespace: no privilege drop (setgroups is denied), no pid file",
        "no-daemon",
        "bind-interfaces",
        "listen-address=10.96.0.10",
        "port=53",
        "log-queries",
        "log-facility=/tmp/s/dnsmasq.log",
    ]


def test_without_logging_and_user():
    conf = render_dnsmasq_conf(dns_records([]), log_queries=False, user=None, port=5353)
    assert "log-queries" not in conf and "user=" not in conf and "port=5353\n" in conf


@pytest.mark.parametrize("record, line", [
    (Record("a.example", "AAAA", "fd00::1", 30), "host-record=a.example,fd00::1,30"),
    (Record("t.example", "TXT", '"a,b"'), 'txt-record=t.example,"a,b"'),
    (Record("_x._udp.s.example", "SRV", "1 2 3 t.example."), "srv-host=_x._udp.s.example,t.example,3,1,2"),
])
def test_render_record(record, line):
    assert render_record(record) == line


def test_ptr_records_are_derived_not_written():
    with pytest.raises(DnsError, match="dnsmasq derives PTR records itself"):
        render_record(Record("1.0.96.10.in-addr.arpa", "PTR", "web.default.svc.cluster.local."))


def test_hand_made_ptr_that_dnsmasq_would_not_derive_is_refused():
    recs = DnsRecords("cluster.local", (Record("a.example", "A", "192.0.2.1"),
                                        Record("1.2.0.192.in-addr.arpa", "PTR", "b.example.")))
    with pytest.raises(DnsError, match="not the ones dnsmasq would derive"):
        render_dnsmasq_conf(recs)


def test_srv_and_txt_must_share_one_ttl():
    recs = DnsRecords("cluster.local", (Record("_a._tcp.x", "SRV", "0 100 1 x.", 5),
                                        Record("t.x", "TXT", '"v"', 30)))
    with pytest.raises(DnsError, match=r"use \[5, 30\] \(fix: build the records with a single ttl\)"):
        render_dnsmasq_conf(recs)


def test_argv_reads_only_our_file():
    assert dnsmasq_argv("/run/labkit/lab1/dnsmasq.conf", "/usr/sbin/dnsmasq") == (
        "/usr/sbin/dnsmasq", "--conf-file=/run/labkit/lab1/dnsmasq.conf")


def test_parse_query_log():
    log = (
        "Nov 26 01:32:14 dnsmasq[30906]: query[A] web.default.svc.cluster.local from 10.244.1.3\n"
        "Nov 26 01:32:14 dnsmasq[30906]: config web.default.svc.cluster.local is 10.96.0.20\n"
        "Nov 26 01:32:15 dnsmasq[30906]: query[AAAA] web.default.svc.cluster.local from 10.244.1.3\n"
    )
    assert parse_query_log(log) == [("A", "web.default.svc.cluster.local"),
                                    ("AAAA", "web.default.svc.cluster.local")]
