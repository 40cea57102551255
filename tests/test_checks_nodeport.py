"""Checks of 06.00-nodeport-and-loadbalancer, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import nodeport
from labkit.checks.sandbox import service_manifest
from labkit.viz.outside_widgets import render_nodeports

MANIFEST = Path(__file__).resolve().parent.parent / "course" / "manifests" / "nodeport.yaml"
ECHO_LB = """\
apiVersion: v1
kind: Service
metadata: {name: echo-lb, namespace: default}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
"""


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(MANIFEST.read_text(), "nodeport.yaml")
    yield lab
    lab.down()


def echo(lab):
    return next(s for s in lab.services() if s.meta.name == "echo")


def local(lab):
    lab.apply(service_manifest(echo(lab), externalTrafficPolicy="Local"), "local")
    return lab


def test_range_top(lab):
    assert nodeport.range_top(32767, lab).message == (
        "Correct: 32767: NodePorts come from 30000-32767 (2768 ports) unless the API server's "
        "--service-node-port-range says otherwise.")
    assert nodeport.range_top(33000, lab).message == (
        "Not quite: 33000 is a common mistake (it is in the article this course started from); a nodePort of "
        "32800 is refused here as outside 30000-32767\nHint 1 of 3: the range is a flag of the API server, "
        "--service-node-port-range; the lab uses its default.")
    assert nodeport.range_top("32768", lab).message.startswith(
        "Not quite: 32768 is just outside; the range includes both of its ends\nHint 2 of 3:")


def test_every_node_answers_with_the_cluster_policy(lab):
    assert render_nodeports(lab, ["default/echo"]) == (
        "Service default/echo: NodePort 30754, externalTrafficPolicy Cluster\n"
        "  kind-control-plane   172.18.0.2:30754  answered by echo-a     client seen as 172.18.0.2\n"
        "  kind-worker          172.18.0.3:30754  answered by echo-a     client seen as 172.18.0.3\n"
        "  kind-worker2         172.18.0.4:30754  answered by echo-a     client seen as 10.244.2.1")


def test_seen_as(lab):
    assert nodeport.seen_as("172.18.0.2", lab, node="kind-control-plane").correct
    assert nodeport.seen_as("192.0.2.10", lab, node="kind-control-plane").message.startswith(
        "Not quite: the client's own address would be kept only if the node did not SNAT; with "
        "externalTrafficPolicy Cluster it does, because the pod may be on another node\nHint 1 of 3:")
    assert nodeport.seen_as("10.244.2.1", lab, node="kind-worker2").correct


def test_seen_as_after_the_switch_to_local_says_so(lab):
    local(lab)
    assert nodeport.seen_as("172.18.0.2", lab, node="kind-control-plane").message.startswith(
        "Not quite: kind-control-plane:30754 does not answer the outside client in this lab: is default/echo "
        "still of externalTrafficPolicy Cluster, as in the notebook?\n")


def test_local_nodes(lab):
    assert nodeport.local_nodes(["kind-worker2"], lab).message.startswith(
        "Not quite: Service default/echo has externalTrafficPolicy Cluster: run the cell that sets it to Local")
    local(lab)
    assert nodeport.local_nodes(["kind-worker2"], lab).message == (
        "Correct: only kind-worker2 answers: each node serves external traffic from its own endpoints, and the "
        "others drop it.")
    assert nodeport.local_nodes(["kind-control-plane", "kind-worker", "kind-worker2"], lab).message.startswith(
        "Not quite: that was true with the Cluster policy; with Local, a node without an endpoint of its own has "
        "nowhere to send the packet\n")
    assert nodeport.local_nodes(["worker", "worker2"], lab).message.startswith(
        "Not quite: kind-worker has no echo pod, so it drops the packet\n")


def test_local_client(lab):
    local(lab)
    assert nodeport.local_client("192.0.2.10", lab).correct
    assert nodeport.local_client("172.18.0.4", lab).message.startswith(
        "Not quite: that is a node's address: with Cluster policy the node would masquerade; with Local it does "
        "not\n")


def test_lb_targets(lab):
    lab.apply(ECHO_LB, "echo-lb.yaml")
    assert nodeport.load_balancer_nodes(lab) == ["kind-worker2"]
    assert nodeport.lb_targets(["kind-worker2"], lab).correct
    assert nodeport.lb_targets(["kind-control-plane", "kind-worker2"], lab).message.startswith(
        "Not quite: the control-plane node is left out twice: kind labels it "
        "node.kubernetes.io/exclude-from-external-load-balancers, and it has no echo pod\n")


def test_source_ranges(lab):
    lab.apply(ECHO_LB, "echo-lb.yaml")
    assert nodeport.source_ranges(["192.0.2.0/24"], lab).message == (
        "Correct: with ['192.0.2.0/24'] the outside client gets in and the client pod is dropped, both at the "
        "cloud's load balancer and by kube-proxy's own firewall rules on the nodes.")
    assert nodeport.source_ranges("192.0.2.10/32", lab).correct
    assert nodeport.source_ranges(["0.0.0.0/0"], lab).message.startswith(
        "Not quite: with ['0.0.0.0/0'] the outside client gets in, but so does the client pod 10.244.1.2")
    assert nodeport.source_ranges(["203.0.113.0/24"], lab).message.startswith(
        "Not quite: with ['203.0.113.0/24'] the outside client (192.0.2.10) is dropped by the load balancer")
    assert nodeport.source_ranges(["192.0.2.0/33"], lab).message.startswith(
        "Not quite: '192.0.2.0/33' is not a CIDR (write it like '192.0.2.0/24')")
    # the lab itself keeps no ranges: the check tried them in a copy
    assert next(s for s in lab.services() if s.meta.name == "echo-lb").load_balancer_source_ranges == ()


def test_service_manifest_round_trips(lab):
    svc = echo(lab)
    lab.apply(service_manifest(svc), "same")
    assert echo(lab) == svc
