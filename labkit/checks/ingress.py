"""Checks for 07.00-ingress-and-gateway-api: host and path routing through the lab's nginx, a canary split.

Requests go to the ingress controller's load balancer address with a Host
header (lab.http(..., host=...)). Which Service answered is read from the pod
that answered (the Services whose selector picks it). Where an exercise asks
"what if" (a new Ingress, other weights), the answer is tried in a throw-away
simulated copy of the lab, which renders the same nginx.conf and routes from
the same tables as the kernel lab's nginx.
"""
from __future__ import annotations

import yaml

from labkit.checks import facts, sandbox
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.model.selectors import map_selector_matches

CONTROLLER = "ingress-nginx/ingress-nginx-controller"
NONE_WORDS = ("none", "nothing", "404", "nginx", "the controller", "default backend")


def entry(lab) -> str:
    """"address:80" of the ingress controller's load balancer."""
    svc = facts.service(lab, CONTROLLER)
    if not svc.load_balancer_ingress:
        raise AnswerError("the ingress controller has no load balancer address yet: run lab.enable_ingress()")
    return f"{svc.load_balancer_ingress[0].ip}:80"


def service_of(lab, pod_key: str) -> str:
    """The Service ("ns/name") whose selector picks the pod; "" for the controller or none."""
    if not pod_key or "/" not in pod_key:
        return ""
    pod = facts.pod(lab, pod_key)
    if pod.meta.namespace == "ingress-nginx":
        return ""
    names = sorted(f"{s.meta.namespace}/{s.meta.name}" for s in lab.services()
                   if s.meta.namespace == pod.meta.namespace and s.selector
                   and map_selector_matches(s.selector, pod.meta.labels))
    return names[0] if names else ""


def routed_service(lab, host: str, path: str) -> tuple[str, int]:
    """(Service that answered or "", HTTP status) for one request through the controller, in a copy."""
    copy = sandbox.sim_copy(lab)
    r = copy.http("outside", entry(copy), path, host=host)
    return service_of(copy, r.answered_by), r.status


def _read_service(answer) -> str:
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError(f"expected a Service name such as 'shop' (or 'none'), got {answer!r}")
    word = answer.strip().lower()
    if word in NONE_WORDS:
        return ""
    return word if "/" in word else f"default/{word}"


@checker("ingress.routed_to", hints=[
    "nginx first picks the rule whose host equals the Host header, then the longest path that matches.",
    "pathType Prefix matches whole path elements, split at '/': /api matches /api and /api/..., but not a "
    "path that merely starts with the same letters.",
    "answer with the Service's name, or 'none' if nginx answers 404 itself.",
])
def routed_to(answer, lab, host="www.example.com", path="/"):
    need_lab(lab)
    got = _read_service(answer)
    svc, status = routed_service(lab, host, path)
    shown = svc.split("/", 1)[1] if svc else "none (nginx's own 404)"
    if got == svc:
        return Right(f"http://{host}{path} goes to {shown}.")
    if got and svc and path.startswith("/api") and path != "/api" and not path.startswith("/api/"):
        return Wrong(f"{path} is not under /api: Prefix compares whole path elements, and '{path.strip('/')}' is "
                     "not 'api', so the request falls through to the / rule")
    if not svc:
        return Wrong(f"no rule of any Ingress takes host {host!r}: nginx answers {status} itself")
    return Wrong(f"the request does not reach {got.split('/', 1)[1] if got else 'nginx alone'}")


def _ingress_docs(answer) -> list[dict]:
    text = answer if isinstance(answer, str) else ""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        raise AnswerError(f"the answer is not YAML: {e}") from None
    if not docs or any(d.get("kind") != "Ingress" for d in docs if isinstance(d, dict)):
        raise AnswerError("expected an Ingress manifest as YAML text (kind: Ingress)")
    return docs


@checker("ingress.host_rule", hints=[
    "one Ingress may hold many rules; a new Ingress of its own for the new host works as well: the "
    "controller merges them all.",
    "a rule has `host:` and, under `http.paths`, a path with its pathType and a backend Service and port.",
    "host: blog.example.com, path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}.",
])
def host_rule(answer, lab, host="blog.example.com", service="default/web"):
    need_lab(lab)
    if not isinstance(answer, str):
        raise AnswerError("expected an Ingress manifest as YAML text (kind: Ingress)")
    _ingress_docs(answer)
    copy = sandbox.sim_copy(lab)
    copy.apply(answer, "your Ingress")
    r = copy.http("outside", entry(copy), "/hostname", host=host)
    got = service_of(copy, r.answered_by)
    if got != service:
        where = got.split("/", 1)[1] if got else f"nginx itself ({r.status})"
        return Wrong(f"with your Ingress, http://{host}/ is answered by {where}, not {service.split('/', 1)[1]}")
    others = copy.http("outside", entry(copy), "/hostname", host="shop.example.com")
    if service_of(copy, others.answered_by) != "default/shop":
        return Wrong("blog.example.com works, but shop.example.com no longer reaches shop: a new Ingress adds "
                     "rules; it must not take the other hosts")
    return Right(f"http://{host}/ reaches {r.answered_by} (Service {service.split('/', 1)[1]}), through the same "
                 "address as every other host: the controller merged your Ingress into its nginx.conf.")


