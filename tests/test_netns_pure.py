"""The netns backend's pure parts: ip batches, conntrack parsing, cleanup's ownership rules, doctor text."""
import pytest

from labkit.backends.base import ConntrackEntry, Tuple4, parse_destination
from labkit.backends.netns.cleanup import is_lab_server, lab_of_netns
from labkit.backends.netns.commands import render_batches, render_netns_add, render_netns_del
from labkit.backends.netns.conntrack_text import parse_conntrack
from labkit.backends.netns.doctor import Finding, render_doctor
from labkit.backends.netns.runner import CommandError, FakeRunner
from labkit.errors import LabkitError, RuleError
from labkit.topology.kind_config import parse_kind_config_text
from labkit.topology.plan import PodPlacement, build_plan

ONE_WORKER = parse_kind_config_text(
    "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}, {role: worker}]\n")


def test_batches_in_phases_for_a_small_lab():
    plan = build_plan("ab", ONE_WORKER, [PodPlacement("default", "p", "kind-worker", "10.244.1.2")])
    phases = [[(b.netns, b.text) for b in phase] for phase in render_batches(plan)]
    assert phases == [
        [("lkab-net", """link add lkab-br address 02:3e:e8:4c:4a:bb type bridge
link add lkab-n1 type veth peer name eth0 netns lkab-control-plane
link set lkab-n1 master lkab-br
link add lkab-n2 type veth peer name eth0 netns lkab-worker
link set lkab-n2 master lkab-br
link add lkab-out type veth peer name eth0 netns lkab-outside
link add lkab-inet type veth peer name eth0 netns lkab-internet
address add 172.18.0.1/16 dev lkab-br
address add 192.0.2.1/24 dev lkab-out
address add 203.0.113.1/24 dev lkab-inet
link set lo up
link set lkab-br up
link set lkab-n1 up
link set lkab-n2 up
link set lkab-out up
link set lkab-inet up
""")],
        [("lkab-control-plane", """address add 172.18.0.2/16 dev eth0
link set lo up
link set eth0 up
route add default via 172.18.0.1 dev eth0
route add 10.244.1.0/24 via 172.18.0.3 dev eth0
"""), ("lkab-worker", """link add lkab-0102 type veth peer name eth0 netns lkab-pod-default.p
address add 172.18.0.3/16 dev eth0
address add 10.244.1.1/32 dev lkab-0102
link set lo up
link set eth0 up
link set lkab-0102 up
route add default via 172.18.0.1 dev eth0
route add 10.244.0.0/24 via 172.18.0.2 dev eth0
route add 10.244.1.2 dev lkab-0102 scope host
"""), ("lkab-outside", """address add 192.0.2.10/24 dev eth0
link set lo up
link set eth0 up
route add default via 192.0.2.1 dev eth0
"""), ("lkab-internet", """address add 203.0.113.10/24 dev eth0
link set lo up
link set eth0 up
route add default via 203.0.113.1 dev eth0
""")],
        [("lkab-pod-default.p", """address add 10.244.1.2/24 dev eth0 noprefixroute
link set lo up
link set eth0 up
route add 10.244.1.1 dev eth0 scope link src 10.244.1.2
route add 10.244.1.0/24 via 10.244.1.1 dev eth0 src 10.244.1.2
route add default via 10.244.1.1 dev eth0
""")],
    ]


def test_a_new_pod_touches_only_its_node_and_itself():
    plan = build_plan("ab", ONE_WORKER, [PodPlacement("default", "p", "kind-worker", "10.244.1.2"),
                                         PodPlacement("default", "q", "kind-worker", "10.244.1.3")])
    phases = [[(b.netns, b.text) for b in phase] for phase in render_batches(plan, {"lkab-pod-default.q"})]
    assert phases == [
        [("lkab-worker", "link add lkab-0103 type veth peer name eth0 netns lkab-pod-default.q\n"
                         "address add 10.244.1.1/32 dev lkab-0103\nlink set lkab-0103 up\n"
                         "route add 10.244.1.3 dev lkab-0103 scope host\n")],
        [("lkab-pod-default.q", "address add 10.244.1.3/24 dev eth0 noprefixroute\nlink set lo up\n"
                                "link set eth0 up\nroute add 10.244.1.1 dev eth0 scope link src 10.244.1.3\n"
                                "route add 10.244.1.0/24 via 10.244.1.1 dev eth0 src 10.244.1.3\n"
                                "route add default via 10.244.1.1 dev eth0\n")],
    ]


