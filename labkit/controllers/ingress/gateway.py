"""Which backend answers an HTTP request, for Gateway API Gateways and HTTPRoutes.

Why Gateway API succeeds Ingress (the points the course makes)
----------------------------------------------------------------
1. Role separation.  One Ingress object mixes what the platform team owns
   (the entry point, its ports, TLS) with what an application team owns (its
   paths). Gateway API splits them: a GatewayClass (the infrastructure
   provider), a Gateway (the cluster operator: listeners, ports, which
   namespaces may attach) and HTTPRoutes (application teams: hosts, paths,
   backends), each with its own RBAC. A team attaches a route to a shared
   Gateway only where the Gateway's allowedRoutes lets it.
2. Portable features instead of annotations.  Ingress standardises host and
   path only; everything else (canaries, header routing, rewrites, timeouts)
   lives in controller-specific annotations such as
   nginx.ingress.kubernetes.io/canary-weight, which mean nothing to another
   controller. Gateway API puts these in the spec, with conformance tests, so
   the same HTTPRoute means the same thing on every implementation.
3. Header (and query, method) matches.  A rule can require `X-Canary: true`
   or `?version=2`; Ingress cannot express this at all.
4. Weights.  backendRefs carry weights, so a canary split (90/10) is two
   lines of YAML, not a second Ingress with annotations.
5. Precise semantics.  Precedence between overlapping rules is specified
   (below), a wildcard hostname and a path prefix mean one thing, and a route
   that cannot attach says why in its status instead of silently doing nothing.

What this module implements (gateway.networking.k8s.io/v1)
-----------------------------------------------------------
Listener.  HTTP listeners on the request's port; a listener with a hostname
only takes requests for that host. A route attaches to a listener when one of
its parentRefs names the Gateway (namespace defaulting to the route's own;
sectionName, when given, naming the listener; port, when given, equal), the
listener admits the route's namespace (allowedRoutes.namespaces.from: Same
by default, All, or Selector on the Namespace's labels), and their hostnames
intersect. Among listeners that take the host, the most specific hostname
wins (exact, then the longest wildcard, then none).
Hostnames.  Compared case-insensitively, the port ignored. "*.example.com"
matches one or MORE labels (a.example.com and a.b.example.com, not
example.com) -- wider than Ingress's one-label wildcard. A route without
hostnames takes every host its listener takes.
Matches.  Within a rule, the matches are OR'ed; within a match, path,
headers, query parameters and method are AND'ed. PathPrefix is element-wise
("/foo" matches /foo, /foo/, /foo/bar, not /foobar; a trailing slash in the
value is ignored); Exact is exact. Header names are case-insensitive, values
exact. The query string is not part of the path. A rule with no matches
matches PathPrefix /.
Precedence (the spec's order, continuing on ties): the route whose matching
hostname has the most characters not counting a wildcard, then the most
characters; then an Exact path; the longest PathPrefix; a method match; the
most header matches; the most query matches; then the older route (the order
given stands for creationTimestamp); then "namespace/name" alphabetically;
then the first rule, and the first match, in list order.
Backends.  The chosen rule's backendRefs share the traffic in proportion to
their weights, drawn from the random.Random passed in. A weight of 0 takes
nothing. With no backendRefs, or every weight 0, the request gets 500. A
backendRef to another namespace needs a ReferenceGrant, which the lab does
not model: it is invalid and its share gets 500, as is a backendRef to a
Service (or Service port) that the `services` given do not have.
No attached route matches: 404.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence
from urllib.parse import parse_qsl

from labkit.controllers.ingress.routing import normalize_host, normalize_path
from labkit.model.gateway import (
    GROUP, Gateway, HTTPBackendRef, HTTPRoute, HTTPRouteMatch, Listener,
)
from labkit.model.objects import Namespace, Service, ref
from labkit.model.selectors import selector_matches


@dataclass(frozen=True)
class HTTPRequest:
    """One request as the Gateway sees it."""

    host: Optional[str]
    path: str  # may carry a query string
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    port: int = 80

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass(frozen=True)
class GatewayRouteResult:
    """What the Gateway does with one request."""

    status: int  # 200, 404 (no route), 500 (nothing valid to forward to)
    backend: Optional[str]  # "SERVICE:PORT"
    namespace: str = ""  # the backend Service's namespace
    route: str = ""  # "HTTPRoute default/shop"
    rule: int = -1  # index into spec.rules
    match: int = -1  # index into the rule's matches
    listener: str = ""
    reason: str = ""  # for 404/500: why, for a learner

    def to_json(self) -> dict:
        return {"backend": self.backend, "status": self.status, "route": self.route or None,
                "rule": self.rule if self.rule >= 0 else None}


# --- hostnames ---------------------------------------------------------------------


def hostname_matches(pattern: str, host: str) -> bool:
    """Gateway API hostname matching: "*.example.com" covers one or more labels."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def _intersects(listener_host: str, route_host: str) -> bool:
    """Can one request host match both?"""
    if not listener_host or not route_host:
        return True
    return hostname_matches(listener_host, route_host.replace("*", "x", 1)) or \
        hostname_matches(route_host, listener_host.replace("*", "x", 1))


