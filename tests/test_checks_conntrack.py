"""Checks of 04.00-conntrack, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from labkit.backends.sim.lab import SimLab
from labkit.checks import conntrack

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"
WEB_VIP = "10.96.146.191"


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    lab.http("default/client", f"{WEB_VIP}:80")
    yield lab
    lab.down()


def entry(lab):
    [e] = lab.conntrack("kind-worker")
    return e


def test_the_connection_has_one_entry(lab):
    e = entry(lab)
    assert (str(e.orig), str(e.reply), e.state) == (
        f"10.244.1.2:60438 -> {WEB_VIP}:80", "10.244.2.3:8080 -> 10.244.1.2:60438", "TIME_WAIT")


def test_reply_source(lab):
    assert conntrack.reply_source("10.244.2.3:8080", lab).message.startswith(
        "Correct: the reply will come from 10.244.2.3:8080 (default/web-7466c97f8c-9kkt5)")
    assert conntrack.reply_source(f"{WEB_VIP}:80", lab).message == (
        "Not quite: that is where the client sent the packet (the original direction); the reply tuple says "
        "who will really answer\nHint 1 of 3: an entry has two tuples: the original direction (as the client "
        "sent it) and the reply direction (what the reply will look like).")


def test_reply_source_without_a_connection():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    assert conntrack.reply_source("10.244.2.3:8080", lab).message.startswith(
        f"Not quite: node kind-worker has no conntrack entry from the client to {WEB_VIP}: run the cell that "
        "sends the SYN first\n")


def test_reply_packet(lab):
    good = IP(src="10.244.2.3", dst="10.244.1.2") / TCP(sport=8080, dport=60438, flags="SA")
    assert conntrack.reply_packet(good, lab).correct
    bad = IP(src=WEB_VIP, dst="10.244.1.2") / TCP(sport=80, dport=60438, flags="SA")
    assert conntrack.reply_packet(bad, lab).message == (
        f"Not quite: the pod does not know the ClusterIP {WEB_VIP}; it replies from its own address\n"
        "Hint 1 of 3: the pod answers from its own address and port, back to the address and port it saw "
        "the SYN come from.")


def test_client_sees(lab):
    assert conntrack.client_sees(f"{WEB_VIP}:80", lab).correct
    assert conntrack.client_sees("10.244.2.3:8080", lab).message.startswith(
        "Not quite: that is the pod's address: the reply leaves the pod with it, but the node rewrites it "
        "before the client sees it\nHint 1 of 3:")


def test_bypass_source(lab):
    assert conntrack.bypass_source("10.244.2.3:8080", lab).correct
    assert conntrack.bypass_source(f"{WEB_VIP}:80", lab).message.startswith(
        "Not quite: only conntrack on the node would turn the source back into the ClusterIP, and this reply "
        "never passes it\nHint 1 of 3:")
