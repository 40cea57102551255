"""The real DNS server agrees with the pure record store, and real glibc with the pure resolver.

As root: a network namespace `lktest-dns-<random>` with 10.96.0.10/32 on its
loopback (this kernel has no dummy link type; the address is inside the
namespace either way), dnsmasq started there with the rendered configuration,
and queries sent over UDP from inside the namespace. Every answer (rcode and
answer records, TTL included) must equal the pure store's; then glibc itself
(getaddrinfo / gethostbyname, with the pod's resolv.conf bind-mounted in a
private mount namespace) must send exactly the queries the pure resolver
predicts, counted in dnsmasq's query log. The namespace and dnsmasq are
removed in a finally. Nothing touches the host's namespace.
"""
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

import dns_scenario
from conftest import labkit_requires
from labkit.controllers.dns import cluster_dns_records
from labkit.dns.query import build_dns_message, parse_dns_response
from labkit.dns.resolver import pod_resolv_conf, render_resolv_conf, resolve, resolve_host
from labkit.dns.server_conf import dnsmasq_argv, parse_query_log, render_dnsmasq_conf
from labkit.tools import find_tool

DNS_IP = "10.96.0.10"

# Skips with the reason when not root or a program is missing (fails instead in CI: conftest.py).
pytestmark = pytest.mark.labkit_requires(root=True, tools=("ip", "dnsmasq", "unshare", "mount"))

# Sends each query (hex) to DNS_IP:53 from inside the namespace, prints the replies (hex).
_ASK = r"""
import json, socket, sys, time
qs = json.load(sys.stdin)
out = []
deadline = time.monotonic() + 5
for i, h in enumerate(qs):
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        try:
            s.sendto(bytes.fromhex(h), (sys.argv[1], 53))
            out.append(s.recv(4096).hex())
            break
        except (socket.timeout, ConnectionRefusedError):
            if time.monotonic() > deadline:
                out.append("")
                break
        finally:
            s.close()
print(json.dumps(out))
"""

# Looks names up with the C library: mode "host" = getaddrinfo(AF_UNSPEC), "a" = gethostbyname.
_GLIBC = r"""
import json, socket, sys
out = []
for mode, name in json.load(sys.stdin):
    try:
        if mode == "host":
            addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)})
        else:
            addrs = [socket.gethostbyname(name)]
        out.append(["ok", addrs])
    except socket.gaierror as e:
        out.append(["error", [str(e.errno)]])
print(json.dumps(out))
"""


def _run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    labkit_requires(root=True, tools=("ip", "dnsmasq", "unshare", "mount"))
    state = tmp_path_factory.mktemp("dns-state")
    records = cluster_dns_records(dns_scenario.cluster(), extra=dns_scenario.INTERNET)
    conf = state / "dnsmasq.conf"
    conf.write_text(render_dnsmasq_conf(records, listen_address=DNS_IP, port=53, state_dir=str(state)))
    ns = f"lktest-dns-{secrets.token_hex(4)}"
    proc = None
    try:
        _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{DNS_IP}/32", "dev", "lo"])
        argv = dnsmasq_argv(str(conf), find_tool("dnsmasq"))
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        yield {"ns": ns, "records": records, "state": state, "proc": proc}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def ask_real(lab, questions):
    """Ask dnsmasq each (name, qtype); returns the parsed Answers."""
    qs = [bytes(build_dns_message(n, t, qid=i + 1)).hex() for i, (n, t) in enumerate(questions)]
    res = _run(["ip", "netns", "exec", lab["ns"], sys.executable, "-c", _ASK, DNS_IP],
               input=json.dumps(qs))
    replies = json.loads(res.stdout)
    if lab["proc"].poll() is not None:
        pytest.fail(f"dnsmasq exited: {lab['proc'].stderr.read()}")
    assert all(replies), f"no reply from dnsmasq for {[q for q, r in zip(questions, replies) if not r]}"
    return [parse_dns_response(bytes.fromhex(r)) for r in replies]


