"""The pod's stub resolver: resolv.conf, glibc's search-list walk, and the queries it costs."""
import pytest

import dns_scenario
from labkit.controllers.dns import Answer, Record, cluster_dns_records
from labkit.dns.resolver import (
    ResolvConf,
    ResolvConfError,
    parse_resolv_conf,
    pod_resolv_conf,
    render_resolv_conf,
    resolve,
    resolve_host,
    search_candidates,
)
from labkit.errors import LabkitError

CONF = pod_resolv_conf("default")


@pytest.fixture(scope="module")
def store():
    return cluster_dns_records(dns_scenario.cluster(), extra=dns_scenario.INTERNET).answer


def test_render_resolv_conf_as_the_runtime_writes_it():
    assert render_resolv_conf("shop") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )
    assert render_resolv_conf("a", cluster_domain="k.example", host_search=["corp.example"],
                              nameservers=["10.96.0.53"]) == (
        "search a.svc.k.example svc.k.example k.example corp.example\n"
        "nameserver 10.96.0.53\n"
        "options ndots:5\n"
    )


def test_parse_resolv_conf_round_trip_and_glibc_rules():
    assert parse_resolv_conf(render_resolv_conf("shop")) == pod_resolv_conf("shop")
    conf = parse_resolv_conf("# c\ndomain a.example\nsearch b.example c.example\nnameserver 1.1.1.1\n"
                             "options ndots:20 edns0\n")
    assert conf == ResolvConf(("1.1.1.1",), ("b.example", "c.example"), 15, ("ndots:20", "edns0"))
    assert parse_resolv_conf("nameserver 9.9.9.9\n").ndots == 1


def test_parse_resolv_conf_errors_name_the_line_and_the_fix():
    with pytest.raises(ResolvConfError, match=r"line 2: 'ndots:x' needs a number \(fix: write e.g. ndots:5\)"):
        parse_resolv_conf("nameserver 1.1.1.1\noptions ndots:x\n")
    with pytest.raises(ResolvConfError, match=r"line 1: unknown keyword 'nameservers'"):
        parse_resolv_conf("nameservers 1.1.1.1\n")


@pytest.mark.parametrize("name, expected", [
    ("web", ["web.default.svc.cluster.local", "web.svc.cluster.local", "web.cluster.local", "web"]),
    # 4 dots, below ndots:5: the search list first, as is last
    ("a.b.c.d.e", ["a.b.c.d.e.default.svc.cluster.local", "a.b.c.d.e.svc.cluster.local",
                   "a.b.c.d.e.cluster.local", "a.b.c.d.e"]),
    ("web.default.svc.cluster.local.", ["web.default.svc.cluster.local"]),
])
def test_search_candidates(name, expected):
    assert list(search_candidates(name, CONF)) == expected


def test_enough_dots_asks_as_is_first():
    assert search_candidates("a.b.c.d.e.f", CONF) == (
        "a.b.c.d.e.f", "a.b.c.d.e.f.default.svc.cluster.local", "a.b.c.d.e.f.svc.cluster.local",
        "a.b.c.d.e.f.cluster.local")


def test_root_on_the_search_list_replaces_the_final_as_is_query():
    conf = ResolvConf(search=("x.example", "."), ndots=1)
    assert search_candidates("web", conf) == ("web.x.example", "web")


def test_short_name_costs_one_query_and_a_fqdn_without_dot_costs_four(store):
    short = resolve("web", "A", CONF, store)
    fqdn = resolve("web.default.svc.cluster.local", "A", CONF, store)
    absolute = resolve("web.default.svc.cluster.local.", "A", CONF, store)
    assert (short.query_count, fqdn.query_count, absolute.query_count) == (1, 4, 1)
    assert short.addresses == fqdn.addresses == absolute.addresses == ("10.96.0.20",)
    assert fqdn.render() == (
        "1. web.default.svc.cluster.local.default.svc.cluster.local A -> NXDOMAIN\n"
        "2. web.default.svc.cluster.local.svc.cluster.local A -> NXDOMAIN\n"
        "3. web.default.svc.cluster.local.cluster.local A -> NXDOMAIN\n"
        "4. web.default.svc.cluster.local A -> NOERROR 10.96.0.20\n"
        "web.default.svc.cluster.local: NOERROR after 4 queries (answered as web.default.svc.cluster.local)\n"
    )


