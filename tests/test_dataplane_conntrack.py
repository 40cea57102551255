"""Conntrack, statistics and the `labkit trace` command."""
from __future__ import annotations

import json
import random

from kube_proxy_fixtures import ep, eport, fake_render, make_service, make_slice, port
from labkit.cli.trace_cmd import main_trace
from labkit.dataplane.conntrack import Conntrack
from labkit.dataplane.packet import Packet, tcp_syn, udp
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import reply_packet, walk_packet

CHI2_CRITICAL_2DF_P05 = 5.991


def three_endpoint_rules() -> str:
    svc = make_service("ns1", "web", ports=[port("p80", 80)], cluster_ip="172.30.0.42")
    sl = make_slice("ns1", "web", 1, [ep("10.180.0.1"), ep("10.180.0.2"), ep("10.180.0.3")],
                    [eport("p80", 80)])
    return fake_render([svc], [sl]).full_text


def node_lab(rules: str) -> Topology:
    t = Topology()
    t.add_namespace("node", forwarding=True, rules=rules)
    t.add_external("node", "eth0")
    t.add_address("node", "eth0", "192.168.0.2/24")
    t.add_route("node", "default", dev="eth0")
    return t


def test_probability_cascade_gives_each_endpoint_a_third():
    topo = node_lab(three_endpoint_rules())
    rng = random.Random(20240601)
    counts = {"10.180.0.1": 0, "10.180.0.2": 0, "10.180.0.3": 0}
    state = LabState()
    n = 10_000
    for i in range(n):
        w = walk_packet(topo, state, "node", tcp_syn("10.0.0.2", "172.30.0.42", 1024 + i, 80),
                        ingress="eth0", rng=rng)
        counts[w.packet.dst] += 1
    expected = n / 3
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert sum(counts.values()) == n
    assert chi2 < CHI2_CRITICAL_2DF_P05, (counts, chi2)
    assert len(state.of("node").conntrack.entries) == n


def test_masquerade_remaps_the_source_port_on_a_clash():
    rules = """*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.0.0/16 -o eth0 -j MASQUERADE
COMMIT
"""
    t = Topology()
    t.add_namespace("node", forwarding=True, rules=rules)
    t.add_external("node", "eth0")
    t.add_address("node", "eth0", "172.18.0.2/16")
    t.add_route("node", "default", via="172.18.0.1", dev="eth0")
    state = LabState()
    a = walk_packet(t, state, "node", tcp_syn("10.244.1.2", "192.0.2.10", 5000, 443),
                    ingress="eth0", rng=random.Random(1))
    b = walk_packet(t, state, "node", tcp_syn("10.244.2.2", "192.0.2.10", 5000, 443),
                    ingress="eth0", rng=random.Random(1))
    assert a.packet.summary() == "tcp 172.18.0.2:5000 > 192.0.2.10:443 [SYN]"
    assert b.packet.src == "172.18.0.2" and b.packet.sport != 5000
    assert 1024 <= b.packet.sport <= 65535 and a.masquerade and b.masquerade
    listing = state.of("node").conntrack.render(0.0).splitlines()
    assert listing[0] == ("tcp      6 120 SYN_SENT src=10.244.1.2 dst=192.0.2.10 sport=5000 "
                          "dport=443 [UNREPLIED] src=192.0.2.10 dst=172.18.0.2 sport=443 "
                          "dport=5000 mark=0 use=1")
    assert f"dport={b.packet.sport} mark=0 use=1" in listing[1]


def test_udp_timeouts_follow_the_clock():
    ct = Conntrack()
    p = udp("10.0.0.2", "10.96.0.10", 33333, 53)
    e = ct.new_entry(p)
    ct.note_packet(e, 0, p, now=100.0)
    assert ct.confirm(e)
    assert ct.render(100.0) == ("udp      17 30 src=10.0.0.2 dst=10.96.0.10 sport=33333 dport=53 "
                                "[UNREPLIED] src=10.96.0.10 dst=10.0.0.2 sport=53 dport=33333 "
                                "mark=0 use=1\n")
    assert ct.lookup(p, 129.0) is not None
    assert ct.lookup(p, 130.0) is None and ct.render(130.0) == ""


def test_conntrack_states_in_rules():
    rules = """*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
COMMIT
"""
    t = Topology()
    t.add_namespace("host", rules=rules)
    t.add_namespace("client")
    t.add_veth("client", "eth0", "host", "eth0")
    t.add_address("client", "eth0", "192.0.2.2/24")
    t.add_address("host", "eth0", "192.0.2.1/24")
    state = LabState()
    ok = walk_packet(t, state, "client", tcp_syn("192.0.2.2", "192.0.2.1", 40000, 22))
    bad = walk_packet(t, state, "client", tcp_syn("192.0.2.2", "192.0.2.1", 40001, 80))
    stray = walk_packet(t, state, "client", Packet("tcp", "192.0.2.2", "192.0.2.1", 40002, 22,
                                                  flags="RST"))
    assert (ok.verdict, bad.verdict, bad.explicit, stray.verdict, stray.explicit) == \
        ("delivered", "dropped", False, "dropped", True)
    back = walk_packet(t, state, "host", reply_packet(ok))
    assert back.verdict == "delivered" and back.ns == "client"


def test_trace_command_json(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text(three_endpoint_rules())
    code = main_trace(["--rules", str(rules), "--from", "10.0.0.2", "--to", "172.30.0.42:80",
                       "--local-address", "192.168.0.2", "--all-branches", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(o["destination"], o["verdict"], o["explicit"], o["masquerade"],
             round(o["probability"], 6)) for o in out["outcomes"]] == [
        ("10.180.0.1:80", "ACCEPT", False, False, 0.333333),
        ("10.180.0.2:80", "ACCEPT", False, False, 0.333333),
        ("10.180.0.3:80", "ACCEPT", False, False, 0.333333)]
    assert out["outcomes"][0]["trace"][:2] == ["mangle:PREROUTING:policy:ACCEPT ", (
        'nat:PREROUTING:rule:0xe:JUMP:KUBE-SERVICES  -4 -t nat -A PREROUTING -m comment '
        '--comment "kubernetes service portals" -j KUBE-SERVICES')]


def test_trace_command_bad_input(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m bpf -j DROP\nCOMMIT\n")
    assert main_trace(["--rules", str(rules), "--from", "10.0.0.2", "--to", "10.0.0.3"]) == 2
    assert capsys.readouterr().err == ("labkit trace: --to 10.0.0.3: write the destination as "
                                       "IP:PORT, e.g. 10.96.0.10:53\n")
    assert main_trace(["--rules", str(rules), "--from", "10.0.0.2", "--to", "10.0.0.3:80"]) == 2
    assert capsys.readouterr().err.startswith(
        "labkit trace: line 3: match -m bpf is not supported by the simulation")
    # --lab hands over to the live-lab trace, which names the missing lab.
    from labkit.cli.main import main
    assert main(["trace", "--lab", "nolab", "--from", "default/web", "--to", "10.0.0.3:80"]) == 2
    assert "nolab" in capsys.readouterr().err
