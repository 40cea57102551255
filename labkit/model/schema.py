"""The manifest schema as data: field tables per kind, and one walker.

Each kind is a tree of nodes (Obj, ListOf, MapOf, Scalar, IGNORED). One
walker checks a decoded YAML document against it -- types, unknown fields,
required fields, syntax checks and the cross-field rules attached to an Obj --
and collects every problem; a second pass builds the dataclasses of
objects.py from the checked data. Fields that real manifests carry but the
lab does not use are IGNORED: accepted, never read.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from labkit.errors import Problem
from labkit.model import validators as v
from labkit.model.selectors import selector_matches
from labkit.model.objects import (
    Container, ContainerPort, Deployment, Endpoint, EndpointConditions, EndpointPort,
    EndpointSlice, HTTPIngressPath, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressTLS, IPBlock, LabelSelector, LabelSelectorRequirement,
    LoadBalancerIngress, Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicyRule, Node, NodeAddress, ObjectMeta, ObjectReference, Pod, PodCondition,
    PodTemplate, Service, ServicePort,
)

# --- the node types -----------------------------------------------------------


class _Invalid:
    """Stands for a value that failed its check (its problem is already reported)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
_ABSENT: Any = object()

Report = Callable[[str, str, str], None]  # (field path, message, fix)
Rule = Callable[[dict, str, Report], None]  # cross-field rule on a checked Obj


@dataclass(frozen=True, eq=False)
class Scalar:
    type: str  # "string", "integer", "boolean", "int-or-string", "timestamp"
    checks: tuple[v.Check, ...] = ()
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Ignored:
    """A field Kubernetes has and the lab does not use: any value is accepted."""


IGNORED = Ignored()


@dataclass(frozen=True, eq=False)
class ListOf:
    item: Any
    max_items: int = 0
    unique: bool = False  # for lists of strings (policyTypes, ipFamilies)


@dataclass(frozen=True, eq=False)
class MapOf:
    """map[string]string: labels, annotations, a Service selector."""

    key_check: v.Check
    value_check: Optional[v.Check] = None
    max_bytes: int = 0


@dataclass(frozen=True)
class F:
    name: str  # as in the API (camelCase)
    node: Any
    required: bool = False
    default: Any = _ABSENT
    example: str = ""  # "port: 80", shown in the fix when the field is missing

    @property
    def attr(self) -> str:
        return snake(self.name)


@dataclass(frozen=True, eq=False)
class Obj:
    fields: tuple[F, ...]
    rules: tuple[Rule, ...] = ()
    make: Optional[Callable[[dict], Any]] = None
    by_name: Mapping[str, F] = field(init=False, repr=False)
    by_attr: Mapping[str, F] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})
        object.__setattr__(self, "by_attr", {f.attr: f for f in self.fields})


def snake(name: str) -> str:
    """clusterIPs -> cluster_ips, podCIDR -> pod_cidr, except -> except_."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return s + "_" if s in ("except", "from") else s


def string(*checks: v.Check) -> Scalar:
    return Scalar("string", checks)


def integer(*checks: v.Check) -> Scalar:
    return Scalar("integer", (v.check_int32,) + checks)


def enum(*values: str) -> Scalar:
    return Scalar("string", enum=values)


STR = string()
BOOL = Scalar("boolean")
INT = integer()
PORT = integer(v.check_port)


def ignore(*names: str) -> tuple[F, ...]:
    return tuple(F(n, IGNORED) for n in names)


# --- the walker -----------------------------------------------------------------

_WANT = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean (true or false)",
    "int-or-string": "a port number or a port name",
    "timestamp": "a timestamp",
    "object": "an object (a mapping of fields)",
    "list": "a list",
    "map": "a mapping of names to strings",
}


def describe(value: Any) -> str:
    """How an error names a value of the wrong type: 'a string "80"'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"an integer {v._num(value)}" if abs(value) < 10**4000 else "a very large integer"
    if isinstance(value, float):
        return f"a number {value!r}"
    if isinstance(value, str):
        return f"a string {printable(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object (a mapping)"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return f"a value of YAML type {type(value).__name__}"


printable = v.quote  # a string quoted for a message, control characters escaped, long ones cut


