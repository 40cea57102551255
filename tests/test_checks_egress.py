"""Checks of 05.00-egress-and-snat (and its helpers: the sandbox copy, nat_path), with the correct
answer and a typical wrong one."""
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import egress, sandbox, where
from labkit.checks.core import AnswerError
from labkit.viz.nat import nat_hops, render_trace_by_place

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"
INTERNET = "203.0.113.10:80"


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    lab.enable_cloud()
    yield lab
    lab.down()


def test_internet_sees(lab):
    assert egress.internet_sees("198.51.100.3", lab).message == (
        "Correct: the internet sees 198.51.100.3, the public address of kind-worker: the pod's 10.244.1.2 became "
        "172.18.0.3 on the node (MASQUERADE), then 198.51.100.3 at the NAT gateway (SNAT).")
    assert egress.internet_sees("10.244.1.2", lab).message == (
        "Not quite: that is the pod's own address; 10.244.0.0/16 is private to the cluster and no reply could "
        "find its way back to it from the internet\n"
        "Hint 1 of 3: two machines rewrite the source on the way out: the client's node, then the cloud's NAT "
        "gateway.")
    assert egress.internet_sees("172.18.0.3", lab).message.startswith(
        "Not quite: 172.18.0.3 is what the node made of the pod's address, but it is private to the cloud too")


def test_internet_sees_needs_the_cloud():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    assert egress.internet_sees("198.51.100.3", lab).message.startswith(
        "Not quite: the lab has no cloud yet: run the cell with lab.enable_cloud() first\n")


def test_reply_destination(lab):
    r = lab.http("default/client", INTERNET, "/clientip")
    assert (r.client_address, r.body) == ("10.244.1.2:60438", "198.51.100.3:60438")
    assert egress.reply_destination("172.18.0.3:60438", lab).correct
    assert egress.reply_destination("10.244.1.2:60438", lab).message == (
        "Not quite: that is where the reply ends up, after the node's un-SNAT; the question is how it arrives "
        "at the node\nHint 1 of 3: look at the client node's conntrack entry: the reply tuple is the reply as "
        "it will arrive.")
    assert egress.reply_destination("198.51.100.3:60438", lab).message.startswith(
        "Not quite: that is the public address: the NAT gateway has already translated it back")


def test_reply_destination_before_any_connection(lab):
    assert egress.reply_destination("172.18.0.3:60438", lab).message.startswith(
        "Not quite: kind-worker has no conntrack entry from 10.244.1.2 to the internet host 203.0.113.10: run "
        "the cell that sends the client's request first\n")


def test_dropped_at(lab):
    assert egress.dropped_at("natgw", lab).message.startswith("Correct: natgw drops it: rule '-A FORWARD -o "
                                                               "lklab-inet -m comment")
    assert egress.dropped_at("NAT gateway", lab).correct
    assert egress.dropped_at("kind-worker", lab).message == (
        "Not quite: the client's node forwards the packet (its FORWARD chain accepts it); the trace goes on "
        "past the node\nHint 1 of 3: the trace lists the rules the SYN met, in every namespace it passed; the "
        "last one decided its fate.")


def test_masquerade_rule(lab):
    good = "-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE"
    assert egress.masquerade_rule(good, lab).message == (
        "Correct: the client reached the internet host, which saw 198.51.100.3:60438, and pods on other nodes "
        "still see the client as 10.244.1.2: that is what kindnet's KIND-MASQ-AGENT chain does.")
    assert egress.masquerade_rule("iptables -t nat -A POSTROUTING -j MASQUERADE", lab).message.startswith(
        "Not quite: the internet answers now (198.51.100.3:60438), but your rule also rewrites traffic between "
        "pods: default/web-7466c97f8c-6x2xw saw the client as 10.244.2.1 instead of 10.244.1.2.")
    assert egress.masquerade_rule("-A POSTROUTING -s 10.244.0.0/16 -j SNAT --to-source 198.51.100.3",
                                  lab).message.startswith(
        "Not quite: with your rule on every node, the client's request to the internet host still got no reply")
    assert egress.masquerade_rule("-A PREROUTING -j MASQUERADE", lab).message.startswith(
        "Not quite: a source rewrite belongs in POSTROUTING, not PREROUTING\n")
    # the lab itself is untouched: its own masquerade is still kindnet's
    assert "-A KIND-MASQ-AGENT -d 10.244.0.0/16" in lab.rules("kind-worker")


