"""parse_iptables_restore: what it accepts, how it prints it, what it refuses."""
from __future__ import annotations

import pytest

from labkit.dataplane.iptables_parse import parse_iptables_restore
from labkit.errors import RuleError


def test_handles_and_canonical_text_follow_the_kernel():
    # handles: one counter per table, chains in declaration order, then rules
    # in text order (seen with iptables-nft 1.8.9 + xtables-monitor --trace)
    rs = parse_iptables_restore(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SVC - [0:0]\n"
        ":KUBE-MARK-MASQ - [0:0]\n"
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -m tcp -p tcp "
        "-d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-SVC\n"
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
        "-A POSTROUTING -j MARK --xor-mark 0x4000\n"
        "-A KUBE-SVC -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
        "-j DNAT --to-destination 10.180.0.1:80\nCOMMIT\n")
    rules = [(r.handle, r.canonical) for c in rs.tables["nat"].chains.values() for r in c.rules]
    assert rules == [
        (5, '-A PREROUTING ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment '
            '"kubernetes service portals" -m tcp --dport 80 -j KUBE-SVC'),
        (7, "-A POSTROUTING -j MARK --set-xmark 0x4000/0x0"),
        (8, '-A KUBE-SVC -p tcp -m comment --comment "ns1/svc1:p80" -m tcp '
            '-j DNAT --to-destination 10.180.0.1:80'),
        (6, "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"),
    ]


def test_every_supported_form_renders_like_iptables_save():
    text = """*filter
:INPUT DROP [0:0]
:FORWARD - [0:0]
:X - [0:0]
-A INPUT -i eth0 -p udp -m udp --sport 53 -j ACCEPT
-A INPUT -m addrtype --src-type LOCAL ! --dst-type LOCAL,BROADCAST -j X
-A INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT
-A INPUT -p tcp --tcp-flags SYN,ACK SYN -m state --state NEW -j LOG --log-prefix "new: "
-A INPUT -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j DROP
-A INPUT -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j REJECT --reject-with tcp-reset -p tcp
-A FORWARD ! -o veth+ -m mark --mark 0x1 -g X
-A X -m statistic --mode random --probability 0.25 -j RETURN
-A X -p sctp -m sctp --dport 3868 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -p tcp -j MASQUERADE --to-ports 1024-65535 --random-fully
-A POSTROUTING -p udp -j SNAT --to-source 192.0.2.1:2000-3000 --random
COMMIT
"""
    assert parse_iptables_restore(text).render() == """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:X - [0:0]
-A INPUT -i eth0 -p udp -m udp --sport 53 -j ACCEPT
-A INPUT -m addrtype --src-type LOCAL ! --dst-type LOCAL,BROADCAST -j X
-A INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT
-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN -m state --state NEW -j LOG --log-prefix "new: "
-A INPUT -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j DROP
-A INPUT -p tcp -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j REJECT --reject-with tcp-reset
-A FORWARD ! -o veth+ -m mark --mark 0x1 -g X
-A X -m statistic --mode random --probability 0.25000000000 -j RETURN
-A X -p sctp -m sctp --dport 3868 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -p tcp -j MASQUERADE --to-ports 1024-65535 --random-fully
-A POSTROUTING -p udp -j SNAT --to-source 192.0.2.1:2000-3000 --random
COMMIT
"""


def test_insert_delete_flush_and_policy_commands():
    rs = parse_iptables_restore("""*filter
:INPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A INPUT -j A
-A INPUT -p tcp --dport 22 -j ACCEPT
-I INPUT -s 192.0.2.1 -j DROP
-I INPUT 2 -s 192.0.2.2 -j DROP
-D INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A B -j ACCEPT
-F B
-X B
-P INPUT DROP
COMMIT
""")
    c = rs.tables["filter"].chains
    assert list(c) == ["INPUT", "A"]
    assert c["INPUT"].policy == "DROP"
    assert [r.canonical for r in c["INPUT"].rules] == [
        "-A INPUT -s 192.0.2.1/32 -j DROP", "-A INPUT -s 192.0.2.2/32 -j DROP", "-A INPUT -j A"]


def _error(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        parse_iptables_restore(text)
    return info.value


def _filter(rule: str) -> str:
    return f"*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n"


def _nat(rule: str) -> str:
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            f":SVC - [0:0]\n{rule}\nCOMMIT\n")


