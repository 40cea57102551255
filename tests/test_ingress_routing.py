"""routing.py: Ingress objects -> routing table -> one request's answer."""
from __future__ import annotations

import pytest

from labkit.controllers.ingress.routing import (
    Backend, compile_ingresses, host_matches, normalize_host, normalize_path, render_routing_table,
    route, route_request,
)
from labkit.errors import ManifestError
from labkit.model.load import load_manifests
from labkit.model.objects import (
    HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressServiceBackend, ObjectMeta,
    ObjectReference,
)


def svc(name: str, port: int | str = 80) -> IngressBackend:
    if isinstance(port, str):
        return IngressBackend(IngressServiceBackend(name, port_name=port))
    return IngressBackend(IngressServiceBackend(name, port_number=port))


def ingress(name: str, *rules: IngressRule, default: IngressBackend | None = None,
            namespace: str = "default") -> Ingress:
    return Ingress(ObjectMeta(name, namespace), default_backend=default, rules=tuple(rules))


def rule(host: str, *paths: tuple[str, str, IngressBackend]) -> IngressRule:
    return IngressRule(host, tuple(HTTPIngressPath(t, b, p) for p, t, b in paths))


@pytest.mark.parametrize("raw,want", [
    ("/", "/"),
    ("/foo", "/foo"),
    ("/foo/", "/foo/"),
    ("/foo?x=1&y=/bar", "/foo"),
    ("/foo#frag", "/foo"),
    ("//foo///bar", "/foo/bar"),
    ("/foo/./bar", "/foo/bar"),
    ("/foo/.", "/foo/"),
    ("/foo/bar/..", "/foo/"),
    ("/foo/../bar", "/bar"),
    ("/fo%6F", "/foo"),
    ("/a%20b", "/a b"),
    ("/..", None),
    ("/../x", None),
    ("foo", None),
    ("/%zz", None),
    ("/%00", None),
])
def test_normalize_path(raw, want):
    assert normalize_path(raw) == want


@pytest.mark.parametrize("raw,want", [
    (None, ""), ("", ""), ("Foo.Bar.COM", "foo.bar.com"), ("foo.bar.com:8080", "foo.bar.com"),
    ("foo.bar.com.", "foo.bar.com"), ("[fd00::1]:80", "[fd00::1]"),
])
def test_normalize_host(raw, want):
    assert normalize_host(raw) == want


@pytest.mark.parametrize("pattern,host,want", [
    ("foo.bar.com", "foo.bar.com", True),
    ("foo.bar.com", "x.foo.bar.com", False),
    ("*.foo.com", "bar.foo.com", True),
    ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False),
    ("*.foo.com", ".foo.com", False),
    ("*.foo.com", "a_b-c.foo.com", True),
])
def test_host_matches(pattern, host, want):
    assert host_matches(pattern, host) is want


def test_table_of_the_path_rules_feature():
    ing = ingress("p",
                  rule("prefix", ("/foo", "Prefix", svc("foo")), ("/aaa/bbb/", "Prefix", svc("ab")),
                       ("/x/", "Exact", svc("xs")), ("/static", "ImplementationSpecific", svc("st", "http"))),
                  rule("", ("/", "Prefix", svc("root"))))
    assert render_routing_table(compile_ingresses([ing])) == """\
server prefix
  location /                        -> 404  (none)
  location = /aaa/bbb               -> ab:80
  location /aaa/bbb/                -> ab:80
  location = /foo                   -> foo:80
  location /foo/                    -> foo:80
  location /static                  -> st:http
  location = /x                     -> 404  (none)
  location = /x/                    -> xs:80
server _ (catch-all)
  location /                        -> root:80
"""


def test_exact_wins_a_tie_whatever_the_order():
    a = ingress("a", rule("h", ("/p", "Prefix", svc("prefix"))))
    b = ingress("b", rule("h", ("/p", "Exact", svc("exact"))))
    for order in ([a, b], [b, a]):
        assert str(route(order, "h", "/p").backend) == "exact:80"
        assert str(route(order, "h", "/p/q").backend) == "prefix:80"


