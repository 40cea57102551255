"""The ingress controller pod in the simulation: it answers as the kernel lab's nginx does.

The controller's nginx.conf is rendered exactly as in the kernel lab
(labkit.controllers.ingress.controller); a change of its text is a reload,
which (as for nginx's new worker) starts every upstream's round robin over.
A request reaching the controller pod is routed with the same tables nginx
was rendered from -- routing.py for Ingress, gateway_conf.py for a
Gateway's HTTPRoutes, its split_clients reproduced with nginx's MurmurHash2
on the request id -- then proxied: the simulation walks a real connection
from the controller pod to the chosen endpoint (so kube-proxy, routing and
any policy on the way have their say), and the backend pod's netexec
answers. nginx's own answers (404, 500, 502, 503) carry its own error pages.

Pure apart from the SimLab it is given (no clock, no I/O).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from labkit.controllers.ingress.controller import HTTP_PORT, ControllerConfig, render_controller_conf
from labkit.controllers.ingress.gateway import HTTPRequest
from labkit.controllers.ingress.gateway_conf import route_table_request
from labkit.controllers.ingress.nginx_conf import PROXY_HEADERS
from labkit.controllers.ingress.routing import normalize_host, route_request

_REASONS = {301: "301 Moved Permanently", 400: "400 Bad Request", 404: "404 Not Found",
            500: "500 Internal Server Error", 502: "502 Bad Gateway",
            503: "503 Service Temporarily Unavailable"}


def render_error_page(status: int) -> str:
    """The body nginx sends with its own error response (server_tokens off)."""
    title = _REASONS.get(status, str(status))
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


@dataclass(frozen=True)
class Decision:
    """What nginx decided for one request: answer itself, or proxy to one of `upstream`."""

    status: int  # nginx's own status when `upstream` is empty
    upstream_key: str = ""  # the round robin's name ("ing:default/web:80", "gw:shop/api-v1:80")
    upstream: tuple[str, ...] = ()  # "IP:port" of the ready endpoints, in nginx's order
    what: str = ""  # one line for the learner


def request_headers(host_header: str, client_ip: str, request_id: str,
                    extra: Mapping[str, str], server_port: int = HTTP_PORT) -> tuple[tuple[str, str], ...]:
    """The headers nginx sends upstream (sorted by name): its proxy_set_header values, then the
    client's other headers (the ones it sets replace the client's; Connection is dropped)."""
    host = normalize_host(host_header)
    values = {"$host": host, "$remote_addr": client_ip, "$server_port": str(server_port),
              "$scheme": "http", "$req_id": request_id, '""': ""}
    out = []
    for name, value in PROXY_HEADERS:
        value = "$req_id" if name == "X-Request-ID" else value
        v = values[value]
        if v:
            out.append((name, v))
    taken = {n.lower() for n, _ in PROXY_HEADERS} | {"host", "connection"}
    out += [(k, v) for k, v in extra.items() if k.lower() not in taken]
    return tuple(sorted(out, key=lambda kv: kv[0].lower()))


def decide(conf: ControllerConfig, host_header: str, path: str, headers: Mapping[str, str],
           request_id: str, port: int = HTTP_PORT) -> Decision:
    """The routing half of nginx: which upstream (or which status) answers."""
    gw = conf.gateway_on(port)
    if gw is not None:
        a = route_table_request(gw, HTTPRequest(host_header, path, dict(headers), "GET", port), request_id)
        if a.status != 200:
            return Decision(a.status, what=f"{gw.gateway}: {a.status}")
        eps = conf.gateway_endpoints.get(a.share.key, ())
        if not eps:
            return Decision(503, what=f"{a.share.key} has no ready endpoint")
        return Decision(200, "gw:" + a.share.key, eps, f"{a.entry.route} rules[{a.entry.rule}] -> {a.share.key}")
    if conf.ingress is None or port != HTTP_PORT:
        return Decision(0, what="nothing listens on this port")  # connection refused
    r = route_request(conf.ingress, host_header, path)
    if r.status != 200:
        return Decision(r.status, what=f"server {r.server} location {r.location}: {r.status}")
    eps = conf.ingress_endpoints.get(r.backend.key, ())
    if not eps:
        return Decision(503, what=f"{r.backend} has no ready endpoint")
    return Decision(200, "ing:" + r.backend.key, eps, f"{r.source} -> {r.backend}")


@dataclass
class SimController:
    """The controller's nginx state between requests: its configuration and round robins."""

    conf: Optional[ControllerConfig] = None
    round_robin: dict = field(default_factory=dict)  # upstream key -> requests sent so far
    reloads: int = 0

    def sync(self, state) -> bool:
        """Render the configuration; a new text is a reload (round robins start over)."""
        conf = render_controller_conf(state)
        if self.conf is not None and conf.text == self.conf.text:
            return False
        if self.conf is not None:
            self.reloads += 1
        self.conf, self.round_robin = conf, {}
        return True

    def order(self, d: Decision) -> list[str]:
        """The endpoints in the order nginx tries them for this request (round robin, with
        proxy_next_upstream moving to the next on a refused connection)."""
        n = self.round_robin.get(d.upstream_key, 0)
        self.round_robin[d.upstream_key] = n + 1
        k = n % len(d.upstream)
        return list(d.upstream[k:] + d.upstream[:k])


