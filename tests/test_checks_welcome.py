"""Checks of 00.00-welcome: each with its correct answer and a typical wrong one, on the simulation."""
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from labkit.backends.sim.lab import SimLab
from labkit.checks import core, welcome

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    yield lab
    lab.down()


def test_node_count(lab, capsys):
    r = welcome.node_count(3, lab)
    assert r.correct
    assert r.message == "Correct: the lab has 3 nodes: kind-control-plane, kind-worker, kind-worker2."
    assert capsys.readouterr().out == r.message + "\n"


def test_node_count_wrong_answers_walk_the_hints(lab):
    r = welcome.node_count(6, lab)
    assert (r.correct, r.hint) == (False, 1)
    assert r.message == ("Not quite: 6 is not the number of nodes\n"
                         "Hint 1 of 3: every node of the cluster is one box in the topology diagram above.")
    r = welcome.node_count(4, lab)  # the number of pods
    assert r.message == ("Not quite: that is the number of pods; nodes are the machines the pods run on\n"
                         "Hint 2 of 3: count the boxes labelled as nodes (control-plane and workers), "
                         "not the pods inside them.")
    r = welcome.node_count(7, lab)
    assert r.message.endswith("Hint 3 of 3: the diagram's nodes are kind-control-plane, kind-worker, "
                              "kind-worker2: how many is that?")
    assert welcome.node_count(8, lab).hint == 3  # the last hint repeats


def test_unanswered_stub_shows_the_first_hint_and_does_not_count(lab):
    for _ in range(2):
        r = welcome.node_count(..., lab)
        assert (r.correct, r.hint) == (False, 1)
        assert r.message == ("Not answered yet: replace the ... with your answer and run the cell again.\n"
                             "Hint 1 of 3: every node of the cluster is one box in the topology diagram above.")
    assert welcome.node_count(None, lab).hint == 1
    assert welcome.node_count(6, lab).hint == 1


def test_hint_counters_live_on_the_lab(lab):
    welcome.node_count(6, lab)
    welcome.node_count(6, lab)
    assert getattr(lab, core.ATTEMPTS_ATTRIBUTE) == {"welcome.node_count": 2}
    core.reset_hints(lab)
    assert welcome.node_count(6, lab).hint == 1


def test_unreadable_answer_is_a_hint_not_an_exception(lab):
    r = welcome.node_count("three", lab)
    assert r.message.startswith("Not quite: expected the number of nodes, got 'three'\nHint 1 of 3:")
    r = welcome.client_ip(42, lab)
    assert r.message.startswith("Not quite: expected the client pod's address as a string such as "
                                "'10.96.0.1', got int\nHint 1 of 3:")


def test_no_lab_says_run_the_setup_cell():
    r = welcome.client_ip("10.244.1.2", None)
    assert r.message.startswith("Not quite: this check needs the lab: run the setup cell "
                                "(lab = labkit.lab(seed=0)) first")


def test_client_ip(lab):
    assert welcome.client_ip("10.244.1.2", lab).message == (
        "Correct: the client pod has 10.244.1.2, from node kind-worker's pod range.")
    assert welcome.client_ip("172.18.0.3", lab).message == (
        "Not quite: 172.18.0.3 is the address of node kind-worker, the machine the client runs on, "
        "not of the pod itself\nHint 1 of 3: lab.pods() lists every pod; each has a .pod_ip.")


def test_first_packet(lab):
    r = welcome.first_packet(IP(src="10.244.1.2", dst="10.244.2.3") / TCP(dport=8080), lab)
    assert r.correct
    assert r.message == ("Correct: default/web-7466c97f8c-9kkt5 answered your SYN with a SYN-ACK "
                         "from 10.244.2.3:8080.")


def test_first_packet_wrong(lab):
    r = welcome.first_packet(IP(src="10.244.1.2", dst="10.244.1.3") / TCP(dport=9999), lab)
    assert r.message == (
        "Not quite: the packet went to default/web-7466c97f8c-hf2lq, but port 9999 got refused: "
        "nothing listens there\nHint 1 of 3: the packet is IP(src=..., dst=...)/TCP(dport=...): "
        "the source is the client pod's address.")
    r = welcome.first_packet(IP(dst="10.244.1.3") / TCP(dport=8080), lab)
    assert r.message.startswith("Not quite: the packet has no source address: give IP(src=...) the address "
                                "of a pod, node or outside host of the lab")