def clean_path(path: str, limit: int = 200) -> str:
    """A field path safe to print on one line: control characters escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path[:limit])
    return shown + ("..." if len(path) > limit else "")


def join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def _type_fix(want: str, value: Any, at: str) -> str:
    name = at.rsplit(".", 1)[-1]
    if value is None:
        return 'remove the empty item (a "-" with nothing after it), or fill it in'
    if want == "integer" and isinstance(value, (bool, float)):
        return f"write a whole number without quotes, e.g. {name}: 80" if "port" in name.lower() else \
            "write a whole number without quotes"
    if want == "integer" and isinstance(value, str) and value.strip().isdigit() and len(value) < 20:
        return f"remove the quotes: {name}: {value.strip()}"
    if want == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return f"remove the quotes: {name}: {value.lower()}"
    if want == "boolean":
        return "write true or false, without quotes"
    if want in ("string", "map") and isinstance(value, (bool, int, float)):
        return ("put the value in quotes (YAML reads unquoted numbers and true/false/yes/no/on/off "
                "as non-strings)")
    if want == "list" and isinstance(value, (dict, str)):
        return 'write it as a list: each item on its own line starting with "- "'
    if want == "object" and isinstance(value, list):
        return 'this field takes one object, not a list: remove the "- "'
    if want == "object":
        return f"write {name} as a mapping of fields, one per line"
    return ""


class Walker:
    """Checks one document against a schema, collecting problems for one object."""

    def __init__(self, obj: str):
        self.obj = obj
        self.problems: list = []

    def report(self, at: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.obj, clean_path(at), message, fix))

    def wrong_type(self, want: str, value: Any, at: str) -> Any:
        self.report(at, f"expected {_WANT[want]}, got {describe(value)}", _type_fix(want, value, at))
        return INVALID

    def walk(self, node: Any, value: Any, at: str) -> Any:
        if isinstance(node, Ignored):
            return value
        if isinstance(node, Scalar):
            return self._scalar(node, value, at)
        if isinstance(node, Obj):
            return self._obj(node, value, at)
        if isinstance(node, ListOf):
            return self._list(node, value, at)
        if isinstance(node, MapOf):
            return self._map(node, value, at)
        raise TypeError(f"not a schema node: {node!r}")  # a bug in the tables

    def _scalar(self, node: Scalar, value: Any, at: str) -> Any:
        t = node.type
        if t == "timestamp":
            return value if isinstance(value, str) and value else self.wrong_type(t, value, at)
        if t == "int-or-string":
            ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        elif t == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            return self.wrong_type(t, value, at)
        for check in node.checks:
            bad = check(value)
            if bad:
                self.report(at, *bad)
                return INVALID
        if node.enum and value not in node.enum:
            self.report(at, f"unsupported value {printable(value)}", enum_fix(value, node.enum))
            return INVALID
        return value

    def _obj(self, node: Obj, value: Any, at: str) -> Any:
        if not isinstance(value, dict):
            return self.wrong_type("object", value, at)
        out: dict = {}
        for key, item in value.items():
            f = node.by_name.get(key) if isinstance(key, str) else None
            if f is None:
                self._unknown(node, key, at)
                continue
            if isinstance(f.node, Ignored) or item is None:
                continue  # null is absent, as in the API
            out[f.attr] = self.walk(f.node, item, join(at, key))
        for f in node.fields:
            if f.attr in out and not (f.required and out[f.attr] == ""):
                continue
            if f.required:
                out.pop(f.attr, None)
                example = f" ({f.example})" if f.example else ""
                self.report(join(at, f.name), "required field is missing",
                            f"add {f.name}{example}" + (f" under {at}" if at else ""))
            elif f.default is not _ABSENT:
                out[f.attr] = f.default
        for rule in node.rules:
            rule(out, at, self.report)
        return out

    def _unknown(self, node: Obj, key: Any, at: str) -> None:
        name = key if isinstance(key, str) else str(describe(key))
        path = join(at, name if len(name) <= 80 else name[:80] + "...")
        top = ("apiVersion", "kind")  # checked before the walk, not ignored
        used = sorted(f.name for f in node.fields if not isinstance(f.node, Ignored) or f.name in top)
        ignored = sorted(f.name for f in node.fields if isinstance(f.node, Ignored) and f.name not in top)
        guess = difflib.get_close_matches(name, [f.name for f in node.fields], n=1, cutoff=0.6)
        hint = f'did you mean "{guess[0]}"? ' if guess else "check the spelling; "
        where = at or "the top level"
        if not used or len(ignored) <= 3:
            used, ignored = sorted(used + ignored), []
        fix = f"{hint}the fields of {where} are: {', '.join(used)}"
        if ignored:
            n = len(ignored)
            fix += f" (labkit also accepts, and ignores, {n} more Kubernetes field{'s' if n > 1 else ''} here)"
        self.report(path, f"unknown field {printable(path, 100)}", fix)

    def _list(self, node: ListOf, value: Any, at: str) -> Any:
        if not isinstance(value, list):
            return self.wrong_type("list", value, at)
        if node.max_items and len(value) > node.max_items:
            self.report(at, f"has {len(value)} items; the API allows at most {node.max_items}",
                        f"split it or remove items to keep at most {node.max_items}")
            return INVALID
        items = tuple(self.walk(node.item, item, f"{at}[{i}]") for i, item in enumerate(value))
        if node.unique:
            seen: dict = {}
            for i, item in enumerate(items):
                if isinstance(item, str) and item in seen:
                    self.report(f"{at}[{i}]", f"duplicate value {printable(item)} "
                                f"(already at {at}[{seen[item]}])", "list each value once")
                seen.setdefault(item, i)
        return items

    def _map(self, node: MapOf, value: Any, at: str) -> Any:
        if not isinstance(value, dict):
            return self.wrong_type("map", value, at)
        out: dict = {}
        total = 0
        for key, item in value.items():
            if not isinstance(key, str):
                self.report(at, f"keys must be strings, got {describe(key)}", "put the key in quotes")
                continue
            where = f"{at}[{key if len(key) <= 80 else key[:80] + '...'}]"
            bad = node.key_check(key)
            if bad:
                self.report(at, *bad)
                continue
            if item is None:
                item = ""  # a key with no value is the empty string, as in the API
            if not isinstance(item, str):
                self.wrong_type("string", item, where)
                continue
            bad = node.value_check(item) if node.value_check else None
            if bad:
                self.report(where, *bad)
                continue
            total += len(key) + len(item)
            out[key] = item
        if node.max_bytes and total > node.max_bytes:
            self.report(at, f"holds {total} bytes; the API allows at most {node.max_bytes}",
                        "move large data into a ConfigMap")
        return out


def enum_fix(value: Any, allowed: tuple[str, ...]) -> str:
    same = [a for a in allowed if isinstance(value, str) and a.lower() == value.lower()]
    listed = ", ".join(allowed)
    if same:
        return f'did you mean "{same[0]}"? (values are case-sensitive: {listed})'
    return f"use one of: {listed}"


def build(node: Any, data: Any) -> Any:
    """The dataclasses for checked data (only called when it had no problems)."""
    if isinstance(node, Obj):
        built = {attr: build(node.by_attr[attr].node, item) for attr, item in data.items()}
        return node.make(built) if node.make else built
    if isinstance(node, ListOf):
        return tuple(build(node.item, item) for item in data)
    return data


# --- rules shared by several kinds ------------------------------------------------


def _ok(x: Any) -> bool:
    return x is not INVALID


def _unique_names(items: Any, at: str, attr: str, report: Report, what: str) -> None:
    """Report a repeated `attr` among a list of checked objects."""
    if not isinstance(items, tuple):
        return
    seen: dict = {}
    for i, item in enumerate(items):
        name = item.get(attr) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            continue
        if name in seen:
            report(f"{at}[{i}].{snake_to_api(attr)}", f"duplicate {what} name {printable(name)} "
                   f"(also used by {at}[{seen[name]}])", f"give each {what} a different name")
        else:
            seen[name] = i


def snake_to_api(attr: str) -> str:
    head, *rest = attr.rstrip("_").split("_")
    return head + "".join(p.upper() if p in ("ip", "ips", "cidr", "cidrs") else p.capitalize() for p in rest)


def _selector_rule(d: dict, at: str, report: Report) -> None:
    exprs = d.get("match_expressions")
    for i, req in enumerate(exprs if isinstance(exprs, tuple) else ()):
        if not isinstance(req, dict):
            continue
        op, values = req.get("operator"), req.get("values")
        here = f"{at}.matchExpressions[{i}].values"
        if op in ("In", "NotIn") and _ok(values) and not values:
            report(here, f"must have at least one value when operator is {op}",
                   'list the values to match, e.g. values: ["web"]')
        if op in ("Exists", "DoesNotExist") and _ok(values) and values:
            report(here, f"must be empty when operator is {op}",
                   f"remove values (operator {op} looks only at the key)")


def _make_selector(d: dict) -> LabelSelector:
    return LabelSelector(d.get("match_labels", {}), d.get("match_expressions", ()))


LABELS = MapOf(v.check_qualified_name, v.check_label_value)
ANNOTATIONS = MapOf(v.check_qualified_name, None, max_bytes=256 * 1024)

LABEL_SELECTOR = Obj(
    (F("matchLabels", LABELS),
     F("matchExpressions", ListOf(Obj(
         (F("key", string(v.check_qualified_name), required=True, example="key: app"),
          F("operator", enum("In", "NotIn", "Exists", "DoesNotExist"), required=True,
            example="operator: In"),
          F("values", ListOf(string(v.check_label_value)))),
         make=lambda d: LabelSelectorRequirement(d["key"], d["operator"], d.get("values", ())))))),
    rules=(_selector_rule,), make=_make_selector)


def metadata(name_check: v.Check, name_required: bool = True) -> Obj:
    """ObjectMeta, with the name rule of one kind."""
    return Obj(
        (F("name", string(name_check), required=name_required, example="name: web"),
         F("namespace", string(v.check_dns1123_label)),
         F("labels", LABELS),
         F("annotations", ANNOTATIONS),
         F("uid", STR),
         F("deletionTimestamp", Scalar("timestamp")))
        + ignore("generateName", "creationTimestamp", "resourceVersion", "generation",
                 "managedFields", "ownerReferences", "finalizers", "selfLink",
                 "deletionGracePeriodSeconds", "clusterName"))


def make_meta(d: dict, namespaced: bool) -> ObjectMeta:
    ns = d.get("namespace", "") or ("default" if namespaced else "")
    return ObjectMeta(d.get("name", ""), ns, d.get("labels", {}), d.get("annotations", {}),
                      d.get("uid", ""))


# --- v1 Namespace, Node -----------------------------------------------------------


def _node_spec_rule(d: dict, at: str, report: Report) -> None:
    cidr, cidrs = d.get("pod_cidr"), d.get("pod_cidrs")
    if isinstance(cidrs, tuple) and len(cidrs) > 2:
        report(join(at, "podCIDRs"), f"has {len(cidrs)} CIDRs; at most 2 (one per IP family)",
               "keep one IPv4 and at most one IPv6 CIDR")
    if isinstance(cidr, str) and isinstance(cidrs, tuple) and cidrs and cidrs[0] != cidr:
        report(join(at, "podCIDRs[0]"), f"must equal podCIDR {printable(cidr)}, got {printable(str(cidrs[0]))}",
               "put podCIDR first in podCIDRs, or leave one of them out")


def _node_address_rule(d: dict, at: str, report: Report) -> None:
    if d.get("type") in ("InternalIP", "ExternalIP") and isinstance(d.get("address"), str):
        bad = v.check_ip(d["address"])
        if bad:
            report(join(at, "address"), *bad)


def _make_node(d: dict) -> Node:
    spec, status = d.get("spec", {}), d.get("status", {})
    cidr, cidrs = spec.get("pod_cidr", ""), spec.get("pod_cidrs", ())
    return Node(make_meta(d.get("metadata", {}), False), cidr or (cidrs[0] if cidrs else ""),
                cidrs or ((cidr,) if cidr else ()), status.get("addresses", ()))


NAMESPACE = Obj(
    (F("metadata", metadata(v.check_dns1123_label), required=True),
     F("spec", Obj(ignore("finalizers"))), F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: Namespace(make_meta(d.get("metadata", {}), False)))

NODE = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", Obj((F("podCIDR", string(v.check_cidr)), F("podCIDRs", ListOf(string(v.check_cidr))))
                   + ignore("providerID", "taints", "unschedulable", "configSource", "externalID"),
                   rules=(_node_spec_rule,))),
     F("status", Obj((F("addresses", ListOf(Obj(
         (F("type", enum("Hostname", "ExternalIP", "InternalIP", "ExternalDNS", "InternalDNS"),
            required=True, example="type: InternalIP"),
          F("address", STR, required=True, example="address: 172.18.0.2")),
         rules=(_node_address_rule,), make=lambda d: NodeAddress(d["type"], d["address"])))),)
         + ignore("capacity", "allocatable", "conditions", "daemonEndpoints", "nodeInfo", "images",
                  "volumesInUse", "volumesAttached", "config", "phase", "runtimeHandlers",
                  "features"))))
    + ignore("apiVersion", "kind"),
    make=_make_node)


# --- v1 Pod, apps/v1 Deployment -------------------------------------------------------


def _container_rule(d: dict, at: str, report: Report) -> None:
    _unique_names(d.get("ports"), join(at, "ports"), "name", report, "port")


def _pod_spec_rule(d: dict, at: str, report: Report) -> None:
    containers = d.get("containers")
    if isinstance(containers, tuple) and not containers:
        report(join(at, "containers"), "must list at least one container",
               "add a container with a name and an image")
    _unique_names(containers, join(at, "containers"), "name", report, "container")


def _pod_status_rule(d: dict, at: str, report: Report) -> None:
    ip, ips = d.get("pod_ip"), d.get("pod_ips")
    first = ips[0].get("ip") if isinstance(ips, tuple) and ips and isinstance(ips[0], dict) else None
    if isinstance(ip, str) and isinstance(first, str) and first != ip:
        report(join(at, "podIPs[0].ip"), f"must equal podIP {printable(ip)}",
               "put podIP first in podIPs, or leave one of them out")


CONTAINER_PORT = Obj(
    (F("containerPort", PORT, required=True, example="containerPort: 80"),
     F("name", string(v.check_port_name)),
     F("protocol", enum("TCP", "UDP", "SCTP"), default="TCP"),
     F("hostPort", integer(v.check_port_or_zero)),
     F("hostIP", string(v.check_ip))),
    make=lambda d: ContainerPort(d["container_port"], d.get("name", ""), d["protocol"],
                                 d.get("host_port", 0)))

CONTAINER = Obj(
    (F("name", string(v.check_dns1123_label), required=True, example="name: web"),
     F("image", STR),
     F("ports", ListOf(CONTAINER_PORT)),
     F("command", ListOf(STR)),
     F("args", ListOf(STR)))
    + ignore("env", "envFrom", "resources", "readinessProbe", "livenessProbe", "startupProbe",
             "imagePullPolicy", "volumeMounts", "volumeDevices", "securityContext",
             "terminationMessagePath", "terminationMessagePolicy", "workingDir", "lifecycle",
             "stdin", "stdinOnce", "tty", "resizePolicy", "restartPolicy"),
    rules=(_container_rule,),
    make=lambda d: Container(d["name"], d.get("image", ""), d.get("ports", ()),
                             d.get("command", ()), d.get("args", ())))

POD_SPEC = Obj(
    (F("containers", ListOf(CONTAINER), required=True, example="containers: [{name: web, image: nginx}]"),
     F("nodeName", string(v.check_dns1123_subdomain)),
     F("hostNetwork", BOOL),
     F("hostname", string(v.check_dns1123_label)),
     F("subdomain", string(v.check_dns1123_label)))
    + ignore("initContainers", "ephemeralContainers", "volumes", "restartPolicy",
             "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "dnsConfig",
             "nodeSelector", "serviceAccountName", "serviceAccount", "automountServiceAccountToken",
             "securityContext", "imagePullSecrets", "affinity", "schedulerName", "tolerations",
             "hostAliases", "priorityClassName", "priority", "readinessGates", "runtimeClassName",
             "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints",
             "setHostnameAsFQDN", "os", "hostPID", "hostIPC", "hostUsers", "shareProcessNamespace",
             "schedulingGates", "resourceClaims", "resources"),
    rules=(_pod_spec_rule,))

POD_STATUS = Obj(
    (F("phase", enum("Pending", "Running", "Succeeded", "Failed", "Unknown")),
     F("podIP", string(v.check_ip)),
     F("podIPs", ListOf(Obj((F("ip", string(v.check_ip), required=True, example="ip: 10.244.1.5"),),
                            make=lambda d: d["ip"]))),
     F("hostIP", string(v.check_ip)),
     F("conditions", ListOf(Obj(
         (F("type", STR, required=True, example="type: Ready"),
          F("status", enum("True", "False", "Unknown"), required=True, example='status: "True"'))
         + ignore("lastProbeTime", "lastTransitionTime", "reason", "message", "observedGeneration"),
         make=lambda d: PodCondition(d["type"], d["status"])))))
    + ignore("hostIPs", "startTime", "containerStatuses", "initContainerStatuses",
             "ephemeralContainerStatuses", "qosClass", "nominatedNodeName", "reason", "message",
             "resize", "resourceClaimStatuses", "observedGeneration"),
    rules=(_pod_status_rule,))


def _make_pod(d: dict) -> Pod:
    meta, spec, status = d.get("metadata", {}), d.get("spec", {}), d.get("status", {})
    ip, ips = status.get("pod_ip", ""), status.get("pod_ips", ())
    return Pod(make_meta(meta, True), spec.get("containers", ()), spec.get("node_name", ""),
               spec.get("host_network", False), spec.get("hostname", ""), spec.get("subdomain", ""),
               status.get("phase", ""), ip or (ips[0] if ips else ""), ips or ((ip,) if ip else ()),
               status.get("host_ip", ""), status.get("conditions", ()),
               terminating="deletion_timestamp" in meta)


POD = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", POD_SPEC, required=True, example="spec: {containers: [...]}"),
     F("status", POD_STATUS)) + ignore("apiVersion", "kind"),
    make=_make_pod)


def _selector_is_sound(sel: dict) -> bool:
    """No problem reported inside it (so matching it against labels means something)."""
    exprs = sel.get("match_expressions", ())
    if not _ok(sel.get("match_labels")) or not isinstance(exprs, tuple):
        return False
    for req in exprs:
        if not isinstance(req, dict) or "key" not in req or "operator" not in req:
            return False
        if not all(_ok(x) for x in req.values()):
            return False
        if (req.get("operator") in ("In", "NotIn")) != bool(req.get("values")):
            return False
    return True


def _deployment_spec_rule(d: dict, at: str, report: Report) -> None:
    sel, template = d.get("selector"), d.get("template")
    if not isinstance(sel, dict) or not _selector_is_sound(sel):
        return
    if not sel.get("match_labels") and not sel.get("match_expressions"):
        report(join(at, "selector"), "must not be empty: a Deployment's selector chooses its pods",
               "set selector.matchLabels to the pod template's labels, e.g. app: web")
        return
    if not isinstance(template, dict):
        return  # missing or broken: already reported
    meta = template.get("metadata", {})
    labels = meta.get("labels", {}) if isinstance(meta, dict) else INVALID
    selector = LabelSelector(sel.get("match_labels", {}), tuple(
        LabelSelectorRequirement(r["key"], r["operator"], r.get("values", ()))
        for r in sel.get("match_expressions", ())))
    if isinstance(labels, dict) and not selector_matches(selector, labels):
        report(join(at, "template.metadata.labels"),
               "do not match spec.selector: the Deployment would not select its own pods",
               "give the pod template every label that spec.selector.matchLabels asks for")


POD_TEMPLATE = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain, name_required=False)),
     F("spec", POD_SPEC, required=True, example="spec: {containers: [...]}")),
    make=lambda d: PodTemplate(make_meta(d.get("metadata", {}), False),
                               d["spec"].get("containers", ()), d["spec"].get("host_network", False)))

DEPLOYMENT = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", Obj(
         (F("replicas", integer(v.check_non_negative), default=1),
          F("selector", LABEL_SELECTOR, required=True, example="selector: {matchLabels: {app: web}}"),
          F("template", POD_TEMPLATE, required=True, example="template: {metadata: ..., spec: ...}"))
         + ignore("strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds",
                  "paused"),
         rules=(_deployment_spec_rule,)), required=True, example="spec: {selector: ..., template: ...}"),
     F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: Deployment(make_meta(d.get("metadata", {}), True), d["spec"]["selector"],
                              d["spec"]["template"], d["spec"]["replicas"]))


# --- v1 Service ----------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _externally_accessible(d: dict) -> bool:
    t = d.get("type", "ClusterIP")
    return t in ("NodePort", "LoadBalancer") or (t == "ClusterIP" and bool(d.get("external_ips")))


def _service_ports_rule(d: dict, at: str, report: Report) -> None:
    ports, t = d.get("ports"), d.get("type", "ClusterIP")
    here = join(at, "ports")
    if ports is None and t != "ExternalName" and d.get("cluster_ip") != "None":
        report(here, "required field is missing: a Service needs at least one port",
               "add ports, e.g. ports: [{port: 80, targetPort: 8080}]")
    if not isinstance(ports, tuple):
        return
    if not ports and t != "ExternalName" and d.get("cluster_ip") != "None":
        report(here, "must list at least one port", "add a port, e.g. - port: 80")
    seen: dict = {}
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        if len(ports) > 1 and not p.get("name"):
            report(f"{here}[{i}].name", "is required when a Service has more than one port",
                   "name every port, e.g. name: http")
        key = (p.get("port"), p.get("protocol"))
        if isinstance(key[0], int) and isinstance(key[1], str):
            if key in seen:
                report(f"{here}[{i}]", f"duplicate port {key[0]}/{key[1]} (also at {here}[{seen[key]}])",
                       "use a different port number or protocol")
            seen.setdefault(key, i)
        if p.get("node_port") and t in ("ClusterIP", "ExternalName"):
            report(f"{here}[{i}].nodePort", f"may not be used when type is {t}",
                   "remove nodePort, or set type: NodePort")
    _unique_names(ports, here, "name", report, "port")


def _service_spec_rule(d: dict, at: str, report: Report) -> None:
    t = d.get("type", "ClusterIP")
    if not _ok(t):
        return
    ip, ips = d.get("cluster_ip"), d.get("cluster_ips")
    if isinstance(ips, tuple):
        if len(ips) > 2:
            report(join(at, "clusterIPs"), f"has {len(ips)} addresses; at most 2 (one per IP family)",
                   "keep at most one IPv4 and one IPv6 address")
        if isinstance(ip, str) and ip and ips and ips[0] != ip:
            report(join(at, "clusterIPs[0]"), f"must equal clusterIP {printable(ip)}",
                   "put clusterIP first in clusterIPs, or leave one of them out")
    if ip == "None" and t in ("NodePort", "LoadBalancer"):
        report(join(at, "clusterIP"), f'may not be "None" (headless) when type is {t}',
               "remove clusterIP: None, or use type: ClusterIP")
    if t == "ExternalName":
        if not d.get("external_name"):
            report(join(at, "externalName"), "is required when type is ExternalName",
                   "set externalName to a DNS name, e.g. db.example.com")
        if ip not in (None, "") or ips:
            report(join(at, "clusterIP"), "must not be set when type is ExternalName",
                   "remove clusterIP and clusterIPs")
    if d.get("external_traffic_policy") and not _externally_accessible(d):
        report(join(at, "externalTrafficPolicy"),
               f"may only be set on Services reachable from outside (type NodePort or LoadBalancer, "
               f"or with externalIPs); type is {t}",
               "remove externalTrafficPolicy, or set type: NodePort or LoadBalancer")
    if d.get("health_check_node_port") and not (
            t == "LoadBalancer" and d.get("external_traffic_policy") == "Local"):
        report(join(at, "healthCheckNodePort"),
               "may only be set when type is LoadBalancer and externalTrafficPolicy is Local",
               "remove healthCheckNodePort")
    if d.get("load_balancer_source_ranges") and t != "LoadBalancer":
        report(join(at, "loadBalancerSourceRanges"), f"may only be used when type is LoadBalancer (type is {t})",
               "remove loadBalancerSourceRanges, or set type: LoadBalancer")
    if "allocate_load_balancer_node_ports" in d and t != "LoadBalancer":
        report(join(at, "allocateLoadBalancerNodePorts"),
               f"may only be used when type is LoadBalancer (type is {t})",
               "remove allocateLoadBalancerNodePorts")
    config = d.get("session_affinity_config")
    if isinstance(config, dict) and config and d.get("session_affinity", "None") == "None":
        report(join(at, "sessionAffinityConfig"), "must not be set when sessionAffinity is None",
               "set sessionAffinity: ClientIP, or remove sessionAffinityConfig")


def _make_service_port(d: dict) -> ServicePort:
    target = d.get("target_port", 0)
    return ServicePort(d["port"], d["protocol"], d.get("name", ""),
                       target if target not in (0, "") else d["port"],
                       d.get("node_port", 0), d.get("app_protocol", ""))


def _check_target_port(value: Any) -> v.Verdict:
    if isinstance(value, int):
        return v.check_port(value) if value != 0 else None
    return v.check_port_name(value) if value != "" else None


def _make_service(d: dict) -> Service:
    spec, status = d.get("spec", {}), d.get("status", {})
    t = spec.get("type", "ClusterIP")
    ip, ips = spec.get("cluster_ip", ""), spec.get("cluster_ips", ())
    affinity = spec.get("session_affinity", "None")
    timeout = 0
    if affinity == "ClientIP":
        client = spec.get("session_affinity_config", {}).get("client_ip", {})
        timeout = client.get("timeout_seconds", 10800)
    selector = spec.get("selector") or None
    lb = status.get("load_balancer", {}).get("ingress", ())
    return Service(
        make_meta(d.get("metadata", {}), True), spec.get("ports", ()), t, selector,
        ip or (ips[0] if ips else ""), ips or ((ip,) if ip else ()),
        spec.get("ip_families", ()), spec.get("ip_family_policy", ""),
        spec.get("external_ips", ()), spec.get("external_name", ""),
        spec.get("load_balancer_ip", ""), spec.get("load_balancer_source_ranges", ()),
        spec.get("load_balancer_class", ""), spec.get("allocate_load_balancer_node_ports", True),
        spec.get("external_traffic_policy") or ("Cluster" if _externally_accessible(spec) else ""),
        spec.get("internal_traffic_policy") or ("" if t == "ExternalName" else "Cluster"),
        spec.get("health_check_node_port", 0), affinity, timeout,
        spec.get("publish_not_ready_addresses", False), spec.get("traffic_distribution", ""),
        lb)


def _lb_ingress_rule(d: dict, at: str, report: Report) -> None:
    if d.get("ip_mode") and not d.get("ip"):
        report(join(at, "ipMode"), "may only be set together with ip", "add ip, or remove ipMode")


SERVICE_PORT = Obj(
    (F("name", string(v.check_dns1123_label)),
     F("protocol", enum("TCP", "UDP", "SCTP"), default="TCP"),
     F("appProtocol", STR),
     F("port", PORT, required=True, example="port: 80"),
     F("targetPort", Scalar("int-or-string", (_check_target_port,))),
     F("nodePort", integer(v.check_port_or_zero))),
    make=_make_service_port)


def _check_affinity_timeout(n: int) -> v.Verdict:
    if 1 <= n <= 86400:
        return None
    return (f"must be between 1 and 86400 seconds (one day), got {v._num(n)}",
            "use e.g. 10800 (three hours, the default)")


def _check_external_name(s: str) -> v.Verdict:
    return v.check_dns1123_subdomain(s[:-1] if s.endswith(".") else s)


SESSION_AFFINITY_CONFIG = Obj(
    (F("clientIP", Obj((F("timeoutSeconds", integer(_check_affinity_timeout)),))),))

LB_INGRESS = Obj(
    (F("ip", string(v.check_ip)),
     F("hostname", string(v.check_dns1123_subdomain)),
     F("ipMode", enum("VIP", "Proxy"))) + ignore("ports"),
    rules=(_lb_ingress_rule,),
    make=lambda d: LoadBalancerIngress(d.get("ip", ""), d.get("hostname", ""), d.get("ip_mode", "")))

SERVICE_SPEC = Obj(
    (F("ports", ListOf(SERVICE_PORT)),
     F("selector", MapOf(v.check_qualified_name, v.check_label_value)),
     F("clusterIP", string(v.check_cluster_ip)),
     F("clusterIPs", ListOf(string(v.check_cluster_ip))),
     F("type", enum(*SERVICE_TYPES)),
     F("externalIPs", ListOf(string(v.check_external_ip))),
     F("sessionAffinity", enum("None", "ClientIP")),
     F("loadBalancerIP", string(v.check_ip)),
     F("loadBalancerSourceRanges", ListOf(string(v.check_cidr))),
     F("externalName", string(_check_external_name)),
     F("externalTrafficPolicy", enum("Cluster", "Local")),
     F("healthCheckNodePort", integer(v.check_port_or_zero)),
     F("publishNotReadyAddresses", BOOL),
     F("sessionAffinityConfig", SESSION_AFFINITY_CONFIG),
     F("ipFamilies", ListOf(enum("IPv4", "IPv6"), max_items=2, unique=True)),
     F("ipFamilyPolicy", enum("SingleStack", "PreferDualStack", "RequireDualStack")),
     F("allocateLoadBalancerNodePorts", BOOL),
     F("loadBalancerClass", STR),
     F("internalTrafficPolicy", enum("Cluster", "Local")),
     F("trafficDistribution", STR)),
    rules=(_service_ports_rule, _service_spec_rule))

SERVICE_STATUS = Obj(
    (F("loadBalancer", Obj((F("ingress", ListOf(LB_INGRESS)),))),) + ignore("conditions"))

SERVICE = Obj(
    (F("metadata", metadata(v.check_dns1035_label), required=True),
     F("spec", SERVICE_SPEC),
     F("status", SERVICE_STATUS)) + ignore("apiVersion", "kind"),
    make=_make_service)


# --- discovery.k8s.io/v1 EndpointSlice ------------------------------------------------

_ADDRESS_CHECKS = {"IPv4": v.check_ipv4, "IPv6": v.check_ipv6, "FQDN": v.check_dns1123_subdomain}


def _endpoint_slice_rule(d: dict, at: str, report: Report) -> None:
    check = _ADDRESS_CHECKS.get(d.get("address_type"))
    endpoints = d.get("endpoints")
    if check and isinstance(endpoints, tuple):
        for i, ep in enumerate(endpoints):
            addrs = ep.get("addresses") if isinstance(ep, dict) else None
            for j, addr in enumerate(addrs if isinstance(addrs, tuple) else ()):
                bad = check(addr) if isinstance(addr, str) else None
                if bad:
                    report(f"endpoints[{i}].addresses[{j}]",
                           f"{bad[0]} (addressType is {d['address_type']})", bad[1])
    _unique_names(d.get("ports"), "ports", "name", report, "port")


def _endpoint_rule(d: dict, at: str, report: Report) -> None:
    addrs = d.get("addresses")
    if isinstance(addrs, tuple) and not addrs:
        report(join(at, "addresses"), "must list at least one address", "add the endpoint's IP address")


def _endpoint_port_name(value: str) -> v.Verdict:
    return v.check_dns1123_label(value) if value else None


def _names() -> Obj:
    return Obj((F("name", STR, required=True, example="name: zone-a"),), make=lambda d: d["name"])


ENDPOINT = Obj(
    (F("addresses", ListOf(STR, max_items=100), required=True, example='addresses: ["10.244.1.5"]'),
     F("conditions", Obj((F("ready", BOOL), F("serving", BOOL), F("terminating", BOOL)),
                         make=lambda d: EndpointConditions(d.get("ready"), d.get("serving"),
                                                           d.get("terminating")))),
     F("hostname", string(v.check_dns1123_label)),
     F("nodeName", string(v.check_dns1123_subdomain)),
     F("zone", STR),
     F("targetRef", Obj((F("kind", STR), F("namespace", STR), F("name", STR), F("uid", STR))
                        + ignore("apiVersion", "resourceVersion", "fieldPath"),
                        make=lambda d: ObjectReference(**d))),
     F("hints", Obj((F("forZones", ListOf(_names())), F("forNodes", ListOf(_names()))))))
    + ignore("deprecatedTopology"),
    rules=(_endpoint_rule,),
    make=lambda d: Endpoint(d["addresses"], d.get("conditions", EndpointConditions()),
                            d.get("hostname", ""), d.get("node_name", ""), d.get("zone", ""),
                            d.get("target_ref"), d.get("hints", {}).get("for_zones", ()),
                            d.get("hints", {}).get("for_nodes", ())))

ENDPOINT_PORT = Obj(
    (F("name", string(_endpoint_port_name)),
     F("protocol", enum("TCP", "UDP", "SCTP"), default="TCP"),
     F("port", PORT),
     F("appProtocol", STR)),
    make=lambda d: EndpointPort(d.get("port"), d.get("name", ""), d["protocol"], d.get("app_protocol", "")))

ENDPOINT_SLICE = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("addressType", enum("IPv4", "IPv6", "FQDN"), required=True, example="addressType: IPv4"),
     F("endpoints", ListOf(ENDPOINT, max_items=1000)),
     F("ports", ListOf(ENDPOINT_PORT, max_items=100)))
    + ignore("apiVersion", "kind"),
    rules=(_endpoint_slice_rule,),
    make=lambda d: EndpointSlice(make_meta(d.get("metadata", {}), True), d["address_type"],
                                 d.get("endpoints", ()), d.get("ports", ())))


# --- networking.k8s.io/v1 NetworkPolicy ---------------------------------------------------


def _ip_block_rule(d: dict, at: str, report: Report) -> None:
    cidr, excepts = d.get("cidr"), d.get("except_")
    net = v.parse_cidr(cidr) if isinstance(cidr, str) else None
    if net is None or not isinstance(excepts, tuple):
        return
    for i, exc in enumerate(excepts):
        inner = v.parse_cidr(exc) if isinstance(exc, str) else None
        if inner is None:
            continue
        if inner.version != net.version or not inner.subnet_of(net) or inner == net:
            report(f"{at}.except[{i}]", f"{printable(exc)} is not inside cidr {printable(cidr)}",
                   "list only ranges strictly inside cidr (a longer prefix of the same network)")


def _peer_rule(d: dict, at: str, report: Report) -> None:
    selectors = [k for k in ("pod_selector", "namespace_selector") if k in d]
    if "ip_block" in d and selectors:
        report(at, "may not specify both ipBlock and a selector",
               "split it into two peers: one with ipBlock, one with podSelector/namespaceSelector")
    elif not d:
        report(at, "must specify a peer: podSelector, namespaceSelector or ipBlock",
               "add one of them, or remove the empty peer")


def _np_port_rule(d: dict, at: str, report: Report) -> None:
    port, end = d.get("port"), d.get("end_port")
    if end is None or not _ok(end) or not _ok(port):
        return
    if port is None:
        report(join(at, "endPort"), "may not be set without port", "add port: the first port of the range")
    elif isinstance(port, str):
        report(join(at, "endPort"), f"may not be set when port is a name ({printable(port)})",
               "use a port number for port, or remove endPort")
    elif end < port:
        report(join(at, "endPort"), f"must be greater than or equal to port ({port}), got {end}",
               f"set endPort to {port} or more")


def _np_port_check(value: Any) -> v.Verdict:
    return v.check_port(value) if isinstance(value, int) else v.check_port_name(value)


IP_BLOCK = Obj(
    (F("cidr", string(v.check_cidr), required=True, example="cidr: 203.0.113.0/24"),
     F("except", ListOf(string(v.check_cidr)))),
    rules=(_ip_block_rule,),
    make=lambda d: IPBlock(d["cidr"], d.get("except_", ())))

PEER = Obj(
    (F("podSelector", LABEL_SELECTOR),
     F("namespaceSelector", LABEL_SELECTOR),
     F("ipBlock", IP_BLOCK)),
    rules=(_peer_rule,),
    make=lambda d: NetworkPolicyPeer(d.get("pod_selector"), d.get("namespace_selector"), d.get("ip_block")))

NP_PORT = Obj(
    (F("protocol", enum("TCP", "UDP", "SCTP"), default="TCP"),
     F("port", Scalar("int-or-string", (_np_port_check,))),
     F("endPort", PORT)),
    rules=(_np_port_rule,),
    make=lambda d: NetworkPolicyPort(d["protocol"], d.get("port"), d.get("end_port")))


def _np_rule(peers: str) -> Obj:
    """An ingress rule (peers "from") or an egress rule (peers "to")."""
    return Obj((F(peers, ListOf(PEER)), F("ports", ListOf(NP_PORT))),
               make=lambda d: NetworkPolicyRule(d.get(snake(peers)), d.get("ports")))


NETWORK_POLICY_SPEC = Obj(
    (F("podSelector", LABEL_SELECTOR),
     F("policyTypes", ListOf(enum("Ingress", "Egress"), max_items=2, unique=True)),
     F("ingress", ListOf(_np_rule("from"))),
     F("egress", ListOf(_np_rule("to")))))

NETWORK_POLICY = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", NETWORK_POLICY_SPEC),
     F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: NetworkPolicy(make_meta(d.get("metadata", {}), True),
                                 d.get("spec", {}).get("pod_selector", LabelSelector()),
                                 d.get("spec", {}).get("policy_types"),
                                 d.get("spec", {}).get("ingress"), d.get("spec", {}).get("egress")))


# --- networking.k8s.io/v1 Ingress --------------------------------------------------------

_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")


def _path_rule(d: dict, at: str, report: Report) -> None:
    path, kind = d.get("path", ""), d.get("path_type")
    if kind not in ("Exact", "Prefix") or not isinstance(path, str):
        return
    if not path.startswith("/"):
        report(join(at, "path"), f"must be an absolute path (starting with /) when pathType is {kind}, "
               f"got {printable(path)}", f'write it as "/{path.lstrip("/")}"')
    elif any(p in path for p in _BAD_PATH_PARTS) or path.endswith(("/..", "/.")):
        report(join(at, "path"), f"{printable(path)} may not contain '//', '/./', '/../' or '%2f', "
               f"nor end in '/.' or '/..'", "write the path in its plain form, e.g. /api")


def _backend_rule(d: dict, at: str, report: Report) -> None:
    if "service" in d and "resource" in d:
        report(at, "may not set both service and resource", "keep service")
    elif not d:
        report(at, "must set service (or resource)", "add service: {name: web, port: {number: 80}}")


def _service_backend_port_rule(d: dict, at: str, report: Report) -> None:
    if "number" in d and "name" in d:
        report(at, "may not set both number and name", "keep one of port.number and port.name")
    elif not d:
        report(at, "must set number or name", "add number: 80 (the Service's port), or name: http")


def _ingress_spec_rule(d: dict, at: str, report: Report) -> None:
    if "default_backend" not in d and "rules" not in d:
        report(at, "must set defaultBackend or rules", "add rules with the hosts and paths to route")


def _http_rule(d: dict, at: str, report: Report) -> None:
    if isinstance(d.get("paths"), tuple) and not d["paths"]:
        report(join(at, "paths"), "must list at least one path", "add - path: / with a backend")


SERVICE_BACKEND = Obj(
    (F("name", string(v.check_dns1035_label), required=True, example="name: web"),
     F("port", Obj((F("number", PORT), F("name", string(v.check_port_name))),
                   rules=(_service_backend_port_rule,)), required=True, example="port: {number: 80}")),
    make=lambda d: IngressServiceBackend(d["name"], d["port"].get("number", 0), d["port"].get("name", "")))

RESOURCE_BACKEND = Obj(
    (F("apiGroup", STR),
     F("kind", STR, required=True, example="kind: StorageBucket"),
     F("name", STR, required=True, example="name: static-assets")),
    make=lambda d: ObjectReference(d["kind"], "", d["name"]))

BACKEND = Obj(
    (F("service", SERVICE_BACKEND), F("resource", RESOURCE_BACKEND)),
    rules=(_backend_rule,),
    make=lambda d: IngressBackend(d.get("service"), d.get("resource")))

HTTP_PATH = Obj(
    (F("path", STR),
     F("pathType", enum("Exact", "Prefix", "ImplementationSpecific"), required=True,
       example="pathType: Prefix"),
     F("backend", BACKEND, required=True, example="backend: {service: {name: web, port: {number: 80}}}")),
    rules=(_path_rule,),
    make=lambda d: HTTPIngressPath(d["path_type"], d["backend"], d.get("path", "")))

INGRESS_RULE = Obj(
    (F("host", string(v.check_wildcard_host)),
     F("http", Obj((F("paths", ListOf(HTTP_PATH), required=True, example="paths: [...]"),),
                   rules=(_http_rule,)))),
    make=lambda d: IngressRule(d.get("host", ""), d.get("http", {}).get("paths", ())))

INGRESS_TLS = Obj(
    (F("hosts", ListOf(string(v.check_wildcard_host))),
     F("secretName", string(v.check_dns1123_subdomain))),
    make=lambda d: IngressTLS(d.get("hosts", ()), d.get("secret_name", "")))

INGRESS_SPEC = Obj(
    (F("ingressClassName", string(v.check_dns1123_subdomain)),
     F("defaultBackend", BACKEND),
     F("rules", ListOf(INGRESS_RULE)),
     F("tls", ListOf(INGRESS_TLS))),
    rules=(_ingress_spec_rule,))

INGRESS = Obj(
    (F("metadata", metadata(v.check_dns1123_subdomain), required=True),
     F("spec", INGRESS_SPEC, required=True, example="spec: {rules: [...]}"),
     F("status", IGNORED)) + ignore("apiVersion", "kind"),
    make=lambda d: Ingress(make_meta(d.get("metadata", {}), True), d["spec"].get("ingress_class_name", ""),
                           d["spec"].get("default_backend"), d["spec"].get("rules", ()),
                           d["spec"].get("tls", ())))


# --- the kinds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    api_version: str
    namespaced: bool
    schema: Obj


KINDS: dict[str, Kind] = {
    "Namespace": Kind("v1", False, NAMESPACE),
    "Pod": Kind("v1", True, POD),
    "Service": Kind("v1", True, SERVICE),
    "Node": Kind("v1", False, NODE),
    "Deployment": Kind("apps/v1", True, DEPLOYMENT),
    "EndpointSlice": Kind("discovery.k8s.io/v1", True, ENDPOINT_SLICE),
    "NetworkPolicy": Kind("networking.k8s.io/v1", True, NETWORK_POLICY),
    "Ingress": Kind("networking.k8s.io/v1", True, INGRESS),
}


def supported_kinds() -> str:
    """ "v1 Namespace, Pod, Service, Node; apps/v1 Deployment; ..." """
    groups: dict[str, list[str]] = {}
    for name, kind in KINDS.items():
        groups.setdefault(kind.api_version, []).append(name)
    return "; ".join(f"{api} {', '.join(names)}" for api, names in groups.items())


# Gateway API kinds live in their own module; registered last, because that
# module builds its tables from this one's building blocks.
from labkit.model.gateway import GATEWAY_KINDS  # noqa: E402

KINDS.update(GATEWAY_KINDS)