def new_request_id(rng) -> str:
    """An id like nginx's $request_id (32 hex digits), from the lab's ingress rng."""
    return "%032x" % rng.getrandbits(128)


def ingress_http(lab, src, destination: str, x, path: str, host: Optional[str],
                 headers: Mapping[str, str], request_id: str):
    """The ProbeResult of an HTTP request that reached the controller pod (exchange `x`)."""
    from labkit.backends.base import ANSWERED, NO_REPLY, ProbeResult
    from labkit.backends.sim.lab import Endpoint
    from labkit.workloads.netexec import answer_http

    ctrl_key = lab._owner_pod(x.server_ns)
    dst_host, dst_port = destination.rsplit(":", 1)
    host_header = host if host else f"{dst_host}:{dst_port}"
    sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "x-request-id")}
    client_ip, client_port = x.seen_as.rsplit(":", 1)
    local = f"{src.ip}:{x.sport}"
    conf = lab._ingress.conf
    d = decide(conf, host_header, path, sent, request_id, HTTP_PORT)
    common = dict(reply_from=x.reply_from, client_seen_as=x.seen_as, client_address=local, kind="http")
    if not d.upstream:
        if d.status == 0:
            return ProbeResult(src.label, destination, "tcp", "refused", detail="refused")
        return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=ctrl_key, status=d.status,
                           body=render_error_page(d.status), detail=f"nginx: {d.what}", **common)
    pod = lab._plan().pod(*ctrl_key.split("/", 1))
    me = Endpoint(ctrl_key, pod.netns, pod.ip, pod.node)
    upstream_headers = request_headers(host_header, client_ip, request_id, sent)
    for addr in lab._ingress.order(d):
        ip, port = addr.rsplit(":", 1)
        up = lab._tcp(me, ip, int(port), None, None, "http")
        if up.verdict != ANSWERED:
            continue  # proxy_next_upstream: nginx tries the next endpoint
        backend = lab._owner_pod(up.server_ns)
        status, body = answer_http(path, backend.split("/", 1)[1] if backend else "", up.seen_as,
                                   lab.go_now(up.server_ns))
        return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=backend, status=status,
                           body=body, headers=upstream_headers, detail=f"nginx: {d.what} ({addr})", **common)
    return ProbeResult(src.label, destination, "tcp", ANSWERED, answered_by=ctrl_key, status=502,
                       body=render_error_page(502), detail=f"nginx: no endpoint of {d.upstream_key} answered",
                       **common)