def test_netns_add_and_del():
    assert render_netns_add(["lka-net", "lka-worker"]) == "netns add lka-net\nnetns add lka-worker\n"
    assert render_netns_del(["lka-net"]) == "netns del lka-net\n"


@pytest.mark.parametrize("name, lab", [
    ("lkdemo-net", "demo"), ("lkdemo-worker2", "demo"), ("lkdemo-control-plane", "demo"),
    ("lkab1-pod-default.web-5d8f-x2", "ab1"), ("lkx-outside", "x"), ("lkx-internet", "x"),
    # never someone else's
    ("lktest-net", ""), ("lktest-abc123", ""), ("lkdemo-other", ""), ("lkdemo", ""), ("lk-net", ""),
    ("lktoolong1-net", ""), ("lkdemo-pod-nodot", ""), ("other-net", ""),
])
def test_which_namespaces_belong_to_which_lab(name, lab):
    assert lab_of_netns(name) == lab


def test_a_lab_server_is_recognised_by_script_and_lab():
    argv = ["/usr/bin/python3", "-I", "-S", "/x/labkit/workloads/netexec.py", "--lab", "demo", "--hostname", "a"]
    assert is_lab_server(argv, "demo")
    assert not is_lab_server(argv, "demo2")
    assert not is_lab_server(["/bin/sleep", "--lab", "demo"], "demo")


CONNTRACK_L = """\
tcp      6 117 SYN_SENT src=10.244.1.2 dst=10.96.0.10 sport=40000 dport=80 [UNREPLIED] src=10.244.2.2 dst=10.244.1.2 sport=8080 dport=40000 mark=0 use=1
tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=172.18.0.3 sport=5555 dport=30080 src=10.244.2.4 dst=172.18.0.3 sport=8080 dport=64000 [ASSURED] mark=16384 zone=3 use=1
udp      17 29 src=10.244.1.2 dst=10.96.0.10 sport=53000 dport=53 src=10.244.0.3 dst=10.244.1.2 sport=53 dport=53000 mark=0 use=1
icmp     1 29 src=10.244.1.2 dst=10.244.2.2 type=8 code=0 id=7 src=10.244.2.2 dst=10.244.1.2 type=0 code=0 id=7 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
"""


def test_conntrack_plain_output_is_parsed():
    e = parse_conntrack(CONNTRACK_L)
    assert e == [
        ConntrackEntry("tcp", Tuple4("10.244.1.2", "10.96.0.10", 40000, 80),
                       Tuple4("10.244.2.2", "10.244.1.2", 8080, 40000), "SYN_SENT", 117, 0, 0, ("UNREPLIED",)),
        ConntrackEntry("tcp", Tuple4("192.0.2.10", "172.18.0.3", 5555, 30080),
                       Tuple4("10.244.2.4", "172.18.0.3", 8080, 64000), "ESTABLISHED", 431999, 16384, 3, ("ASSURED",)),
        ConntrackEntry("udp", Tuple4("10.244.1.2", "10.96.0.10", 53000, 53),
                       Tuple4("10.244.0.3", "10.244.1.2", 53, 53000), "", 29),
        ConntrackEntry("icmp", Tuple4("10.244.1.2", "10.244.2.2", 7, 7), Tuple4("10.244.2.2", "10.244.1.2", 7, 7), "", 29),
    ]
    assert [(x.dnat, x.snat) for x in e] == [(True, False), (True, True), (True, False), (False, False)]


def test_conntrack_extended_output_is_parsed_the_same():
    ext = "ipv4     2 " + CONNTRACK_L.splitlines()[0]
    assert parse_conntrack(ext) == parse_conntrack(CONNTRACK_L)[:1]


def test_a_truncated_conntrack_line_names_its_line():
    with pytest.raises(RuleError) as e:
        parse_conntrack("tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2\n")
    assert str(e.value) == ("line 1: a conntrack entry needs an original and a reply tuple (src=... twice)\n"
                            "    tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2")


