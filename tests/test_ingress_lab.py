"""The lab's ingress controller, end to end: real nginx in the kernel lab, the same answers in the sim.

The outside client (192.0.2.10) asks the controller's load balancer address,
port 80, with a Host header; the load balancer sends it to the node that runs
the controller pod (externalTrafficPolicy Local), nginx (in the kernel) or the
routing model (in the sim) picks the Service, and the backend pod answers.
Both backends must give the same pod, the same status and body, and show the
same headers nginx sent upstream. Pod names and addresses come from the same
seeded control plane, so they are equal across backends too.
"""
from __future__ import annotations

import re

import pytest

from outside_scenario import BACKENDS
from labkit.controllers.ingress.gateway import CHI_SQUARE_95, chi_square
from labkit.controllers.ingress.gateway_conf import split_percents, split_pick
from labkit.backends.sim.ingress import render_error_page
from labkit.workloads.netexec import NOW_PATTERN

TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "nginx")
CLIENT = "192.0.2.10"


def deployment(name: str, replicas: int = 1) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
                    args: [netexec, --http-port=8080]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def backend(service: str, port: str = "number: 80") -> str:
    return f"{{service: {{name: {service}, port: {{{port}}}}}}}"


APPS = "---\n".join(deployment(n, r) for n, r in (("web", 2), ("api", 1), ("fallback", 1), ("v1", 1), ("v2", 1)))
SHOP = f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop, namespace: default}}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {backend("web")}}}
      - {{path: /api, pathType: Prefix, backend: {backend("api", "name: http")}}}
  - host: exact.example.com
    http:
      paths:
      - {{path: /hostname, pathType: Exact, backend: {backend("api")}}}
  - host: "*.foo.example.com"
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {backend("api")}}}
"""
DEFAULT = f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: fallback, namespace: default}}
spec:
  defaultBackend: {backend("fallback")}
"""
GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: lab, namespace: default}
spec:
  gatewayClassName: nginx
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: default}
spec:
  parentRefs: [{name: lab}]
  hostnames: [canary.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: X-Canary, value: always}]}]
    backendRefs: [{name: v2, port: 80}]
  - backendRefs: [{name: v1, port: 80, weight: 90}, {name: v2, port: 80, weight: 10}]
