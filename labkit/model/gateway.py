"""Gateway API objects (gateway.networking.k8s.io/v1 Gateway and HTTPRoute) as plain data.

The field tables use the same schema nodes as every other kind (schema.py),
so a Gateway manifest is checked the way a Service is: unknown fields,
types, required fields and the API's own rules, every problem collected and
named by object and field. The API server's defaults are applied (a rule
without matches matches PathPrefix /, a backendRef weighs 1, a listener
admits routes from its own namespace).

What the lab does not simulate is refused with a sentence rather than
ignored: RegularExpression path and header matches (their precedence is
implementation-specific), filters, and backendRefs to anything but a Service.

To register the kinds with the loader: KINDS.update(GATEWAY_KINDS) in
labkit/model/schema.py. Until then load_gateway_manifests() reads a stream
holding these kinds and any the loader knows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from labkit.errors import ManifestError, Problem
from labkit.model import validators as v
from labkit.model.objects import LabelSelector, ObjectMeta
from labkit.model.schema import (
    IGNORED, INT, LABEL_SELECTOR, PORT, STR, F, Kind, ListOf, Obj, Report, Walker, build, enum,
    ignore, join, make_meta, metadata, printable, string,
)

API_VERSION = "gateway.networking.k8s.io/v1"
GROUP = "gateway.networking.k8s.io"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


# --- the objects --------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """One port (and optionally one hostname) a Gateway listens on."""

    name: str
    port: int
    protocol: str  # HTTP, HTTPS, TLS, TCP, UDP
    hostname: str = ""  # "" matches every host
    allowed_from: str = "Same"  # allowedRoutes.namespaces.from: Same, All, Selector
    allowed_selector: Optional[LabelSelector] = None


@dataclass(frozen=True)
class Gateway:
    meta: ObjectMeta
    gateway_class_name: str
    listeners: tuple[Listener, ...]
    kind = "Gateway"


@dataclass(frozen=True)
class ParentReference:
    """The Gateway (and optionally which listener) a route attaches to."""

    name: str
    namespace: str = ""  # "" means the route's own namespace
    section_name: str = ""  # a listener name; "" means every listener
    port: int = 0  # 0 means any port
    group: str = GROUP
    kind: str = "Gateway"


@dataclass(frozen=True)
class HTTPPathMatch:
    type: str = "PathPrefix"  # PathPrefix or Exact
    value: str = "/"


@dataclass(frozen=True)
class HTTPHeaderMatch:
    name: str  # compared case-insensitively
    value: str  # compared exactly
    type: str = "Exact"


@dataclass(frozen=True)
class HTTPQueryParamMatch:
    name: str  # compared exactly
    value: str
    type: str = "Exact"


@dataclass(frozen=True)
class HTTPRouteMatch:
    """Every condition given must hold (AND)."""

    path: HTTPPathMatch = HTTPPathMatch()
    headers: tuple[HTTPHeaderMatch, ...] = ()
    query_params: tuple[HTTPQueryParamMatch, ...] = ()
    method: str = ""  # "" means any method


@dataclass(frozen=True)
class HTTPBackendRef:
    name: str
    port: int
    weight: int = 1
    namespace: str = ""  # "" means the route's own namespace


@dataclass(frozen=True)
class HTTPRouteRule:
    """Any one of the matches (OR) sends the request to the weighted backendRefs."""

    matches: tuple[HTTPRouteMatch, ...] = (HTTPRouteMatch(),)
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class HTTPRoute:
    meta: ObjectMeta
    parent_refs: tuple[ParentReference, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = (HTTPRouteRule(),)
    kind = "HTTPRoute"


# --- the field tables ----------------------------------------------------------------


def _check_header_name(value: str) -> v.Verdict:
    if not value or len(value) > 256 or not _HEADER_NAME.match(value):
        return (f"{v.quote(value)} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
                'e.g. "X-Canary"')
    return None


def _check_path_value(value: str) -> v.Verdict:
    if not value.startswith("/"):
        return (f"must be an absolute path (starting with /), got {v.quote(value)}",
                f'write it as "/{value.lstrip("/")}"')
    if any(p in value for p in ("//", "/./", "/../", "%2f", "%2F", "#")) or value.endswith(("/..", "/.")):
        return (f"{v.quote(value)} may not contain '//', '/./', '/../', '%2f' or '#', nor end in "
                f"'/.' or '/..'", "write the path in its plain form, e.g. /api")
    return None


def _check_method(value: str) -> v.Verdict:
    if value not in HTTP_METHODS:
        return (f"unsupported method {v.quote(value)}", f"use one of: {', '.join(HTTP_METHODS)}")
    return None


def _refuse_regex(d: dict, at: str, report: Report) -> None:
    if d.get("type") == "RegularExpression":
        report(join(at, "type"), "RegularExpression matches are not simulated by the lab (their "
               "precedence is implementation-specific)", "use Exact or PathPrefix")


def _weight_rule(d: dict, at: str, report: Report) -> None:
    w = d.get("weight")
    if isinstance(w, int) and not 0 <= w <= 1_000_000:
        report(join(at, "weight"), f"must be between 0 and 1000000, got {w}",
               "weights are relative: e.g. 90 and 10 for a 10% canary")


def _backend_ref_rule(d: dict, at: str, report: Report) -> None:
    _weight_rule(d, at, report)
    if "filters" in d:
        report(join(at, "filters"), "filters are not simulated by the lab", "remove filters")
    kind, group = d.get("kind", "Service"), d.get("group", "")
    if kind != "Service" or group not in ("", "core"):
        report(join(at, "kind"), f"backendRefs to a {printable(str(kind))} are not simulated by the "
               f"lab", "point the backendRef at a Service (kind: Service)")
    elif "port" not in d:
        report(join(at, "port"), "is required when the backendRef is a Service",
               "add port: 80 (the Service's port)")


def _rule_rule(d: dict, at: str, report: Report) -> None:
    if "filters" in d:
        report(join(at, "filters"), "filters are not simulated by the lab",
               "remove filters (the lab routes by matches and weights only)")


def _unique_listeners(d: dict, at: str, report: Report) -> None:
    seen: dict = {}
    for i, item in enumerate(d.get("listeners") or ()):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        if item["name"] in seen:
            report(f"{join(at, 'listeners')}[{i}].name", f"duplicate listener name "
                   f"{printable(item['name'])} (also used by listeners[{seen[item['name']]}])",
                   "give each listener a different name")
        seen.setdefault(item["name"], i)


def _listener_rule(d: dict, at: str, report: Report) -> None:
    ns = d.get("allowed_routes", {}).get("namespaces", {}) if isinstance(d.get("allowed_routes"), dict) else {}
    if isinstance(ns, dict) and ns.get("from_") == "Selector" and "selector" not in ns:
        report(join(at, "allowedRoutes.namespaces.selector"), "is required when from is Selector",
               "add selector: {matchLabels: {team: web}}, or use from: All")


def _make_listener(d: dict) -> Listener:
    ns = d.get("allowed_routes", {}).get("namespaces", {})
    return Listener(d["name"], d["port"], d["protocol"], d.get("hostname", ""),
                    ns.get("from_", "Same"), ns.get("selector"))


LISTENER = Obj(
    (F("name", string(v.check_dns1123_subdomain), required=True, example="name: http"),
     F("hostname", string(v.check_wildcard_host)),
     F("port", PORT, required=True, example="port: 80"),
     F("protocol", enum("HTTP", "HTTPS", "TLS", "TCP", "UDP"), required=True, example="protocol: HTTP"),
     F("allowedRoutes", Obj(
         (F("namespaces", Obj((F("from", enum("All", "Same", "Selector")),
                               F("selector", LABEL_SELECTOR)))),
          F("kinds", IGNORED)))),
     F("tls", IGNORED)),
    rules=(_listener_rule,), make=_make_listener)

GATEWAY = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", Obj(
         (F("gatewayClassName", string(v.check_dns1123_subdomain), required=True,
            example="gatewayClassName: lab"),
          F("listeners", ListOf(LISTENER, max_items=64), required=True,
            example="listeners: [{name: http, port: 80, protocol: HTTP}]"))
         + ignore("addresses", "infrastructure", "backendTLS"),
         rules=(_unique_listeners,)), required=True, example="spec: {gatewayClassName: lab, listeners: [...]}"),
     F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: Gateway(make_meta(d.get("metadata", {}), True), d["spec"]["gateway_class_name"],
                           d["spec"]["listeners"]))

PARENT_REF = Obj(
    (F("group", STR), F("kind", STR),
     F("namespace", string(v.check_dns1123_label)),
     F("name", string(v.check_dns1123_subdomain), required=True, example="name: lab-gateway"),
     F("sectionName", string(v.check_dns1123_subdomain)),
     F("port", PORT)),
    make=lambda d: ParentReference(d["name"], d.get("namespace", ""), d.get("section_name", ""),
                                   d.get("port", 0), d.get("group", GROUP), d.get("kind", "Gateway")))

PATH_MATCH = Obj(
    (F("type", enum("PathPrefix", "Exact", "RegularExpression")),
     F("value", string(_check_path_value))),
    rules=(_refuse_regex,),
    make=lambda d: HTTPPathMatch(d.get("type", "PathPrefix"), d.get("value", "/")))

HEADER_MATCH = Obj(
    (F("type", enum("Exact", "RegularExpression")),
     F("name", string(_check_header_name), required=True, example="name: X-Canary"),
     F("value", STR, required=True, example='value: "true"')),
    rules=(_refuse_regex,),
    make=lambda d: HTTPHeaderMatch(d["name"], d["value"], d.get("type", "Exact")))

QUERY_MATCH = Obj(
    (F("type", enum("Exact", "RegularExpression")),
     F("name", string(_check_header_name), required=True, example="name: version"),
     F("value", STR, required=True, example='value: "2"')),
    rules=(_refuse_regex,),
    make=lambda d: HTTPQueryParamMatch(d["name"], d["value"], d.get("type", "Exact")))

ROUTE_MATCH = Obj(
    (F("path", PATH_MATCH),
     F("headers", ListOf(HEADER_MATCH, max_items=16)),
     F("queryParams", ListOf(QUERY_MATCH, max_items=16)),
     F("method", string(_check_method))),
    make=lambda d: HTTPRouteMatch(d.get("path", HTTPPathMatch()), d.get("headers", ()),
                                  d.get("query_params", ()), d.get("method", "")))

BACKEND_REF = Obj(
    (F("group", STR), F("kind", STR),
     F("name", string(v.check_dns1035_label), required=True, example="name: web"),
     F("namespace", string(v.check_dns1123_label)),
     F("port", PORT),
     F("weight", INT),
     F("filters", ListOf(IGNORED))),
    rules=(_backend_ref_rule,),
    make=lambda d: HTTPBackendRef(d["name"], d.get("port", 0), d.get("weight", 1), d.get("namespace", "")))

ROUTE_RULE = Obj(
    (F("name", string(v.check_dns1123_label)),
     F("matches", ListOf(ROUTE_MATCH, max_items=64)),
     F("backendRefs", ListOf(BACKEND_REF, max_items=16)),
     F("filters", ListOf(IGNORED)))  # kept so that _rule_rule can refuse it
    + ignore("timeouts", "retry", "sessionPersistence"),
    rules=(_rule_rule,),
    make=lambda d: HTTPRouteRule(d.get("matches") or (HTTPRouteMatch(),), d.get("backend_refs", ()),
                                 d.get("name", "")))

HTTP_ROUTE = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", Obj(
         (F("parentRefs", ListOf(PARENT_REF, max_items=32)),
          F("hostnames", ListOf(string(v.check_wildcard_host), max_items=16)),
          F("rules", ListOf(ROUTE_RULE, max_items=16)))),
       required=True, example="spec: {parentRefs: [...], rules: [...]}"),
     F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: HTTPRoute(make_meta(d.get("metadata", {}), True), d["spec"].get("parent_refs", ()),
                             d["spec"].get("hostnames", ()),
                             d["spec"].get("rules") or (HTTPRouteRule(),)))

GATEWAY_KINDS: dict[str, Kind] = {
    "Gateway": Kind(API_VERSION, True, GATEWAY),
    "HTTPRoute": Kind(API_VERSION, True, HTTP_ROUTE),
}


# --- parsing -------------------------------------------------------------------------


def _name(doc: dict, label: str) -> str:
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta["name"]:
        ns = meta.get("namespace")
        ns = ns if isinstance(ns, str) and ns else "default"
        return f"{doc['kind']} {ns}/{meta['name']}"
    return label


def check_gateway_object(doc: Any, label: str = "document 1") -> tuple[Any, list[Problem]]:
    """(the Gateway or HTTPRoute, []) or (None, every problem) for one decoded document."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in GATEWAY_KINDS:
        return None, [Problem(label, "kind", f"expected Gateway or HTTPRoute, got {printable(str(kind))}",
                              "parse other kinds with labkit.model.load_manifests")]
    obj = _name(doc, label)
    problems: list[Problem] = []
    api = doc.get("apiVersion")
    if api != API_VERSION:
        problems.append(Problem(obj, "apiVersion", f"{kind} is read as apiVersion {API_VERSION}, not "
                                f"{printable(str(api))}", f"set apiVersion: {API_VERSION}"))
    walker = Walker(obj)
    data = walker.walk(GATEWAY_KINDS[kind].schema, doc, "")
    problems += walker.problems
    if problems:
        return None, problems
    return build(GATEWAY_KINDS[kind].schema, data), []