def _host_score(pattern: str) -> tuple[int, int]:
    """(characters not counting a wildcard, characters): bigger is more specific."""
    if not pattern:
        return (0, 0)
    return (0, len(pattern)) if pattern.startswith("*.") else (len(pattern), len(pattern))


# --- attachment --------------------------------------------------------------------


def _admits(gw: Gateway, listener: Listener, route: HTTPRoute,
            namespaces: Mapping[str, Namespace]) -> bool:
    if listener.allowed_from == "All":
        return True
    if listener.allowed_from == "Same":
        return route.meta.namespace == gw.meta.namespace
    ns = namespaces.get(route.meta.namespace)
    labels = dict(ns.meta.labels) if ns else {}
    labels.setdefault("kubernetes.io/metadata.name", route.meta.namespace)
    return listener.allowed_selector is not None and selector_matches(listener.allowed_selector, labels)


def attached(gw: Gateway, listener: Listener, route: HTTPRoute,
             namespaces: Mapping[str, Namespace] = {}) -> bool:
    """Does the route attach to this listener of this Gateway?"""
    if listener.protocol != "HTTP":
        return False
    named = any(p.group == GROUP and p.kind == "Gateway" and p.name == gw.meta.name
                and (p.namespace or route.meta.namespace) == gw.meta.namespace
                and p.section_name in ("", listener.name) and p.port in (0, listener.port)
                for p in route.parent_refs)
    if not named or not _admits(gw, listener, route, namespaces):
        return False
    return not route.hostnames or any(_intersects(listener.hostname, h) for h in route.hostnames)


def select_listener(gw: Gateway, host: str, port: int) -> Optional[Listener]:
    """The most specific HTTP listener on `port` that takes `host`."""
    fits = [l for l in gw.listeners if l.protocol == "HTTP" and l.port == port
            and (not l.hostname or (host and hostname_matches(l.hostname, host)))]
    return max(fits, key=lambda l: _host_score(l.hostname), default=None)


# --- matching ----------------------------------------------------------------------


def path_matches(kind: str, value: str, path: str) -> bool:
    if kind == "Exact":
        return path == value
    prefix = value.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def match_matches(m: HTTPRouteMatch, req: HTTPRequest, path: str, query: Sequence[tuple[str, str]]) -> bool:
    if not path_matches(m.path.type, m.path.value, path):
        return False
    if m.method and m.method != req.method:
        return False
    if any(req.header(h.name) != h.value for h in m.headers):
        return False
    params = {}
    for k, v in query:
        params.setdefault(k, v)  # the first value counts
    return all(params.get(q.name) == q.value for q in m.query_params)


def _match_key(m: HTTPRouteMatch) -> tuple:
    """Smaller sorts first: the spec's precedence within matching hosts."""
    exact = m.path.type == "Exact"
    return (not exact, -len(m.path.value) if not exact else 0, not m.method,
            -len(m.headers), -len(m.query_params))


# --- backends ----------------------------------------------------------------------


def _invalid(ref_: HTTPBackendRef, route: HTTPRoute, services: Optional[Mapping]) -> str:
    ns = ref_.namespace or route.meta.namespace
    if ns != route.meta.namespace:
        return f"{ref_.name} is in namespace {ns}: a cross-namespace backendRef needs a ReferenceGrant"
    if services is None:
        return ""
    svc = services.get((ns, ref_.name))
    if svc is None:
        return f"Service {ns}/{ref_.name} does not exist"
    if not any(p.port == ref_.port for p in svc.ports):
        return f"Service {ns}/{ref_.name} has no port {ref_.port}"
    return ""


