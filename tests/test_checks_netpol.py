"""Checks of 08.00-network-policy, with the correct answer and a typical wrong one."""
import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import netpol


def pod(ns, name, app, node):
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}\n"
            f"spec:\n  nodeName: {node}\n  containers: [{{name: c, image: registry.k8s.io/e2e-test-images/"
            "agnhost:2.53, args: [netexec, --http-port=80]}]\n")


WORLD = "---\n".join([
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n",
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {env: dev}}\n",
    pod("prod", "frontend", "frontend", "kind-worker"), pod("prod", "backend", "backend", "kind-worker2"),
    pod("prod", "db", "db", "kind-worker2"), pod("dev", "frontend", "frontend", "kind-worker"),
    "apiVersion: v1\nkind: Service\nmetadata: {name: backend, namespace: prod}\n"
    "spec: {selector: {app: backend}, ports: [{port: 80, targetPort: 80}]}\n",
])
DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""
AND = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend-from-frontend, namespace: prod}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: prod}}
      podSelector: {matchLabels: {app: frontend}}
    ports: [{port: 80}]
"""
OR = AND.replace("      podSelector: {matchLabels: {app: frontend}}", "    - podSelector: {matchLabels: {app: frontend}}")
EGRESS = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: backend}}}]
    ports: [{protocol: TCP, port: 80}]
"""
DNS_RULE = """\
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
"""


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(WORLD, "world")
    lab.enable_dns()
    lab.apply(DENY, "deny")
    yield lab
    lab.down()


def test_default_deny(lab):
    assert netpol.default_deny([], lab).message == "Correct: no other pod may reach prod/backend on port 80."
    assert netpol.default_deny(["prod/frontend"], lab).message == (
        "Not quite: prod/frontend may not: denied: prod/frontend -> prod/backend TCP/80. Egress from "
        "prod/frontend: not isolated (no NetworkPolicy selects it for Egress). Ingress to prod/backend: isolated "
        "by prod/default-deny; no ingress rule of them allows it.\n"
        "Hint 1 of 3: a NetworkPolicy with an empty podSelector selects every pod of its namespace.")
    assert netpol.default_deny([], lab, destination="dev/frontend").message.startswith(
        "Not quite: kube-system/coredns-5f867fbf47-lwwp6 may too: allowed: kube-system/coredns-5f867fbf47-lwwp6 "
        "-> dev/frontend TCP/80.")


def test_and_or(lab):
    lab.apply(AND, "and")
    assert netpol.sources_allowed(lab, "prod/backend") == {"prod/frontend"}
    lab.apply(OR, "or")
    assert netpol.and_or(["prod/db", "prod/frontend"], lab).correct
    assert netpol.and_or(["prod/frontend"], lab).message.startswith(
        "Not quite: prod/db may too: allowed: prod/db -> prod/backend TCP/80.")
    assert netpol.and_or("prod/frontend", lab).message.startswith(
        "Not quite: expected a list of pods as 'namespace/name', e.g. ['prod/frontend'], got 'prod/frontend'\n")


def test_egress_with_dns(lab):
    lab.apply(AND, "and")  # the backend's ingress lets the frontend in, as in the notebook
    assert netpol.egress_with_dns(EGRESS + DNS_RULE, lab).correct
    assert netpol.egress_with_dns(EGRESS, lab).message.startswith(
        "Not quite: prod/frontend reaches prod/backend by address, but its DNS lookup of 'backend.prod' ends in "
        "TIMEOUT: the DNS trap\n")
    assert netpol.egress_with_dns(EGRESS.replace("app: backend", "app: db") + DNS_RULE, lab).message.startswith(
        "Not quite: with your policy prod/frontend cannot reach prod/backend any more (no-reply)\n")
    # the lab itself got no egress policy: the check tried it in a copy
    assert lab.dns("prod/frontend", "backend.prod").status == "NOERROR"


def test_pod_chain(lab):
    lab.apply(AND, "and")
    assert netpol.pod_chain("LABKIT-NP-I-OL4HILVPMGTJTBHB", lab).correct
    assert netpol.pod_chain("LABKIT-NP-E-OL4HILVPMGTJTBHB", lab).message.startswith(
        "Not quite: that is an egress chain (E): the backend's policy is about what may come in (I)\n")