def test_the_oldest_ingress_keeps_a_contested_path():
    a = ingress("a", rule("h", ("/p", "Prefix", svc("first"))))
    b = ingress("b", rule("h", ("/p/", "Prefix", svc("second"))))
    assert str(route([a, b], "h", "/p/x").backend) == "first:80"
    assert str(route([b, a], "h", "/p/x").backend) == "second:80"


def test_longest_match_wins_across_kinds():
    ing = ingress("a", rule("h", ("/a", "Prefix", svc("a")), ("/a/b", "ImplementationSpecific", svc("ab")),
                            ("/a/bc/d", "Exact", svc("abcd"))))
    got = {p: str(route([ing], "h", p).backend) for p in ("/a", "/a/x", "/a/b", "/a/bc", "/a/bc/d", "/a/bc/d/")}
    assert got == {"/a": "a:80", "/a/x": "a:80", "/a/b": "ab:80", "/a/bc": "ab:80",
                   "/a/bc/d": "abcd:80", "/a/bc/d/": "ab:80"}


def test_default_backends():
    with_rules = ingress("a", rule("h", ("/p", "Exact", svc("p"))), default=svc("fallback"))
    other = ingress("b", rule("other", ("/q", "Exact", svc("q"))), namespace="team-b")
    table = compile_ingresses([with_rules, other])
    miss = route_request(table, "h", "/nope")
    assert (miss.status, miss.via, str(miss.backend), miss.source) == \
        (200, "defaultBackend", "fallback:80", "Ingress default/a")
    unknown = route_request(table, "unknown", "/")
    assert (unknown.status, unknown.via, str(unknown.backend)) == (200, "defaultBackend", "fallback:80")
    other_miss = route_request(table, "other", "/nope")
    assert (other_miss.status, other_miss.via, other_miss.backend) == (404, "none", None)


def test_nothing_at_all_is_404():
    got = route([], "h", "/")
    assert (got.status, got.via, got.backend, got.server, got.location) == (404, "none", None, "_", "/")
    assert got.to_json() == {"backend": None, "via": "none", "status": 404}


def test_backend_names_and_namespaces():
    ing = ingress("a", rule("h", ("/n", "Prefix", svc("web", "http")), ("/", "Prefix", svc("web", 8080))),
                  namespace="shop")
    named = route([ing], "h", "/n/1")
    assert named.backend == Backend("shop", "web", "http")
    assert named.backend.key == "shop/web:http"
    assert named.to_json() == {"backend": "web:http", "via": "rule", "status": 200}
    assert route([ing], "h", "/x").backend == Backend("shop", "web", 8080)


def test_a_resource_backend_is_skipped():
    res = IngressBackend(resource=ObjectReference("StorageBucket", "", "assets"))
    ing = ingress("a", rule("h", ("/static", "Prefix", res), ("/", "Prefix", svc("web"))))
    assert str(route([ing], "h", "/static/x").backend) == "web:80"


def test_implementation_specific_slash_redirect():
    ing = ingress("a", rule("h", ("/docs/", "ImplementationSpecific", svc("docs"))))
    got = route([ing], "h", "/docs?x=1")
    assert (got.status, got.via, got.backend, got.redirect_to) == (301, "rule", None, "/docs/")
    assert str(route([ing], "h", "/docs/a").backend) == "docs:80"


def test_bad_path_is_400():
    got = route([ingress("a", default=svc("d"))], "h", "/../x")
    assert (got.status, got.via, got.backend) == (400, "none", None)


def test_paths_the_api_server_refuses():
    ing = ingress("a", rule("h", ("docs", "ImplementationSpecific", svc("d")),
                            ("/a b", "ImplementationSpecific", svc("d"))))
    with pytest.raises(ManifestError) as e:
        compile_ingresses([ing])
    assert str(e.value) == (
        "2 problems found:\n"
        "  - Ingress default/a: spec.rules[0].http.paths[0].path: must be an absolute path (starting "
        "with /), got 'docs' (fix: write it as \"/docs\")\n"
        "  - Ingress default/a: spec.rules[0].http.paths[1].path: '/a b' contains a space or a control "
        "character, which a request path never does (fix: percent-encode it, or remove it)")


def test_loaded_from_yaml_like_the_cli():
    text = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
"""
    got = route(load_manifests(text), "www.example.com:80", "/index.html")
    assert (got.status, str(got.backend), got.server, got.location) == (200, "web:http", "*.example.com", "/")