QUESTIONS = [
    ("web.default.svc.cluster.local", "A"),          # ClusterIP Service
    ("db.default.svc.cluster.local", "A"),           # headless: the ready pods (not db-2)
    ("_http._tcp.web.default.svc.cluster.local", "SRV"),  # named port of a ClusterIP Service
    ("_pg._tcp.db.default.svc.cluster.local", "SRV"),     # named port of a headless Service
    ("nope.default.svc.cluster.local", "A"),         # NXDOMAIN
    ("db-0.db.default.svc.cluster.local", "A"),      # hostname.subdomain
    ("db-2.db.default.svc.cluster.local", "A"),      # not ready: NXDOMAIN
    ("ext.default.svc.cluster.local", "A"),          # ExternalName: CNAME, followed
    ("ext.default.svc.cluster.local", "CNAME"),
    ("kube-dns.kube-system.svc.cluster.local", "A"),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV"),
    ("_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local", "SRV"),
    ("WEB.Default.SVC.cluster.local", "A"),          # case-insensitive
    ("web.default.svc.cluster.local", "AAAA"),       # NODATA
    ("web.default.svc.cluster.local", "SRV"),        # NODATA
    ("default.svc.cluster.local", "A"),              # parent of names: NODATA
    ("svc.cluster.local", "A"),
    ("cluster.local", "A"),
    ("other.svc.cluster.local", "A"),                # NXDOMAIN
    ("x.web.default.svc.cluster.local", "A"),        # below a name: NXDOMAIN
    ("_tcp.web.default.svc.cluster.local", "SRV"),   # parent of an SRV name: NODATA
    ("_http._udp.web.default.svc.cluster.local", "SRV"),  # wrong protocol: NXDOMAIN
    ("_pg._tcp.db.default.svc.cluster.local", "A"),
    ("10-244-1-2.default.pod.cluster.local", "A"),   # pod record
    ("20.0.96.10.in-addr.arpa", "PTR"),              # ClusterIP -> Service
    ("2.1.244.10.in-addr.arpa", "PTR"),              # endpoint -> hostname.svc
    ("3.1.244.10.in-addr.arpa", "PTR"),              # pod only -> pod record
    ("9.9.9.10.in-addr.arpa", "PTR"),                # NXDOMAIN
    ("244.10.in-addr.arpa", "PTR"),                  # reverse names make no parents
    ("dns-version.cluster.local", "TXT"),
    ("internet.example", "A"),                       # the lab's internet host
    ("example", "A"),                                # its parent: NODATA
    ("example.com", "A"),                            # no upstream: NXDOMAIN
    ("web.default.svc.cluster.local.default.svc.cluster.local", "A"),
]


def test_real_server_answers_equal_the_pure_store(lab):
    records = lab["records"]
    real = ask_real(lab, QUESTIONS)
    diffs = []
    for (name, qtype), got in zip(QUESTIONS, real):
        want = records.answer(name, qtype)
        if got.key() != want.key():
            diffs.append(f"{name} {qtype}:\n  dnsmasq: {got.key()}\n  pure:    {want.key()}")
    assert not diffs, "\n".join(diffs)


def test_the_required_cases_have_the_expected_answers(lab):
    got = dict(zip(QUESTIONS, ask_real(lab, QUESTIONS)))
    assert got[("web.default.svc.cluster.local", "A")].addresses() == ("10.96.0.20",)
    assert sorted(got[("db.default.svc.cluster.local", "A")].addresses()) == ["10.244.1.2", "10.244.2.2"]
    srv = got[("_http._tcp.web.default.svc.cluster.local", "SRV")]
    assert [r.data for r in srv.records] == ["0 100 80 web.default.svc.cluster.local."]
    assert got[("nope.default.svc.cluster.local", "A")].status == "NXDOMAIN"
    assert got[("web.default.svc.cluster.local", "AAAA")].status == "NODATA"


WALKS = ["web", "db", "web.default", "web.default.svc.cluster.local", "web.default.svc.cluster.local.",
         "nope", "internet.example", "ext", "db-0.db", "kubernetes.default", "example.com"]


def test_real_server_walks_equal_the_pure_resolver(lab):
    """The pure resolver walking the real server's answers ends as over the pure store."""
    conf = pod_resolv_conf("default")
    records = lab["records"]
    for name in WALKS:
        pure = resolve_host(name, conf, records.answer)
        questions = [(q.name, q.qtype) for q in pure.queries]
        real = dict(zip(questions, ask_real(lab, questions)))
        walked = resolve_host(name, conf, lambda n, t: real[(n, t)])
        assert (walked.status, walked.answered_name, [str(q) for q in walked.queries]) == (
            pure.status, pure.answered_name, [str(q) for q in pure.queries]), name


