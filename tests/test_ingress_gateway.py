"""Gateway API: the model (labkit.model.gateway) and the routing (controllers/ingress/gateway.py)."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from labkit.controllers.ingress.gateway import (
    CHI_SQUARE_95, HTTPRequest, chi_square, hostname_matches, pick_backend, route_http,
)
from labkit.errors import ManifestError
from labkit.model.gateway import (
    HTTPBackendRef, HTTPPathMatch, HTTPRoute, HTTPRouteMatch, HTTPRouteRule, ParentReference,
    load_gateway_manifests, parse_gateway_object,
)
from labkit.model.objects import ObjectMeta, Service, ServicePort

CANARY = Path(__file__).parent / "ingress_conformance" / "gateway_canary.yaml"


@pytest.fixture(scope="module")
def lab():
    objs = load_gateway_manifests(CANARY.read_text(), str(CANARY))
    return ([o for o in objs if o.kind == "Gateway"][0], [o for o in objs if o.kind == "HTTPRoute"],
            [o for o in objs if o.kind == "Namespace"])


def ask(lab, host, path, headers=None, method="GET", port=80):
    gw, routes, nss = lab
    return route_http(gw, routes, HTTPRequest(host, path, headers or {}, method, port),
                      random.Random(7), namespaces=nss)


# --- the model ---------------------------------------------------------------------------


def test_defaults_applied(lab):
    gw, routes, _ = lab
    assert [(l.name, l.port, l.hostname, l.allowed_from) for l in gw.listeners] == \
        [("http", 80, "", "Selector"), ("admin", 80, "admin.example.com", "Same")]
    storefront = routes[0]
    assert storefront.parent_refs == (ParentReference("lab-gateway", "infra", "http"),)
    assert storefront.rules[4].matches == (HTTPRouteMatch(HTTPPathMatch("PathPrefix", "/")),)
    assert storefront.rules[1].backend_refs == (HTTPBackendRef("api-v1", 80, 90), HTTPBackendRef("api-v2", 80, 10))
    assert storefront.rules[0].backend_refs[0].weight == 1


def test_problems_are_collected_and_named():
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {
            "parentRefs": [{"nme": "lab"}],
            "rules": [{
                "matches": [{"path": {"type": "RegularExpression", "value": "api"}, "method": "FETCH",
                             "headers": [{"name": "bad header", "value": "x"}]}],
                "filters": [{"type": "RequestRedirect"}],
                "backendRefs": [{"name": "web", "weight": -1}, {"name": "b", "kind": "Bucket", "port": 1}],
            }],
        },
    }
    with pytest.raises(ManifestError) as e:
        parse_gateway_object(doc, "route.yaml")
    assert str(e.value).splitlines() == [
        "route.yaml: 11 problems found:",
        "  - HTTPRoute default/shop: apiVersion: HTTPRoute is read as apiVersion gateway.networking.k8s.io/v1, "
        "not \"gateway.networking.k8s.io/v1beta1\" (fix: set apiVersion: gateway.networking.k8s.io/v1)",
        "  - HTTPRoute default/shop: spec.parentRefs[0].nme: unknown field \"spec.parentRefs[0].nme\" (fix: did "
        "you mean \"name\"? the fields of spec.parentRefs[0] are: group, kind, name, namespace, port, sectionName)",
        "  - HTTPRoute default/shop: spec.parentRefs[0].name: required field is missing (fix: add name "
        "(name: lab-gateway) under spec.parentRefs[0])",
        "  - HTTPRoute default/shop: spec.rules[0].matches[0].path.value: must be an absolute path (starting "
        "with /), got \"api\" (fix: write it as \"/api\")",
        "  - HTTPRoute default/shop: spec.rules[0].matches[0].path.type: RegularExpression matches are not "
        "simulated by the lab (their precedence is implementation-specific) (fix: use Exact or PathPrefix)",
        "  - HTTPRoute default/shop: spec.rules[0].matches[0].method: unsupported method \"FETCH\" (fix: use "
        "one of: GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)",
        "  - HTTPRoute default/shop: spec.rules[0].matches[0].headers[0].name: \"bad header\" is not an HTTP "
        "header name (letters, digits and !#$%&'*+-.^_`|~) (fix: e.g. \"X-Canary\")",
        "  - HTTPRoute default/shop: spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000, got -1 "
        "(fix: weights are relative: e.g. 90 and 10 for a 10% canary)",
        "  - HTTPRoute default/shop: spec.rules[0].backendRefs[0].port: is required when the backendRef is a "
        "Service (fix: add port: 80 (the Service's port))",
        "  - HTTPRoute default/shop: spec.rules[0].backendRefs[1].kind: backendRefs to a \"Bucket\" are not "
        "simulated by the lab (fix: point the backendRef at a Service (kind: Service))",
        "  - HTTPRoute default/shop: spec.rules[0].filters: filters are not simulated by the lab (fix: remove "
        "filters (the lab routes by matches and weights only))",
    ]


def test_gateway_problems():
    text = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: lab, namespace: infra}
spec:
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}
  - {name: http, port: 70000, protocol: QUIC}
"""
    with pytest.raises(ManifestError) as e:
        load_gateway_manifests(text, "gw.yaml")
    assert [f"{p.field}: {p.message}" for p in e.value.problems] == [
        "spec.listeners[0].allowedRoutes.namespaces.selector: is required when from is Selector",
        "spec.listeners[1].port: must be between 1 and 65535, got 70000",
        'spec.listeners[1].protocol: unsupported value "QUIC"',
        "spec.gatewayClassName: required field is missing",
        'spec.listeners[1].name: duplicate listener name "http" (also used by listeners[0])',
    ]
    assert {p.obj for p in e.value.problems} == {"Gateway infra/lab"}