# Every unsupported or invalid form: the text, the line it is reported on, the reason.
REFUSED = [
    ("unknown match", _filter("-A INPUT -m hashlimit --hashlimit-upto 1/s -j ACCEPT"), 4,
     "match -m hashlimit is not supported by the simulation (supported: addrtype, comment, "
     "conntrack, mark, multiport, nfacct, recent, sctp, state, statistic, tcp, udp)"),
    ("unknown target", _filter("-A INPUT -j CONNMARK --set-mark 1"), 4,
     "target -j CONNMARK is not supported by the simulation (ACCEPT, DROP, REJECT, RETURN, DNAT, "
     "SNAT, MASQUERADE, MARK, LOG, TRACE or a chain of this table)"),
    ("unknown option of a loaded match", _filter("-A INPUT -p tcp -m tcp --tcp-option 5 -j DROP"), 4,
     "option --tcp-option is not supported here (no loaded match or target of this rule takes "
     "it; is a -m missing?)"),
    ("statistic nth", _filter("-A INPUT -m statistic --mode nth --every 2 --packet 0 -j DROP"), 4,
     "statistic --mode nth is not supported by the simulation (use --mode random --probability P)"),
    ("recent --rttl", _filter("-A INPUT -m recent --rcheck --rttl --name X -j DROP"), 4,
     "recent --rttl is not supported by the simulation (it has no TTLs)"),
    ("conntrack options beyond --ctstate", _filter("-A INPUT -m conntrack --ctstatus DNAT -j DROP"),
     4, "option --ctstatus is not supported here (no loaded match or target of this rule takes "
     "it; is a -m missing?)"),
    ("addrtype --limit-iface-in", _filter("-A INPUT -m addrtype --dst-type LOCAL "
                                          "--limit-iface-in -j DROP"), 4,
     "option --limit-iface-in is not supported here (no loaded match or target of this rule "
     "takes it; is a -m missing?)"),
    ("unknown table", "*security\n:INPUT ACCEPT [0:0]\nCOMMIT\n", 1,
     "unknown table 'security' (use raw, mangle, nat or filter; the security table is not "
     "simulated)"),
    ("unquoted comment", _filter("-A INPUT -m comment --comment kubernetes health checks -j "
                                 "ACCEPT"), 4,
     "unexpected word 'health' (quote arguments that contain spaces)"),
    ("DNAT port without -p", _nat("-A PREROUTING -d 1.2.3.4 -j DNAT --to-destination "
                                  "10.0.0.1:80"), 6,
     "-j DNAT with a port needs -p tcp, -p udp or -p sctp on the rule (the kernel refuses it: "
     "'Need TCP, UDP, SCTP or DCCP with port specification')"),
    ("DNAT in the filter table", _filter("-A INPUT -p tcp -j DNAT --to-destination 10.0.0.1"), 4,
     "-j DNAT cannot be used in the filter table (only in nat)"),
    ("MASQUERADE reached from PREROUTING", _nat("-A PREROUTING -j SVC\n-A SVC -j MASQUERADE"), 7,
     "-j MASQUERADE is used from hook PREROUTING (via chain SVC) but the kernel only allows it "
     "from POSTROUTING"),
    ("REJECT in nat", _nat("-A PREROUTING -j REJECT"), 6,
     "-j REJECT cannot be used in the nat table (only in filter, mangle, raw, security)"),
    ("jump to an undeclared chain", _filter("-A INPUT -j KUBE-NOPE"), 4,
     "-j KUBE-NOPE: no chain of that name in table filter (declare it first: "
     "':KUBE-NOPE - [0:0]')"),
    ("missing COMMIT", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n", 1,
     "table filter has no COMMIT line (iptables-restore applies nothing without it)"),
    ("rule outside a table", "-A INPUT -j ACCEPT\n", 1,
     "rule outside a table: start the block with *filter, *nat, *mangle or *raw"),
    ("replace command", _filter("-R INPUT 1 -j ACCEPT"), 4,
     "-R (replace) is not supported in restore files; delete and insert instead"),
    ("fragments", _filter("-A INPUT -f -j DROP"), 4,
     "fragment matching (-f) is not supported by the simulation"),
    ("counters", _filter("-A INPUT -c 1 2 -j DROP"), 4,
     "-c (set counters) is not supported; remove the counters"),
    ("address list", _filter("-A INPUT -s 10.0.0.1,10.0.0.2 -j DROP"), 4,
     "-s 10.0.0.1,10.0.0.2: several addresses in one rule (iptables would expand it into "
     "several rules; write one rule per address)"),
    ("host name", _filter("-A INPUT -s example.com -j DROP"), 4,
     "'example.com' is not an IPv4 address"),
    ("service name as port", _filter("-A INPUT -p tcp --dport http -j DROP"), 4,
     "--dport: port 'http' must be a number from 0 to 65535 (service names from /etc/services "
     "are not supported)"),
    ("other protocol", _filter("-A INPUT -p gre -j DROP"), 4,
     "-p gre: protocol not supported by the simulation (tcp, udp, sctp, icmp, all)"),
    ("-m tcp without -p tcp", _filter("-A INPUT -m tcp --dport 80 -j DROP"), 4,
     "-m tcp needs -p tcp on the rule (iptables: 'multiport/port matches need a protocol')"),
    ("multiport without -p", _filter("-A INPUT -m multiport --dports 80,443 -j DROP"), 4,
     "-m multiport needs -p tcp, -p udp or -p sctp on the rule"),
    ("-i in OUTPUT", _filter("-A OUTPUT -i eth0 -j DROP"), 4,
     "-i cannot be used in the OUTPUT chain (packets there have no input interface yet)"),
    ("policy on a user chain", "*filter\n:MINE ACCEPT [0:0]\nCOMMIT\n", 2,
     "user-defined chain MINE cannot have a policy (write ':MINE - [0:0]')"),
    ("delete a referenced chain", "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n-A INPUT -j A\n"
                                  "-X A\nCOMMIT\n", 5,
     "-X A: chain is still referenced by a rule in INPUT (line 4)"),
    ("delete a missing rule", _filter("-D INPUT -j ACCEPT"), 4,
     "-D INPUT: no rule in INPUT matches that rule (iptables says 'Bad rule (does a matching "
     "rule exist in that chain?)')"),
    ("bad probability", _filter("-A INPUT -m statistic --mode random --probability 1.5 -j DROP"), 4,
     "--probability 1.5 must be between 0 and 1"),
    ("unknown ctstate", _filter("-A INPUT -m conntrack --ctstate OPEN -j DROP"), 4,
     "--ctstate: unknown state OPEN (use INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT)"),
    ("unknown reject-with", _filter("-A INPUT -j REJECT --reject-with icmp-go-away"), 4,
     "--reject-with icmp-go-away: unknown (use one of icmp-net-unreachable, "
     "icmp-host-unreachable, icmp-port-unreachable, icmp-proto-unreachable, icmp-net-prohibited, "
     "icmp-host-prohibited, icmp-admin-prohibited, tcp-reset)"),
    ("MARK without an operation", _filter("-A INPUT -j MARK"), 4,
     "-j MARK needs --set-mark, --set-xmark, --or-mark, --xor-mark or --and-mark"),
    ("old-style negation", _filter("-A INPUT -p tcp --dport ! 80 -j DROP"), 4,
     "--dport needs 1 argument"),
]