def test_getaddrinfo_sends_a_and_aaaa_per_candidate(store):
    r = resolve_host("nope", CONF, store)
    assert r.status == "NXDOMAIN" and r.query_count == 8
    assert [(q.name, q.qtype) for q in r.queries[:2]] == [
        ("nope.default.svc.cluster.local", "A"), ("nope.default.svc.cluster.local", "AAAA")]
    ok = resolve_host("internet.example", CONF, store)
    assert (ok.status, ok.query_count, ok.addresses) == ("NOERROR", 8, ("203.0.113.10",))


def test_other_namespace_needs_the_namespace_in_the_name(store):
    conf = pod_resolv_conf("shop")
    assert resolve("web", "A", conf, store).status == "NXDOMAIN"
    r = resolve("web.default", "A", conf, store)
    assert (r.status, r.query_count, r.answered_name) == ("NOERROR", 2, "web.default.svc.cluster.local")


def test_headless_srv_and_cname(store):
    r = resolve("_pg._tcp.db", "SRV", CONF, store)
    assert [rec.data for rec in r.records] == [
        "0 50 5432 db-0.db.default.svc.cluster.local.", "0 50 5432 db-1.db.default.svc.cluster.local."]
    assert resolve("ext", "A", CONF, store).addresses == ("203.0.113.10",)


def fixed(answers):
    """An ask() that answers from a table of (name, qtype) -> rcode/records."""
    def ask(name, qtype):
        rcode, data = answers.get((name, qtype), ("NXDOMAIN", ()))
        return Answer(name, qtype, rcode, tuple(Record(name, qtype, d) for d in data))
    return ask


def test_nodata_keeps_searching_and_is_the_final_status():
    ask = fixed({("x.default.svc.cluster.local", "A"): ("NOERROR", ())})
    r = resolve("x", "A", CONF, ask)
    assert (r.status, r.query_count) == ("NODATA", 4)


def test_servfail_keeps_searching_refused_stops_the_search_but_not_the_as_is_query():
    ask = fixed({("x.default.svc.cluster.local", "A"): ("SERVFAIL", ()),
                 ("x.svc.cluster.local", "A"): ("REFUSED", ()),
                 ("x", "A"): ("NOERROR", ("192.0.2.1",))})
    r = resolve("x", "A", CONF, ask)
    assert [q.name for q in r.queries] == ["x.default.svc.cluster.local", "x.svc.cluster.local", "x"]
    assert (r.status, r.addresses) == ("NOERROR", ("192.0.2.1",))
    only_servfail = resolve("y", "A", CONF, fixed({("y", "A"): ("SERVFAIL", ()),
                                                   ("y.cluster.local", "A"): ("SERVFAIL", ())}))
    assert only_servfail.status == "SERVFAIL"


def test_as_is_status_first_wins_when_everything_fails():
    conf = ResolvConf(search=("a.example",), ndots=1)
    r = resolve("x.y", "A", conf, fixed({("x.y", "A"): ("NOERROR", ())}))
    assert [q.name for q in r.queries] == ["x.y", "x.y.a.example"]
    assert r.status == "NODATA"


def test_an_absolute_name_is_never_searched():
    r = resolve("nope.", "A", CONF, fixed({}))
    assert (r.status, [q.name for q in r.queries]) == ("NXDOMAIN", ["nope"])


def test_empty_name_is_refused():
    with pytest.raises(LabkitError, match="an empty name cannot be resolved"):
        resolve("", "A", CONF, fixed({}))