def test_other_kinds_go_through_the_loader():
    text = CANARY.read_text() + "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api-v1, namespace: shop}\n" \
        "spec: {ports: [{port: 80}], selector: {app: api}}\n"
    kinds = [o.kind for o in load_gateway_manifests(text)]
    assert kinds == ["Namespace", "Gateway", "HTTPRoute", "HTTPRoute", "HTTPRoute", "Service"]


# --- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize("pattern,host,want", [
    ("*.example.com", "a.example.com", True), ("*.example.com", "a.b.example.com", True),
    ("*.example.com", "example.com", False), ("a.example.com", "a.example.com", True),
    ("a.example.com", "b.example.com", False),
])
def test_gateway_wildcards_cover_one_or_more_labels(pattern, host, want):
    assert hostname_matches(pattern, host) is want


@pytest.mark.parametrize("host,path,headers,method,want", [
    # header match beats the weighted rule for the same prefix
    ("shop.example.com", "/api/x", {"X-Canary": "always"}, "GET", (200, "api-v2:80", "HTTPRoute shop/storefront", 0)),
    ("shop.example.com", "/api/x", {"x-canary": "always"}, "GET", (200, "api-v2:80", "HTTPRoute shop/storefront", 0)),
    # a header value is exact
    ("shop.example.com", "/api/x", {"X-Canary": "Always"}, "GET", (200, None, "HTTPRoute shop/storefront", 1)),
    # Exact beats every PathPrefix
    ("shop.example.com", "/api/health", {"X-Canary": "always"}, "GET", (200, "health:8080", "HTTPRoute shop/storefront", 2)),
    # PathPrefix is element-wise, so /apix falls to the default rule; POST picks the method match
    ("shop.example.com", "/apix", {}, "GET", (200, "web:80", "HTTPRoute shop/storefront", 4)),
    ("shop.example.com", "/apix", {}, "POST", (200, "writer:80", "HTTPRoute shop/storefront", 3)),
    # the longer prefix beats the method match
    ("shop.example.com", "/api/x", {}, "POST", (200, None, "HTTPRoute shop/storefront", 1)),
    # the route with the more specific hostname wins, query matches count
    ("beta.shop.example.com", "/x?version=3", {}, "GET", (200, "web-v3:80", "HTTPRoute shop/beta", 0)),
    ("beta.shop.example.com", "/x?version=2", {}, "GET", (500, None, "HTTPRoute shop/beta", 1)),
    # the wildcard covers two labels
    ("a.b.shop.example.com", "/", {}, "GET", (200, "web:80", "HTTPRoute shop/storefront", 4)),
    # a namespace the listener does not admit: its route is ignored
    ("shop.example.com", "/api", {}, "GET", (200, None, "HTTPRoute shop/storefront", 1)),
    ("admin.example.com", "/", {}, "GET", (404, None, "", -1)),
    ("nope.test", "/", {}, "GET", (404, None, "", -1)),
    ("shop.example.com", "/", {}, "GET", (200, "web:80", "HTTPRoute shop/storefront", 4)),
    ("shop.example.com", "/", {}, "GET", (200, "web:80", "HTTPRoute shop/storefront", 4)),
])
def test_route_table(lab, host, path, headers, method, want):
    got = ask(lab, host, path, headers, method)
    status, backend, route, rule = want
    assert (got.status, got.route, got.rule) == (status, route, rule), got
    if backend:
        assert got.backend == backend
    elif status == 200:
        assert got.backend in ("api-v1:80", "api-v2:80")