@pytest.mark.parametrize("name,text,line_no,reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_unsupported_forms_are_refused_with_line_and_reason(name, text, line_no, reason):
    err = _error(text)
    assert (err.line_no, err.reason) == (line_no, reason)
    assert err.line == text.splitlines()[line_no - 1].strip()
    assert str(err).startswith(f"line {line_no}: {reason}\n    {err.line}")


def test_error_shows_neighbouring_lines():
    err = _error(_filter("-A INPUT -m hashlimit -j ACCEPT"))
    assert str(err).splitlines()[2:] == ["    line 3: :OUTPUT ACCEPT [0:0]", "    line 5: COMMIT"]


def test_statistic_probability_is_quantised_like_the_kernel():
    """libxt_statistic keeps lround(P * 2^31): iptables-save shows 0.33333333349, not 0.3333333333."""
    text = ("*nat\n:X - [0:0]\n"
            "-A X -m statistic --mode random --probability 0.3333333333 -j RETURN\n"
            "-A X -m statistic --mode random --probability 0.5000000000 -j RETURN\n"
            "-A X -m statistic --mode random --probability 0.2500000000 -j RETURN\nCOMMIT\n")
    rules = parse_iptables_restore(text).tables["nat"].chains["X"].rules
    assert [r.canonical.split("--probability ")[1].split()[0] for r in rules] == [
        "0.33333333349", "0.50000000000", "0.25000000000"]


def test_source_and_destination_in_one_rule_are_each_tested():
    """kube-proxy's KUBE-FIREWALL rule has both: -d 127.0.0.0/8 ! -s 127.0.0.0/8."""
    from labkit.dataplane.packet import Packet

    text = ("*filter\n:X - [0:0]\n"
            "-A X -d 127.0.0.0/8 ! -s 127.0.0.0/8 -j DROP\n"
            "-A X -s 10.0.0.0/8 -d 192.168.1.1/32 -j ACCEPT\nCOMMIT\n")
    drop, accept = parse_iptables_restore(text).tables["filter"].chains["X"].rules

    def pkt(src, dst):
        return Packet(proto="tcp", src=src, dst=dst, sport=1000, dport=80)

    assert drop.check(pkt("10.244.1.2", "127.0.0.1"), None) is True
    assert drop.check(pkt("127.0.0.1", "127.0.0.1"), None) is False
    assert drop.check(pkt("10.244.1.2", "10.96.0.1"), None) is False
    assert accept.check(pkt("10.1.1.1", "192.168.1.1"), None) is True
    assert accept.check(pkt("10.1.1.1", "10.2.2.2"), None) is False
    assert accept.check(pkt("172.16.0.1", "192.168.1.1"), None) is False


def test_split_words_is_shlex_on_every_line():
    """The fast splitter gives shlex.split's words (or its error) on random lines of quotes and escapes."""
    import random
    import shlex

    from labkit.dataplane.iptables_parse import split_words

    rng = random.Random(1)
    alphabet = 'ab -#"\\\''
    for _ in range(20000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        try:
            expected = shlex.split(line)
        except ValueError:
            expected = "error"
        try:
            got = split_words(line)
        except ValueError:
            got = "error"
        assert got == expected, line
