"""Checks of 01.00-pods-come-and-go, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import pods
from labkit.viz.widgets import pod_manifest

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    yield lab
    lab.down()


def web_ips(lab):
    return sorted(p.pod_ip for p in lab.pods() if p.meta.labels.get("app") == "web")


def test_web_pod_ips(lab):
    assert pods.web_pod_ips(["10.244.2.3", "10.244.1.3", "10.244.2.2"], lab).message == (
        "Correct: the 3 web pods have 10.244.1.3, 10.244.2.2, 10.244.2.3 right now.")
    assert pods.web_pod_ips(["10.244.1.3", "10.244.1.2"], lab).message == (
        "Not quite: 2 web pod addresses are missing; 10.244.1.2 is not a web pod's address now\n"
        "Hint 1 of 3: lab.pods() lists every pod; the web pods carry the label app=web.")


def test_node_of_address(lab):
    r = pods.node_of_address("kind-worker2", lab, address="10.244.2.3")
    assert r.correct and r.message.startswith("Correct: 10.244.2.3 (default/web-7466c97f8c-9kkt5) comes from "
                                              "kind-worker2's pod range")
    assert pods.node_of_address("kind-worker", lab, address="10.244.2.3").message == (
        "Not quite: kind-worker's range does not hold 10.244.2.3\n"
        "Hint 1 of 3: every node hands out pod addresses from its own range, its pod CIDR (a /24).")
    r = pods.node_of_address("kind-worker", lab, address="10.244.2.3")
    assert r.message.endswith("Hint 2 of 3: the third number of a pod address tells the /24 it comes from: "
                              "10.244.1.x and 10.244.2.x are different nodes' ranges.")
    r = pods.node_of_address("kind-worker", lab, address="10.244.2.3")
    assert r.message.endswith("Hint 3 of 3: the pod ranges here: kind-control-plane 10.244.0.0/24, "
                              "kind-worker 10.244.1.0/24, kind-worker2 10.244.2.0/24.")


def test_new_pod_ip_after_a_deletion(lab):
    web = sorted((p for p in lab.pods() if p.meta.labels.get("app") == "web"), key=lambda p: p.meta.name)
    before = [p.meta.name for p in web]
    lab.delete(pod_manifest(web[0], web[0].meta.labels))
    new = [p for p in lab.pods() if p.meta.labels.get("app") == "web" and p.meta.name not in before]
    assert [p.meta.name for p in new] == ["web-7466c97f8c-tpb87"]
    r = pods.new_pod_ip(new[0].pod_ip, lab, before=before)
    assert r.correct and r.message.startswith(f"Correct: the replacement web-7466c97f8c-tpb87 runs on "
                                              f"kind-worker2 with {new[0].pod_ip}")
    assert pods.new_pod_ip("10.244.1.3", lab, before=before).message.startswith(
        "Not quite: 10.244.1.3 belongs to default/web-7466c97f8c-hf2lq, a pod that was already there\n")


def test_gone_address_after_a_scale_down(lab):
    old_ips = web_ips(lab)
    lab.scale("web", 1)
    assert web_ips(lab) == ["10.244.2.2"]
    r = pods.gone_address("10.244.1.3", lab, old_ips=old_ips)
    assert r.message == ("Correct: no pod has 10.244.1.3 any more: a SYN from the client to it got "
                         "'no-reply'. A client that kept this address has lost its server.")
    r = pods.gone_address("10.244.2.2", lab, old_ips=old_ips)
    assert r.message.startswith("Not quite: 10.244.2.2 still belongs to default/web-7466c97f8c-6x2xw: "
                                "a client using it still reaches a pod\nHint 1 of 3:")
    assert pods.gone_address("10.244.9.9", lab, old_ips=old_ips).message.startswith(
        "Not quite: 10.244.9.9 is not one of the addresses in old_ips\n")