def test_no_listener_on_the_port(lab):
    got = ask(lab, "shop.example.com", "/", port=8080)
    assert (got.status, got.reason) == (404, "no HTTP listener on port 8080 takes host shop.example.com")


def test_invalid_backends_get_500():
    route = HTTPRoute(ObjectMeta("r", "default"), (ParentReference("gw"),), (), (
        HTTPRouteRule(backend_refs=(HTTPBackendRef("web", 80), HTTPBackendRef("other", 80, 1, "team-b"))),))
    from labkit.model.gateway import Gateway, Listener
    gw = Gateway(ObjectMeta("gw", "default"), "lab", (Listener("http", 80, "HTTP"),))
    services = [Service(ObjectMeta("web", "default"), (ServicePort(8080),))]
    rng = random.Random(3)
    reasons = Counter(route_http(gw, [route], HTTPRequest("h", "/"), rng, services).reason for _ in range(200))
    assert set(reasons) == {"Service default/web has no port 80",
                            "other is in namespace team-b: a cross-namespace backendRef needs a ReferenceGrant"}


def test_weighted_split_passes_a_chi_square_test(lab):
    gw, routes, nss = lab
    rng = random.Random(2024)
    counts = Counter(route_http(gw, routes, HTTPRequest("shop.example.com", "/api/items"), rng,
                                namespaces=nss).backend for _ in range(1000))
    assert set(counts) == {"api-v1:80", "api-v2:80"}
    stat = chi_square(counts, {"api-v1:80": 90, "api-v2:80": 10})
    assert stat < CHI_SQUARE_95[1], (counts, stat)


def test_three_way_split_and_zero_weight():
    refs = (HTTPBackendRef("a", 80, 70), HTTPBackendRef("b", 80, 20), HTTPBackendRef("c", 80, 10),
            HTTPBackendRef("never", 80, 0))
    rng = random.Random(99)
    counts = Counter(pick_backend(refs, rng).name for _ in range(1000))
    assert "never" not in counts
    assert chi_square(counts, {"a": 70, "b": 20, "c": 10}) < CHI_SQUARE_95[2]
    assert pick_backend((HTTPBackendRef("z", 80, 0),), rng) is None


def test_the_split_is_seeded():
    refs = (HTTPBackendRef("a", 80, 50), HTTPBackendRef("b", 80, 50))
    first = [pick_backend(refs, random.Random(5)).name for _ in range(1)]
    runs = [[pick_backend(refs, r).name for _ in range(20)] for r in (random.Random(5), random.Random(5))]
    assert runs[0] == runs[1] and first[0] == runs[0][0]


def test_chi_square_statistic_is_exact():
    assert chi_square({"a": 880, "b": 120}, {"a": 90, "b": 10}) == pytest.approx(20 ** 2 / 900 + 20 ** 2 / 100)
    assert chi_square({"a": 880, "b": 120}, {"a": 90, "b": 10}) > CHI_SQUARE_95[1]  # the test can fail
