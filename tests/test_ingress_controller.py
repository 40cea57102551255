"""The lab's controller, pure parts: nginx's split_clients, the Gateway table and the model agree,
the rendered configuration is one real nginx accepts. (End to end: tests/test_ingress_lab.py.)"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit.backends import operations as ops
from labkit.controllers.cluster import ClusterSettings
from labkit.controllers.ingress.controller import (
    INGRESS_NGINX_MANIFEST, controller_pods, ingress_entry_points, render_controller_conf,
)
from labkit.controllers.ingress.gateway import HTTPRequest, route_http
from labkit.controllers.ingress.gateway_conf import (
    compile_gateway, murmur_hash2, route_table_request, split_percents, split_pick,
)
from labkit.model.load import load_manifests

CANARY = Path(__file__).parent / "ingress_conformance" / "gateway_canary.yaml"


@pytest.mark.parametrize("data,want", [
    (b"", 0), (b"a", 2456313694), (b"ab", 446775395), (b"abc", 324500635), (b"abcd", 646393889),
    (b"canary-0", 1012799657), (b"hello world", 1151865881),
])
def test_murmur_hash2(data, want):
    """Pinned values; real nginx agrees request by request in test_ingress_lab's canary test."""
    assert murmur_hash2(data) == want


@pytest.mark.parametrize("weights,want", [
    ([90, 10], [9000, 0]), ([1, 1, 1], [3333, 3333, 0]), ([0, 5], [0, 0]), ([1, 100000], [1, 0]),
    ([3, 0, 1], [7500, 0, 0]),
])
def test_split_percents(weights, want):
    assert split_percents(weights) == want


def test_split_pick_follows_the_hash():
    # murmur("canary-0") = 1012799657 < 0.9 * 2^32: the first part
    assert split_pick([9000, 0], [90, 10], "canary-0") == 0
    assert split_pick([0, 0], [0, 0], "x") is None
    assert split_pick([1000, 0], [10, 90], "canary-0") == 1  # 1012799657 > 0.1 * 2^32


def _canary():
    objs = load_manifests(CANARY.read_text(), str(CANARY))
    kinds = lambda k: [o for o in objs if o.kind == k]  # noqa: E731
    return kinds("Gateway")[0], kinds("HTTPRoute"), kinds("Service"), kinds("Namespace")


HOSTS = ("shop.example.com", "a.shop.example.com", "x.y.shop.example.com", "beta.shop.example.com",
         "admin.example.com", "other.test", None)
PATHS = ("/", "/api", "/api/", "/api/health", "/api/health/", "/apix", "/x/y", "/api?version=3", "/?version=3",
         "/api/../api/health")
HEADERS = ({}, {"X-Canary": "always"}, {"x-canary": "ALWAYS"})


def test_the_table_answers_as_the_model_does():
    """Every host x path x headers x method: the compiled table's rule (what nginx is rendered
    from) is the model's rule, and so is the status."""
    gw, routes, services, namespaces = _canary()
    table = compile_gateway(gw, routes, services, namespaces)
    disagree = []
    for host in HOSTS:
        for path in PATHS:
            for headers in HEADERS:
                for method in ("GET", "POST"):
                    req = HTTPRequest(host, path, headers, method)
                    model = route_http(gw, routes, req, random.Random(0), services, namespaces)
                    got = route_table_request(table, req, "k")
                    want = (model.route or None, model.rule if model.route else None)
                    have = (got.entry.route if got.entry else None, got.entry.rule if got.entry else None)
                    if have != want or (got.status == 404) != (model.status == 404):
                        disagree.append((host, path, headers, method, have, want, got.status, model.status))
    assert disagree == []


NAMESPACES = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n" for n in ("infra", "other"))


def _state(text: str = ""):
    objs = load_manifests(INGRESS_NGINX_MANIFEST + "---\n" + (text or CANARY.read_text()) + NAMESPACES, "test")
    return ops.settle(objs, ClusterSettings(), 0, 1, ["kind-control-plane", "kind-worker", "kind-worker2"])


def test_the_controller_and_its_entry_points():
    state = _state()
    [pod] = controller_pods(state)
    points = ingress_entry_points(state, ["172.18.0.3"])
    assert (pod.pod_ip, 80) in points
    [svc] = [s for s in state.services if s.meta.name == "ingress-nginx-controller"]
    assert (svc.cluster_ip, 80) in points and ("172.18.0.3", svc.ports[0].node_port) in points


def test_a_gateway_of_another_class_is_not_served_and_the_text_is_stable():
    state = _state()
    conf = render_controller_conf(state)
    assert conf.gateways == () and "lab-gateway" not in conf.text  # gatewayClassName: lab
    assert render_controller_conf(state).generation == conf.generation
    assert f'return 200 "{conf.generation}";' in conf.text


@pytest.mark.requires_tool("nginx")
def test_real_nginx_accepts_the_gateway_configuration(tmp_path):
    """Header, method and query matches, splits and 500s, all rendered: `nginx -t` takes them."""
    text = CANARY.read_text().replace("gatewayClassName: lab", "gatewayClassName: nginx")
    conf = render_controller_conf(_state(text))
    assert conf.gateways and "split_clients" in conf.text and "map $http_x_canary" in conf.text
    (tmp_path / "nginx.conf").write_text(conf.text)
    (tmp_path / "tmp").mkdir()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    out = subprocess.run([nginx, "-t", "-q", "-p", str(tmp_path), "-c", "nginx.conf", "-e", "stderr"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr + conf.text
