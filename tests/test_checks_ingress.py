"""Checks of 07.00-ingress-and-gateway-api, with the correct answer and a typical wrong one."""
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.checks import ingress

COURSE = Path(__file__).resolve().parent.parent / "course" / "manifests" / "course.yaml"
SHOP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
      - name: shop
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: NAME, namespace: default}
spec:
  selector: {app: NAME}
  ports: [{name: http, port: 80, targetPort: http}]
"""
SITE = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site, namespace: default}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
  - host: www.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
"""
BLOG = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: blog, namespace: default}
spec:
  rules:
  - host: blog.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""
ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: site, namespace: default}
spec:
  gatewayClassName: nginx
  listeners:
  - {name: http, protocol: HTTP, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: site}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs:
    - {name: shop, port: 80, weight: 90}
    - {name: shop-v2, port: 80, weight: 10}
"""


@pytest.fixture
def lab():
    lab = SimLab("lab", "", 0)
    lab.up(COURSE.read_text(), "course.yaml")
    lab.enable_ingress()
    lab.apply(SHOP.replace("NAME", "shop") + "---\n" + SITE, "site")
    yield lab
    lab.down()


def test_routing_through_the_controller(lab):
    assert ingress.entry(lab) == "198.51.100.242:80"
    assert ingress.routed_service(lab, "www.example.com", "/api/users")[0] == "default/web"
    assert ingress.routed_service(lab, "www.example.com", "/apix")[0] == "default/shop"
    assert ingress.routed_service(lab, "nothing.example.com", "/") == ("", 404)


def test_routed_to(lab):
    assert ingress.routed_to("shop", lab, host="www.example.com", path="/apix").message == (
        "Correct: http://www.example.com/apix goes to shop.")
    assert ingress.routed_to("web", lab, host="www.example.com", path="/apix").message.startswith(
        "Not quite: /apix is not under /api: Prefix compares whole path elements, and 'apix' is not 'api', so "
        "the request falls through to the / rule\n")
    assert ingress.routed_to("none", lab, host="nothing.example.com", path="/").correct
    assert ingress.routed_to("shop", lab, host="nothing.example.com", path="/").message.startswith(
        "Not quite: no rule of any Ingress takes host 'nothing.example.com': nginx answers 404 itself\n")


def test_host_rule(lab):
    assert ingress.host_rule(BLOG, lab).correct
    assert ingress.host_rule(BLOG.replace("name: web", "name: shop"), lab).message.startswith(
        "Not quite: with your Ingress, http://blog.example.com/ is answered by shop, not web\n")
    assert ingress.host_rule("kind: Service", lab).message.startswith(
        "Not quite: expected an Ingress manifest as YAML text (kind: Ingress)\n")
    assert ingress.routed_service(lab, "blog.example.com", "/")[0] == ""  # the lab itself has no blog


def test_load_balancers(lab):
    assert ingress.load_balancers(1, lab).correct
    assert ingress.load_balancers(3, lab).message.startswith(
        "Not quite: the apps' Services are ClusterIP: only the controller is exposed\n")


def test_canary_weights(lab):
    lab.apply(SHOP.replace("NAME", "shop-v2") + "---\n" + ROUTE, "canary")
    assert ingress.canary_weights({"shop": 4, "shop-v2": 1}, lab).message == (
        "Correct: the canary's weight is 1 of 5: 20%. Of 200 requests sent through a copy of the lab, 39 "
        "reached shop-v2.")
    assert ingress.canary_weights({"shop": 80, "shop-v2": 20}, lab).correct
    assert ingress.canary_weights({"shop": 5, "shop-v2": 1}, lab).message.startswith(
        "Not quite: with these weights the canary gets 1/6 = 17% of the requests, not 20%\n")
    assert ingress.canary_weights([80, 20], lab).message.startswith(
        "Not quite: expected the weights as a dict of Service name to weight")