@checker("ingress.load_balancers", hints=[
    "count the Services of type LoadBalancer: lab.services() and each one's .type.",
    "every host and path you sent went to the same address and port: the controller's Service.",
    "one: the controller's own LoadBalancer Service; the apps' Services stay ClusterIP.",
])
def load_balancers(answer, lab):
    need_lab(lab)
    from labkit.checks.answers import as_int

    n = as_int(answer, "a number of load balancers")
    lbs = [s for s in lab.services() if s.type == "LoadBalancer"]
    if n == len(lbs):
        return Right(f"{n}: {', '.join(s.meta.name for s in lbs)}. Without the Ingress, each Service reached "
                     "from outside would need a LoadBalancer (and an address, and a bill) of its own.")
    apps = [s for s in lab.services() if s.meta.namespace == "default" and s.type != "LoadBalancer"
            and s.meta.name != "kubernetes"]
    if n >= len(apps):
        return Wrong("the apps' Services are ClusterIP: only the controller is exposed")
    return Wrong(f"the lab has {len(lbs)} Service{'s' if len(lbs) != 1 else ''} of type LoadBalancer")


def _weights(answer) -> dict[str, int]:
    if not isinstance(answer, dict) or not answer:
        raise AnswerError("expected the weights as a dict of Service name to weight, e.g. {'shop': 9, "
                          "'shop-v2': 1}")
    out = {}
    for k, v in answer.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise AnswerError(f"a weight is a whole number, 0 or more; {k!r} has {v!r}")
        out[str(k).split("/")[-1]] = v
    return out


@checker("ingress.canary_weights", hints=[
    "each backendRef's share of the requests is its weight divided by the sum of all weights.",
    "for one request in five to go to the canary, the canary's weight must be a fifth of the total.",
    "{'shop': 4, 'shop-v2': 1} (or 80 and 20: only the ratio counts).",
])
def canary_weights(answer, lab, route="default/shop", canary="shop-v2", share=0.2, requests=200):
    need_lab(lab)
    weights = _weights(answer)
    total = sum(weights.values())
    if canary not in weights or total == 0:
        return Wrong(f"give a weight for both backends, the stable one and {canary!r}")
    exact = weights[canary] / total
    if abs(exact - share) > 1e-9:
        return Wrong(f"with these weights the canary gets {weights[canary]}/{total} = {exact:.0%} of the "
                     f"requests, not {share:.0%}")
    copy = sandbox.sim_copy(lab)
    routes = [o for o in copy.state.http_routes
              if f"{o.meta.namespace}/{o.meta.name}" == route] if hasattr(copy.state, "http_routes") else []
    text = _route_with_weights(copy, route, weights) if routes else ""
    if not text:
        raise AnswerError(f"the lab has no HTTPRoute {route}: run the cell that applies it first")
    copy.apply(text, "your weights")
    hosts = list(routes[0].hostnames) or ["shop.example.com"]
    hits = sum(service_of(copy, copy.http("outside", entry(copy), "/hostname", host=hosts[0]).answered_by)
               == f"default/{canary}" for _ in range(requests))
    return Right(f"the canary's weight is {weights[canary]} of {total}: {exact:.0%}. Of {requests} requests sent "
                 f"through a copy of the lab, {hits} reached {canary}.")


def _route_with_weights(copy, route: str, weights: dict) -> str:
    """The HTTPRoute `route` as YAML, its backendRefs' weights replaced."""
    r = next(o for o in copy.state.http_routes if f"{o.meta.namespace}/{o.meta.name}" == route)
    rules = []
    for rule in r.rules:
        refs = [{"name": b.name, "port": b.port, "weight": weights.get(b.name, b.weight)} for b in rule.backend_refs]
        rules.append({"backendRefs": refs})
    doc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": r.meta.name, "namespace": r.meta.namespace},
           "spec": {"parentRefs": [{"name": p.name} for p in r.parent_refs],
                    "hostnames": list(r.hostnames), "rules": rules}}
    return yaml.safe_dump(doc, sort_keys=False)
