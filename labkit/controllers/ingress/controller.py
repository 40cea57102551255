"""The lab's ingress controller: what it is, what it serves, and the nginx.conf it runs (pure).

`lab.enable_ingress()` applies INGRESS_NGINX_MANIFEST: the namespace
ingress-nginx, a Deployment ingress-nginx-controller (one pod) and a
LoadBalancer Service of the same name, port 80, externalTrafficPolicy Local
(as ingress-nginx's cloud manifest has it, so nginx sees the client's own
address). It is opt-in, like enable_dns: an Ingress applied to a cluster
without a controller does nothing, as on a real cluster -- and a learner sees
the controller arrive as objects of its own.

In the kernel lab the controller pod runs real nginx with render_controller_conf's
text; in the simulation the same text is rendered, and the pod answers from
the same routing tables (routing.py for Ingress, gateway_conf.py for Gateway).

What the controller serves (the lab's rule, one controller for both APIs):
- Ingresses whose ingressClassName is "nginx" or empty (it is the cluster's
  default class), merged oldest first (routing.py), on port 80;
- Gateways whose gatewayClassName is "nginx", with their attached HTTPRoutes,
  on their listeners' HTTP ports. A Gateway with a port-80 listener takes port
  80 from the Ingresses (the rendered file says which Ingresses it displaced);
  a later Gateway on a port already taken is not served (the file says so).
Only port 80 is in the controller's Service: other listener ports are
reachable at the pod's own address.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

from labkit.controllers.ingress.gateway_conf import (
    GatewayTable, compile_gateway, render_gateway_http, resolve_gateway_endpoints,
)
from labkit.controllers.ingress.nginx_conf import (
    NginxRuntime, render_nginx_conf_from_table, resolve_endpoints,
)
from labkit.controllers.ingress.routing import RoutingTable, compile_ingresses
from labkit.model.objects import ref

NAMESPACE = "ingress-nginx"
NAME = "ingress-nginx-controller"
INGRESS_CLASS = "nginx"
GATEWAY_CLASS = "nginx"
HTTP_PORT = 80
STATUS_LISTEN = "127.0.0.1:10246"
GENERATION_PATH = "/configuration/generation"
LABEL = ("app.kubernetes.io/component", "controller")

INGRESS_NGINX_MANIFEST = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels: {{app.kubernetes.io/name: ingress-nginx}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {NAME}
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}
    spec:
      containers:
      - name: controller
        image: registry.k8s.io/ingress-nginx/controller:v1.11.2
        ports:
        - {{name: http, containerPort: {HTTP_PORT}, protocol: TCP}}
---
apiVersion: v1
kind: Service
metadata:
  name: {NAME}
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}}
  ports:
  - {{name: http, port: {HTTP_PORT}, targetPort: http, protocol: TCP}}
"""


def is_controller_pod(pod) -> bool:
    """A pod of the lab's ingress controller: in the kernel lab it runs nginx, not netexec."""
    return pod.meta.namespace == NAMESPACE and pod.meta.labels.get(LABEL[0]) == LABEL[1] \
        and pod.meta.labels.get("app.kubernetes.io/name") == "ingress-nginx"


def controller_pods(state) -> list:
    return [p for p in state.pods if is_controller_pod(p) and p.pod_ip]


def served_ingresses(state) -> list:
    return [i for i in state.ingresses if i.ingress_class_name in ("", INGRESS_CLASS)]


@dataclass(frozen=True)
class ControllerConfig:
    """Everything the controller serves, and the nginx.conf that serves it."""

    ingress: Optional[RoutingTable]  # None: no Ingress served (none, or port 80 is a Gateway's)
    ingress_endpoints: dict
    gateways: tuple[GatewayTable, ...]
    gateway_endpoints: dict
    text: str
    generation: str
    notes: tuple[str, ...] = field(default=())

    def ports(self) -> tuple[int, ...]:
        ports = {HTTP_PORT} if self.ingress is not None else set()
        for g in self.gateways:
            ports.update(g.ports())
        return tuple(sorted(ports))

    def gateway_on(self, port: int) -> Optional[GatewayTable]:
        return next((g for g in self.gateways if port in g.ports()), None)


def render_controller_conf(state, listen_host: str = "") -> ControllerConfig:
    """The controller's configuration for a cluster state (its generation: a hash of the text)."""
    notes = []
    taken: set[int] = set()
    tables = []
    for gw in state.gateways:
        if gw.gateway_class_name != GATEWAY_CLASS:
            continue
        routes = [r for r in state.http_routes]
        table = compile_gateway(gw, routes, state.services, state.namespaces)
        clash = taken & set(table.ports())
        if clash:
            notes.append(f"{ref(gw)} is not served: port {min(clash)} belongs to an older Gateway")
            continue
        taken.update(table.ports())
        tables.append(table)
    ings = served_ingresses(state)
    ingress = None
    if HTTP_PORT in taken:
        if ings:
            owner = next(t.gateway for t in tables if HTTP_PORT in t.ports())
            notes.append(f"port {HTTP_PORT} belongs to {owner}: not served: "
                         + ", ".join(ref(i) for i in ings))
    else:
        ingress = compile_ingresses(ings)
    ing_eps = resolve_endpoints(ingress, state.services, state.endpoint_slices) if ingress else {}
    gw_eps: dict = {}
    extra: list[str] = [f"    # note: {n}" for n in notes]
    for t in tables:
        eps = resolve_gateway_endpoints(t, state.services, state.endpoint_slices)
        gw_eps.update(eps)
        extra += render_gateway_http(t, eps, listen_host)
    listen = f"{listen_host}:{HTTP_PORT}" if listen_host else str(HTTP_PORT)
    title = "Ingress " + ", ".join(f"{i.meta.namespace}/{i.meta.name}" for i in ings) if ings else "no Ingress"
    if tables:
        title += "; " + ", ".join(t.gateway for t in tables)

    def text(generation: str) -> str:
        runtime = NginxRuntime(listen=listen, request_id_from_client=True, status_listen=STATUS_LISTEN,
                               generation=generation, error_log="error.log notice")
        return render_nginx_conf_from_table(ingress, ing_eps, runtime, title, extra)

    generation = hashlib.sha256(text("").encode()).hexdigest()[:12]
    return ControllerConfig(ingress, ing_eps, tuple(tables), gw_eps, text(generation), generation,
                            tuple(notes))


def ingress_entry_points(state, node_ips) -> set[tuple[str, int]]:
    """(address, port) pairs whose connections reach the controller's nginx: its Service's
    load balancer addresses, cluster IP and node ports, and its pods' own addresses."""
    out: set[tuple[str, int]] = set()
    for p in controller_pods(state):
        out.add((p.pod_ip, HTTP_PORT))
    for s in state.services:
        if s.meta.namespace != NAMESPACE or s.meta.name != NAME:
            continue
        for sp in s.ports:
            if s.cluster_ip and s.cluster_ip != "None":
                out.add((s.cluster_ip, sp.port))
            for lb in s.load_balancer_ingress:
                if lb.ip:
                    out.add((lb.ip, sp.port))
            if sp.node_port:
                out.update((ip, sp.node_port) for ip in node_ips)
    return out