def parse_gateway_object(doc: Any, source: str = "<manifest>") -> Any:
    """One decoded Gateway or HTTPRoute document; ManifestError with every problem."""
    obj, problems = check_gateway_object(doc)
    if problems:
        raise ManifestError(problems, source)
    return obj


def load_gateway_manifests(text: str, source: str = "<manifest>") -> list:
    """Every object of a YAML stream: Gateway API kinds here, the others by the loader."""
    from labkit.model.load import parse_object, parse_yaml_documents

    out: list = []
    problems: list[Problem] = []
    for doc in parse_yaml_documents(text):
        label = f"document {doc.number}"
        if doc.refused:
            problems.append(Problem(label, "", *doc.refused))
            continue
        if doc.data is None:
            problems += [Problem(label, f, m, x) for f, m, x in doc.issues]
            continue
        if isinstance(doc.data, dict) and doc.data.get("kind") in GATEWAY_KINDS:
            problems += [Problem(label, f, m, x) for f, m, x in doc.issues]
            obj, found = check_gateway_object(doc.data, label)
            problems += found
            if obj is not None and not doc.issues:
                out.append(obj)
            continue
        problems += [Problem(label, f, m, x) for f, m, x in doc.issues]
        try:
            out.append(parse_object(doc.data, source))
        except ManifestError as e:
            problems += [Problem(label if p.obj == "document 1" else p.obj, p.field, p.message, p.fix)
                         for p in e.problems]
    if problems:
        raise ManifestError(problems, source)
    return out