def test_exempt_reaches(lab):
    cidrs = ["10.244.0.0/16", "203.0.113.0/24"]
    assert egress.exempt_reaches(False, lab, cidrs=cidrs).correct
    assert egress.exempt_reaches(True, lab, cidrs=cidrs).message.startswith(
        "Not quite: send it in your head: is 203.0.113.10 inside one of the CIDRs?\n")
    assert egress.exempt_reaches(True, lab, cidrs=["10.244.0.0/16"]).correct


@pytest.mark.parametrize("text, lines", [
    ("iptables -t nat -A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE", ["-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE"]),
    ("-I POSTROUTING 1 -j MASQUERADE", ["-A POSTROUTING -j MASQUERADE"]),
    (["-A POSTROUTING -d 1.2.3.4 -j RETURN", "-A POSTROUTING -j MASQUERADE"],
     ["-A POSTROUTING -d 1.2.3.4 -j RETURN", "-A POSTROUTING -j MASQUERADE"]),
])
def test_parse_rule_lines(text, lines):
    assert sandbox.parse_rule_lines(text) == lines


@pytest.mark.parametrize("text, message", [
    ("POSTROUTING -j MASQUERADE", "write the rule as iptables-save prints it, starting with the chain: "
                                  "'-A POSTROUTING ...' (got 'POSTROUTING -j MASQUERADE')"),
    ("-t filter -A FORWARD -j DROP", "this rule belongs in the nat table, not 'filter' (write -t nat, or leave "
                                     "-t out)"),
    ("", "the answer holds no rule: write one such as '-A POSTROUTING ... -j MASQUERADE'"),
])
def test_parse_rule_lines_refuses(text, message):
    with pytest.raises(AnswerError) as e:
        sandbox.parse_rule_lines(text)
    assert str(e.value) == message


def test_a_rule_iptables_restore_refuses(lab):
    copy = sandbox.sim_copy(lab)
    with pytest.raises(AnswerError) as e:
        sandbox.add_node_rules(copy, ["-A POSTROUTING --bogus -j MASQUERADE"])
    assert str(e.value).startswith("iptables-restore would refuse this rule: ")


def test_nat_hops_follow_both_translators(lab):
    r = lab.http("default/client", INTERNET, "/clientip")
    there, back = nat_hops(lab, r)
    assert [(h.where, h.packet, h.change) for h in there] == [
        ("pod default/client", "10.244.1.2:60438 -> 203.0.113.10:80", ""),
        ("node kind-worker", "172.18.0.3:60438 -> 203.0.113.10:80", "SNAT 10.244.1.2:60438 → 172.18.0.3:60438"),
        ("NAT gateway (cloud)", "198.51.100.3:60438 -> 203.0.113.10:80",
         "SNAT 172.18.0.3:60438 → 198.51.100.3:60438"),
        ("internet host", "", "")]
    assert [h.change for h in back] == ["", "un-SNAT 198.51.100.3:60438 → 172.18.0.3:60438",
                                        "un-SNAT 172.18.0.3:60438 → 10.244.1.2:60438", ""]


def test_nat_hops_stop_where_the_packet_died(lab):
    lab.set_masquerade(False)
    [r] = lab.probe("default/client", INTERNET)
    there, back = nat_hops(lab, r)
    assert [h.where for h in there] == ["pod default/client", "node kind-worker", "NAT gateway (cloud)"]
    assert there[-1].change == "no conntrack entry:\nthe packet went no further" and back == []


def test_trace_by_place_names_each_place(lab):
    lab.set_masquerade(False)
    text = render_trace_by_place(lab, lab.trace("default/client", INTERNET))
    assert [l for l in text.splitlines() if l.startswith("--") or l.startswith("verdict")] == [
        "-- on node kind-worker --", "-- on NAT gateway (cloud) --", "verdict: no-reply"]
    assert where.last_place(lab, lab.trace("default/client", INTERNET)) == "natgw"
