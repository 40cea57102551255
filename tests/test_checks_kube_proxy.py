"""Checks of 03.00-kube-proxy-and-dnat, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from labkit.backends.sim.lab import SimLab
from labkit.checks import facts, kube_proxy

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"
WEB_VIP = "10.96.146.191"


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    yield lab
    lab.down()


def test_service_chain(lab):
    assert kube_proxy.service_chain("KUBE-SVC-CDGGSHYLG3RE2FKL", lab).correct
    assert kube_proxy.service_chain("KUBE-SEP-2AZ33KU3V5PGPQZH", lab).message == (
        "Not quite: that is one endpoint's chain (KUBE-SEP-...); the Service's own chain comes first\n"
        "Hint 1 of 3: kube-proxy's first rule for a Service sits in the chain KUBE-SERVICES and matches "
        "its ClusterIP.")


def test_probabilities_come_from_the_renderer():
    assert facts.rendered_probabilities(4) == ["0.2500000000", "0.3333333333", "0.5000000000", "1"]
    assert facts.rendered_probabilities(1) == ["1"]


def test_probabilities(lab):
    r = kube_proxy.probabilities([0.25, "1/3", 0.5, 1], lab, endpoints=4)
    assert r.message == ("Correct: kube-proxy writes 0.2500000000, 0.3333333333, 0.5000000000 and a last rule "
                         "with no coin: each endpoint ends up with 1/4 of the new connections.")
    assert kube_proxy.probabilities([0.25] * 4, lab, endpoints=4).message == (
        "Not quite: every rule with 1/4: the later rules only see the packets the earlier ones let through, "
        "so their probabilities must be larger\nHint 1 of 3: there is one rule per endpoint; a packet tries "
        "them in order and the first that matches wins.")
    assert kube_proxy.probabilities([0.25, 1 / 3, 0.5], lab, endpoints=4).message.startswith(
        "Not quite: with 4 endpoints kube-proxy writes 4 rules; your list has 3\n")


def test_traced_syn(lab):
    r = kube_proxy.traced_syn(IP(src="10.244.1.2", dst=WEB_VIP) / TCP(dport=80), lab)
    assert r.correct and r.message.startswith("Correct: KUBE-SERVICES -> KUBE-SVC-CDGGSHYLG3RE2FKL -> KUBE-SEP-")
    assert kube_proxy.traced_syn(IP(src="10.244.1.2", dst="10.244.1.3") / TCP(dport=8080), lab).message == (
        f"Not quite: the packet never entered KUBE-SVC-CDGGSHYLG3RE2FKL, web's chain: is the destination "
        f"{WEB_VIP}:80?\nHint 1 of 3: trace a SYN from the client pod to the Service: "
        "IP(src=client address, dst=ClusterIP)/TCP(dport=...).")


def test_share(lab):
    assert kube_proxy.share(1 / 3, lab).correct
    assert kube_proxy.share(0.5, lab).message.startswith(
        "Not quite: 0.5 is not each endpoint's share with 3 endpoints\nHint 1 of 3:")


def test_sep_count_follows_a_scale(lab):
    assert kube_proxy.sep_count(3, lab).correct
    lab.scale("web", 5)
    assert kube_proxy.sep_count(5, lab).message.startswith("Correct: 5 endpoints, 5 KUBE-SEP chains")
    assert kube_proxy.sep_count(3, lab).message == (
        "Not quite: the node's rules have a different number of KUBE-SEP chains for web than 3\n"
        "Hint 1 of 3: kube-proxy writes one KUBE-SEP chain per endpoint of the Service.")