def _glibc(lab, lookups):
    """Run the lookups with glibc in the namespace, with a pod's resolv.conf in place."""
    resolv = lab["state"] / "resolv.conf"
    resolv.write_text(render_resolv_conf("default"))
    log = lab["state"] / "dnsmasq.log"
    before = len(parse_query_log(log.read_text())) if log.exists() else 0
    script = (f"mount --bind {resolv} /etc/resolv.conf && "
              f"exec {sys.executable} -c '{_GLIBC.replace(chr(39), chr(34))}'")
    res = _run(["ip", "netns", "exec", lab["ns"], "unshare", "-m", "--propagation", "private",
                "sh", "-c", script], input=json.dumps(lookups))
    time.sleep(0.2)  # dnsmasq writes its log line after answering
    seen = parse_query_log(log.read_text())[before:]
    return json.loads(res.stdout), seen


@pytest.mark.skipif(not os.path.exists("/etc/nsswitch.conf"), reason="no /etc/nsswitch.conf: glibc would not use DNS")
@pytest.mark.parametrize("name", ["web", "db", "web.default", "web.default.svc.cluster.local",
                                  "web.default.svc.cluster.local.", "nope", "internet.example"])
def test_glibc_getaddrinfo_sends_the_queries_the_pure_resolver_predicts(lab, name):
    conf = pod_resolv_conf("default")
    pure = resolve_host(name, conf, lab["records"].answer)
    (result,), seen = _glibc(lab, [["host", name]])
    # glibc sends A and AAAA together: compare the order of names, and the set per name
    predicted = [(q.qtype, q.name) for q in pure.queries]
    assert [n for _, n in seen] == [n for _, n in predicted] or sorted(seen) == sorted(predicted)
    assert sorted(seen) == sorted(predicted)
    if pure.status == "NOERROR":
        assert result == ["ok", sorted(set(pure.addresses))]
    else:
        assert result[0] == "error"


@pytest.mark.skipif(not os.path.exists("/etc/nsswitch.conf"), reason="no /etc/nsswitch.conf: glibc would not use DNS")
def test_glibc_gethostbyname_counts_match(lab):
    conf = pod_resolv_conf("default")
    for name, count in [("web", 1), ("web.default.svc.cluster.local", 4),
                        ("web.default.svc.cluster.local.", 1), ("nope", 4)]:
        pure = resolve(name, "A", conf, lab["records"].answer)
        _, seen = _glibc(lab, [["a", name]])
        assert pure.query_count == count
        assert seen == [(q.qtype, q.name) for q in pure.queries], name


def test_the_user_namespace_config_serves_the_same_answers(tmp_path):
    """Unprivileged mode (`unshare -Urn`): dnsmasq started and asked inside a fresh user+net namespace."""
    labkit_requires(tools=("unshare", "ip", "dnsmasq"))
    records = cluster_dns_records(dns_scenario.cluster(), extra=dns_scenario.INTERNET)
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render_dnsmasq_conf(records, listen_address=DNS_IP, state_dir=str(tmp_path),
                                        user_namespace=True))
    questions = QUESTIONS[:5]
    qs = [bytes(build_dns_message(n, t, qid=i + 1)).hex() for i, (n, t) in enumerate(questions)]
    argv = " ".join(dnsmasq_argv(str(conf), find_tool("dnsmasq")))
    script = (f"ip link set lo up && ip addr add {DNS_IP}/32 dev lo && "
              f"{{ {argv} >/dev/null 2>&1 & }} && "
              f"{sys.executable} -c '{_ASK.replace(chr(39), chr(34))}' {DNS_IP}; rc=$?; kill $!; wait $!; exit $rc")
    # the namespaces die with this process tree; kill $! stops dnsmasq inside it
    res = _run(["unshare", "-Urn", "sh", "-c", script], input=json.dumps(qs))
    real = [parse_dns_response(bytes.fromhex(r)) for r in json.loads(res.stdout)]
    assert [a.key() for a in real] == [records.answer(n, t).key() for n, t in questions]