"""


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    if request.param == "sim":
        from labkit.backends.sim.lab import SimLab

        lab = SimLab("ing")
    else:
        from conftest import labkit_requires

        labkit_requires(root=True, tools=TOOLS)
        import secrets

        from labkit.backends.netns.lab import NetnsLab

        lab = NetnsLab("i" + secrets.token_hex(2))
    try:
        lab.up("---\n".join([APPS, SHOP, DEFAULT]), "ingress stories")
        lab.enable_ingress()
        yield lab
    finally:
        lab.down()


def lb(lab) -> str:
    [svc] = [s for s in lab.services() if s.meta.name == "ingress-nginx-controller"]
    return f"{svc.load_balancer_ingress[0].ip}:80"


def pods_of(lab, app: str) -> list[str]:
    """The app's pods in the order nginx's round robin visits them (sorted "IP:port")."""
    pods = [p for p in lab.pods() if p.meta.labels.get("app") == app]
    return [f"default/{p.meta.name}" for p in sorted(pods, key=lambda p: f"{p.pod_ip}:8080")]


def ask(lab, host, path, **kw):
    r = lab.http("outside", lb(lab), path, host=host, **kw)
    assert r.verdict == "answered", r
    return r


def test_the_controller_is_a_pod_behind_a_load_balancer(lab):
    [svc] = [s for s in lab.services() if s.meta.name == "ingress-nginx-controller"]
    assert (svc.meta.namespace, svc.type, svc.external_traffic_policy) == ("ingress-nginx", "LoadBalancer", "Local")
    assert lb(lab) == "198.51.100.242:80"
    assert [p.meta.name.rsplit("-", 2)[0] for p in lab.pods() if p.meta.namespace == "ingress-nginx"] == [
        "ingress-nginx-controller"]
    assert "server_name shop.example.com;" in lab.ingress_conf()


@pytest.mark.parametrize("host,path,app,status", [
    ("shop.example.com", "/hostname", "web", 200),       # Prefix /
    ("shop.example.com", "/api/hostname", "api", 200),   # Prefix /api: longest wins (netexec's "NOW: ...")
    ("shop.example.com", "/apiv2", "web", 200),          # element-wise: /apiv2 is not under /api
    ("SHOP.example.com:80", "/hostname?x=/api", "web", 200),  # case, port and query do not count
    ("exact.example.com", "/hostname", "api", 200),      # Exact
    ("a.foo.example.com", "/hostname", "api", 200),      # *.foo.example.com: one label
    ("a.b.foo.example.com", "/hostname", "fallback", 200),  # two labels: the default backend
    ("unknown.test", "/hostname", "fallback", 200),      # unknown host: the default backend
    (None, "/hostname", "fallback", 200),                # no host (the address): the default backend
])
def test_routing_by_host_and_path(lab, host, path, app, status):
    r = ask(lab, host, path)
    assert r.answered_by in pods_of(lab, app) and r.status == status
    if path == "/hostname" or path.startswith("/hostname?"):
        assert r.body == r.answered_by.split("/")[1]
    else:  # agnhost answers a path it has no handler for with its root handler's time
        assert re.fullmatch(NOW_PATTERN, r.body), r.body


def test_a_miss_in_a_host_gets_nginx_404(lab):
    """exact.example.com has only Exact /hostname: /hostname/ matches nothing there, and a host's
    own server has no default backend (ingress-nginx's rule)."""
    r = ask(lab, "exact.example.com", "/hostname/")
    assert (r.status, r.body, r.headers) == (404, render_error_page(404), ())
    assert r.answered_by.startswith("ingress-nginx/ingress-nginx-controller-")


def test_forwarded_headers_show_the_client_as_nginx_saw_it(lab):
    r = ask(lab, "shop.example.com", "/hostname", headers={"X-Forwarded-For": "203.0.113.66", "X-Lab": "yes"})
    h = dict(r.headers)
    assert r.client_seen_as == r.client_address and r.client_address.startswith(CLIENT + ":")
    assert (h["X-Forwarded-For"], h["X-Real-IP"]) == (CLIENT, CLIENT)  # the spoofed value is replaced
    assert sorted(h) == ["Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto",
                         "X-Lab", "X-Real-IP", "X-Request-ID", "X-Scheme"]
    assert (h["Host"], h["X-Forwarded-Host"], h["X-Forwarded-Port"], h["X-Lab"]) == (
        "shop.example.com", "shop.example.com", "80", "yes")
    assert r.reply_from == lb(lab)


def test_the_node_port_of_the_controller_node(lab):
    [svc] = [s for s in lab.services() if s.meta.name == "ingress-nginx-controller"]
    [ctrl] = [p for p in lab.pods() if p.meta.namespace == "ingress-nginx"]
    node_ip = lab.plan.node(ctrl.node_name).ip
    r = lab.http("outside", f"{node_ip}:{svc.ports[0].node_port}", "/hostname", host="exact.example.com")
    assert (r.status, r.answered_by) == (200, pods_of(lab, "api")[0])
    assert dict(r.headers)["X-Real-IP"] == CLIENT


def test_round_robin_over_the_endpoints_after_a_scale(lab):
    lab.scale("web", 3)
    web = pods_of(lab, "web")
    assert len(web) == 3
    got = [ask(lab, "shop.example.com", "/hostname").answered_by for _ in range(6)]
    assert got == web + web  # the reload started the round robin over, at the first address


def test_deleting_the_default_backend_is_seen_after_the_reload(lab):
    lab.delete(DEFAULT)
    r = ask(lab, "unknown.test", "/hostname")
    assert (r.status, r.body) == (404, render_error_page(404))
    assert "defaultBackend" not in lab.ingress_conf()
    lab.apply(DEFAULT)
    assert ask(lab, "unknown.test", "/hostname").answered_by == pods_of(lab, "fallback")[0]


def test_no_ready_endpoint_is_503(lab):
    lab.scale("api", 0)
    try:
        r = ask(lab, "exact.example.com", "/hostname")
        assert (r.status, r.body) == (503, render_error_page(503))
    finally:
        lab.scale("api", 1)
    assert ask(lab, "exact.example.com", "/hostname").answered_by == pods_of(lab, "api")[0]


N_CANARY = 1000


def test_a_weighted_httproute_splits_as_split_clients_does(lab):
    """90/10 over 1,000 requests: the kernel's nginx (split_clients on the request id) and the
    simulation (nginx's MurmurHash2 of the same id) send every request to the same Service,
    and the split passes a chi-square test against the weights."""
    lab.apply(GATEWAY)
    try:
        assert "split_clients" in lab.ingress_conf()
        v1, v2 = pods_of(lab, "v1")[0], pods_of(lab, "v2")[0]
        ids = [f"canary-{i}" for i in range(N_CANARY)]
        got = [ask(lab, "canary.example.com", "/hostname", headers={"X-Request-ID": rid}).answered_by
               for rid in ids]
        percents = split_percents([90, 10])
        want = [(v1, v2)[split_pick(percents, [90, 10], rid)] for rid in ids]
        assert got == want
        counts = {"v1": got.count(v1), "v2": got.count(v2)}
        assert counts == {"v1": 895, "v2": 105}
        assert chi_square(counts, {"v1": 90, "v2": 10}) < CHI_SQUARE_95[1]
        assert {ask(lab, "canary.example.com", "/hostname", headers={"X-Canary": "always"}).answered_by
                for _ in range(5)} == {v2}
        r = ask(lab, "shop.example.com", "/hostname")  # port 80 is the Gateway's now: no route
        assert (r.status, r.body) == (404, render_error_page(404))
    finally:
        lab.delete(GATEWAY)
    assert ask(lab, "shop.example.com", "/hostname").answered_by in pods_of(lab, "web")