def test_a_failing_batch_shows_the_line_and_its_neighbours():
    e = CommandError(["ip", "-n", "x", "-batch", "-"], 1, 'Error: ...\nCommand failed -:3\n',
                     "link set lo up\na\nroute add bogus\nb\nc\nd\n")
    assert str(e) == """command failed (1): ip -n x -batch -
Error: ...
Command failed -:3
    1: link set lo up
    2: a
>   3: route add bogus
    4: b
    5: c"""


def test_fake_runner_fails_on_a_surprise():
    r = FakeRunner(expected=[(["ip", "netns", "list"], "", "lka-net\n")])
    assert r.run(["ip", "netns", "list"]).stdout == "lka-net\n"
    with pytest.raises(AssertionError):
        r.run(["ip", "netns", "list"])


def test_destination_parsing():
    assert parse_destination("10.96.0.10:80") == ("10.96.0.10", 80)
    for bad in ("10.96.0.10", "10.96.0.10:0", ":80", "x:http"):
        with pytest.raises(LabkitError):
            parse_destination(bad)


def test_doctor_text():
    text = render_doctor([
        Finding("root", False, "running as uid 1000", "run as root (sudo labkit ...) for the netns backend"),
        Finding("ip", True, "/usr/sbin/ip"),
        Finding("conntrack", False, "not installed", "apt-get install conntrack"),
    ])
    assert text == """MISS root       running as uid 1000
                fix: run as root (sudo labkit ...) for the netns backend
ok   ip         /usr/sbin/ip
MISS conntrack  not installed
                fix: apt-get install conntrack

netns backend: not available (see the fixes above)
sim backend: available
"""


def test_doctor_verdict_names_the_way_the_netns_backend_can_run():
    tools = [Finding(t, True, f"/usr/sbin/{t}") for t in ("ip", "iptables-restore", "iptables-save")]
    unshare = Finding("unshare", True, "/usr/bin/unshare")
    userns = Finding("user namespaces", True, "unshare --user --map-root-user --net --mount --pid works")
    not_root = Finding("root", False, "running as uid 1000", "run as root")
    verdict = lambda findings: render_doctor(findings).splitlines()[-2]  # noqa: E731
    assert verdict([Finding("root", True, "running as root")] + tools) == "netns backend: available (as root)"
    assert verdict([not_root, userns, unshare] + tools) == (
        "netns backend: available without root, in a user namespace (netns-rootless)")
    refused = Finding("user namespaces", False, "unshare: unshare failed: Operation not permitted",
                      "sysctl -w kernel.unprivileged_userns_clone=1 (as root), or run labkit as root")
    assert verdict([not_root, refused, unshare] + tools) == "netns backend: not available (see the fixes above)"
    assert verdict([not_root, userns, unshare] + tools[:2]) == "netns backend: not available (see the fixes above)"


def test_cloud_namespaces_belong_to_their_lab():
    """The NAT gateway and the load balancer are found by name too (for `down --all` after lost state)."""
    assert lab_of_netns("lkab-natgw") == "ab"
    assert lab_of_netns("lkab-lb") == "ab"
    assert lab_of_netns("lkab-lbx") == ""


def test_down_removes_the_pods_resolv_conf_dirs(tmp_path, monkeypatch):
    """`labkit down` (cleanup.down_lab) removes /etc/netns/<prefix>-*, and nothing else."""
    from labkit.backends.netns import cleanup, dns_server

    etc = tmp_path / "netns"
    for name in ("lkzz-pod-default.a", "lkzz-worker", "lkzy-worker", "other"):
        (etc / name).mkdir(parents=True)
        (etc / name / "resolv.conf").write_text("nameserver 10.96.0.10\n")
    monkeypatch.setattr(dns_server, "ETC_NETNS", str(etc))
    monkeypatch.setattr(cleanup, "list_netns", lambda: [])

    class NoCommands:
        def run(self, *a, **k):
            raise AssertionError("no namespace exists, so no command should run")

    cleanup.down_lab("zz", NoCommands(), root=str(tmp_path / "state"))
    assert sorted(p.name for p in etc.iterdir()) == ["lkzy-worker", "other"]