def pick_backend(refs: Sequence[HTTPBackendRef], rng: random.Random) -> Optional[HTTPBackendRef]:
    """One backendRef, chosen in proportion to the weights; None if they are all 0."""
    total = sum(r.weight for r in refs)
    if total <= 0:
        return None
    x = rng.randrange(total)
    for r in refs:
        if x < r.weight:
            return r
        x -= r.weight
    raise AssertionError("unreachable: x < total")


# --- routing one request -----------------------------------------------------------


def ranked_candidates(gateway: Gateway, listener: Listener, routes: Iterable[HTTPRoute], host: str,
                      path: str, ns_map: Mapping[str, Namespace] = {}) -> list:
    """Every (key, route, rule, match) whose hostname and path take the request, best first.

    Headers, query parameters and method are not looked at: the first entry
    whose other conditions hold is the winner (the lab's nginx renders the
    list in this order).
    """
    candidates = []
    for order, route in enumerate(routes):
        if not attached(gateway, listener, route, ns_map):
            continue
        names = [h for h in route.hostnames if _intersects(listener.hostname, h)] or [""]
        hits = [h for h in names if not h or (host and hostname_matches(h, host))]
        if not hits:
            continue
        best_host = max(_host_score(h) for h in hits)
        for r, rule in enumerate(route.rules):
            for i, m in enumerate(rule.matches):
                if path_matches(m.path.type, m.path.value, path):
                    key = (-best_host[0], -best_host[1]) + _match_key(m) + \
                        (order, f"{route.meta.namespace}/{route.meta.name}", r, i)
                    candidates.append((key, route, r, i))
    return sorted(candidates, key=lambda c: c[0])


def route_http(gateway: Gateway, routes: Iterable[HTTPRoute], request: HTTPRequest,
               rng: random.Random, services: Optional[Iterable[Service]] = None,
               namespaces: Iterable[Namespace] = ()) -> GatewayRouteResult:
    """The answer of `gateway` to one request; routes are given oldest first.

    services, when given, lets the lab find backendRefs to missing Services
    (500); without it every same-namespace backendRef is taken as valid.
    """
    host = normalize_host(request.host)
    listener = select_listener(gateway, host, request.port)
    if listener is None:
        return GatewayRouteResult(404, None, reason=f"no HTTP listener on port {request.port} takes "
                                  f"host {host or '(none)'}")
    path = normalize_path(request.path)
    if path is None:
        return GatewayRouteResult(400, None, listener=listener.name, reason="the path is not valid")
    query = parse_qsl(request.path.split("?", 1)[1], keep_blank_values=True) if "?" in request.path else []
    ns_map = {n.meta.name: n for n in namespaces}
    svc_map = {(s.meta.namespace, s.meta.name): s for s in services} if services is not None else None
    candidates = [c for c in ranked_candidates(gateway, listener, routes, host, path, ns_map)
                  if match_matches(c[1].rules[c[2]].matches[c[3]], request, path, query)]
    if not candidates:
        return GatewayRouteResult(404, None, listener=listener.name,
                                  reason="no attached HTTPRoute rule matches this request")
    _, route, r, i = min(candidates, key=lambda c: c[0])
    rule = route.rules[r]
    where = dict(route=ref(route), rule=r, match=i, listener=listener.name)
    chosen = pick_backend(rule.backend_refs, rng)
    if chosen is None:
        why = "the rule has no backendRefs" if not rule.backend_refs else "every backendRef has weight 0"
        return GatewayRouteResult(500, None, reason=why, **where)
    bad = _invalid(chosen, route, svc_map)
    if bad:
        return GatewayRouteResult(500, None, reason=bad, **where)
    return GatewayRouteResult(200, f"{chosen.name}:{chosen.port}", route.meta.namespace, **where)


def chi_square(observed: Mapping[str, int], weights: Mapping[str, int]) -> float:
    """Pearson's statistic of observed counts against the split the weights promise."""
    n = sum(observed.values())
    total = sum(weights.values())
    stat = 0.0
    for name, w in weights.items():
        if w == 0:
            continue
        expected = n * w / total
        stat += (observed.get(name, 0) - expected) ** 2 / expected
    return stat


# Critical values of the chi-square distribution at p = 0.05, by degrees of freedom.
CHI_SQUARE_95 = {1: 3.841, 2: 5.991, 3: 7.815, 4: 9.488, 5: 11.070, 6: 12.592, 7: 14.067,
                 8: 15.507, 9: 16.919, 10: 18.307}
