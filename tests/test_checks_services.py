"""Checks of 02.00-services, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from labkit.backends.sim.lab import SimLab
from labkit.checks import services

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"
WEB_VIP = "10.96.146.191"
API = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: api, image: agnhost, args: [netexec, --http-port=8080], ports: [{containerPort: 8080}]}
"""
API_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    yield lab
    lab.down()


def test_cluster_ip(lab):
    assert services.cluster_ip(WEB_VIP, lab).correct
    assert services.cluster_ip("10.244.1.3", lab).message == (
        "Not quite: 10.244.1.3 is the address of default/web-7466c97f8c-hf2lq; the Service's address is a "
        "virtual one, held by no pod\nHint 1 of 3: lab.services() lists the Services; each has a .cluster_ip.")


def test_service_packet(lab):
    r = services.service_packet(IP(src="10.244.1.2", dst=WEB_VIP) / TCP(dport=80), lab)
    assert r.correct and r.message.endswith(f"yet the client saw the reply come from {WEB_VIP}:80, the Service: "
                                            "it never learns which pod it reached.")
    assert services.service_packet(IP(src="10.244.1.2", dst=WEB_VIP) / TCP(dport=8080), lab).message == (
        "Not quite: port 8080 is not the Service's port; the Service listens on its `port` and forwards to "
        "the pod's targetPort\nHint 1 of 3: a client talks to the Service, not to a pod: the destination "
        "is the ClusterIP.")


def test_api_service_and_target_port(lab):
    lab.apply(API, "api.yaml")
    wrong = API_SERVICE.replace("{app: api}", "{app: apii}")
    assert services.api_service(wrong, lab).message.startswith(
        "Not quite: the selector {'app': 'apii'} matches no pod, so api has no endpoints\nHint 1 of 3:")
    r = services.api_service(API_SERVICE, lab)
    assert r.correct and r.message.endswith("web uses port 80 too: each Service has its own address, "
                                            "so the ports never collide.")
    assert services.target_port(8080, lab).correct
    assert services.target_port(80, lab).message.startswith(
        "Not quite: 80 is the Service's port, the one clients use\nHint 1 of 3:")


def test_target_port_before_api_exists(lab):
    assert services.target_port(8080, lab).message.startswith(
        "Not quite: the lab has no Service default/api (Services: default/web); run the cells above that "
        "create it\n")


def test_vip_holder(lab):
    assert services.vip_holder("nobody", lab).correct
    assert services.vip_holder("kind-worker", lab).message == (
        f"Not quite: kind-worker has no interface with {WEB_VIP}\n"
        "Hint 1 of 3: look at which namespace in the lab has the ClusterIP on one of its interfaces.")


def test_env_host(lab):
    assert services.env_host(WEB_VIP, lab).correct
    assert services.env_host("10.244.1.3", lab).message.startswith(
        "Not quite: 10.244.1.3 is not what kubelet writes into WEB_SERVICE_HOST\nHint 1 of 3:")


def test_dns_queries(lab):
    assert services.dns_queries(2, lab, name="web.default").message == (
        "Correct: 2 queries (web.default.default.svc.cluster.local, web.default.svc.cluster.local); the fully "
        "qualified name with a final dot costs 1.")
    assert services.dns_queries(1, lab, name="web.default").message == (
        "Not quite: only a name ending in a dot (or with 5 dots or more) is asked as it is first\n"
        "Hint 1 of 3: a pod's resolv.conf has three search domains and options ndots:5.")
    assert services.lookup(lab, "example.com").query_count == 4
