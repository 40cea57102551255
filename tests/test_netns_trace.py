"""A kernel trace (xtables-monitor --trace) parsed into the simulation's TraceStep shape."""
import pytest

from labkit.backends.base import TraceStep
from labkit.backends.netns.trace_text import parse_xtables_trace, rule_positions, summarize_packet

# Recorded in a lab (trimmed): pod 10.244.1.2 -> ClusterIP 10.96.53.43:80, then the RST of another packet.
RECORDED = """\
PACKET: 2 77223f13 IN=lkt-0102 MACSRC=4e:9a:c8:7b:73:f5 MACDST=7a:eb:73:1d:cf:c2 MACPROTO=0800 SRC=10.244.1.2 DST=10.96.53.43 LEN=40 TOS=0x0 TTL=64 ID=1 SPORT=45000 DPORT=80 SYN 
 TRACE: 2 77223f13 raw:PREROUTING:rule:0x2:CONTINUE  -4 -t raw -A PREROUTING -s 10.244.1.2/32 -p tcp -m tcp --sport 45000 -j TRACE
 TRACE: 2 77223f13 raw:PREROUTING:policy:ACCEPT 
PACKET: 2 77223f13 IN=lkt-0102 MACSRC=4e:9a:c8:7b:73:f5 MACDST=7a:eb:73:1d:cf:c2 MACPROTO=0800 SRC=10.244.1.2 DST=10.96.53.43 LEN=40 TOS=0x0 TTL=64 ID=1 SPORT=45000 DPORT=80 SYN 
 TRACE: 2 77223f13 nat:PREROUTING:rule:0x17:JUMP:KUBE-SERVICES  -4 -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
 TRACE: 2 77223f13 nat:KUBE-SERVICES:rule:0x29:JUMP:KUBE-SVC-CDGGSHYLG3RE2FKL  -4 -t nat -A KUBE-SERVICES -d 10.96.53.43/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
 TRACE: 2 77223f13 nat:KUBE-SEP-2AZ33KU3V5PGPQZH:rule:0x2f:ACCEPT  -4 -t nat -A KUBE-SEP-2AZ33KU3V5PGPQZH -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.3:8080
PACKET: 2 77223f13 IN=lkt-0102 OUT=lkt-0103 MACSRC=4e:9a:c8:7b:73:f5 MACDST=7a:eb:73:1d:cf:c2 MACPROTO=0800 SRC=10.244.1.2 DST=10.244.1.3 LEN=40 TOS=0x0 TTL=63 ID=1 SPORT=45000 DPORT=8080 SYN 
 TRACE: 2 77223f13 nat:KUBE-POSTROUTING:rule:0x1a:0xfffffffb  -4 -t nat -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
 TRACE: 2 77223f13 nat:POSTROUTING:policy:ACCEPT 
PACKET: 2 548fb5a5 IN=lkt-0102 MACSRC=4e:9a:c8:7b:73:f5 MACDST=7a:eb:73:1d:cf:c2 MACPROTO=0800 SRC=10.244.1.2 DST=10.96.53.43 LEN=40 TOS=0x0 TTL=64 ID=0 DF SPORT=45000 DPORT=80 RST 
 TRACE: 2 548fb5a5 raw:PREROUTING:policy:ACCEPT 
"""

SAVE = """*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -d 10.96.53.43/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
COMMIT
"""


def test_the_first_packet_is_parsed_step_by_step():
    syn = "10.244.1.2:45000 > 10.96.53.43:80 SYN"
    after = "10.244.1.2:45000 > 10.244.1.3:8080 SYN"
    steps = parse_xtables_trace(RECORDED, {"nat": rule_positions(SAVE, "nat")})
    assert steps == [
        TraceStep("raw", "PREROUTING", 0, "", "ACCEPT", syn),
        TraceStep("nat", "PREROUTING", 1, '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                  "KUBE-SERVICES", syn),
        TraceStep("nat", "KUBE-SERVICES", 2,
                  '-A KUBE-SERVICES -d 10.96.53.43/32 -p tcp -m comment --comment "default/web:http cluster IP" '
                  "-m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL", "KUBE-SVC-CDGGSHYLG3RE2FKL", syn),
        TraceStep("nat", "KUBE-SEP-2AZ33KU3V5PGPQZH", 0,
                  '-A KUBE-SEP-2AZ33KU3V5PGPQZH -p tcp -m comment --comment "default/web:http" -m tcp '
                  "-j DNAT --to-destination 10.244.1.3:8080", "DNAT", syn),
        TraceStep("nat", "KUBE-POSTROUTING", 0, "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                  "RETURN", after),
        TraceStep("nat", "POSTROUTING", 0, "", "ACCEPT", after),
    ]


def test_another_packet_by_id():
    assert parse_xtables_trace(RECORDED, packet_id="548fb5a5") == [
        TraceStep("raw", "PREROUTING", 0, "", "ACCEPT", "10.244.1.2:45000 > 10.96.53.43:80 RST")]


def test_packet_summary():
    assert summarize_packet("IN=x SRC=1.1.1.1 DST=2.2.2.2 LEN=40 DF SPORT=1 DPORT=2 ACK SYN") == "1.1.1.1:1 > 2.2.2.2:2 ACK SYN"


@pytest.mark.labkit_requires(root=True, tools=("ip", "iptables", "iptables-restore", "iptables-save", "xtables-monitor"))
def test_a_live_trace_follows_kube_proxys_chains():
    from pathlib import Path

    from labkit.backends.netns.lab import NetnsLab

    lab = NetnsLab("qtrace")
    try:
        lab.up((Path(__file__).parent / "netns_fixtures" / "default_lab.yaml").read_text())
        web = next(s for s in lab.services() if s.meta.name == "web")
        t = lab.trace("default/client", f"{web.cluster_ip}:80")
        assert t.verdict == "answered"
        nat = [(s.chain, s.verdict) for s in t.steps if s.table == "nat"]
        assert nat[:2] == [("PREROUTING", "KUBE-SERVICES"), ("KUBE-SERVICES", nat[1][1])]
        assert nat[1][1].startswith("KUBE-SVC-") and nat[2][1].startswith("KUBE-SEP-") and nat[3][1] == "DNAT"
        # the TRACE rule is gone again
        assert "TRACE" not in lab.rules("kind-worker", "raw")
    finally:
        lab.down()
