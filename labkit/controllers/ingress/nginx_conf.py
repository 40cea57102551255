"""The nginx.conf the lab's ingress controller pod runs, rendered from Ingress objects.

The same routing table that routing.py answers from (compile_ingresses)
becomes one nginx `server` per host and one `location` per table entry, the
way ingress-nginx renders its nginx.conf:

  Exact /foo               location = /foo { ... }
  Prefix /foo (or /foo/)   location = /foo { ... }  and  location /foo/ { ... }
  ImplementationSpecific   location /foo { ... }     (nginx's own prefix match)
  host foo.bar.com         server_name foo.bar.com;
  host *.foo.com           server_name ~^(?<subdomain>[\\w-]+)\\.foo\\.com$;  (one label)
  no host, unknown hosts   server_name _; listen ... default_server;
  no rule, no default      location / { return 404; }

Each location proxies to an `upstream` holding the Service's ready endpoint
addresses (IP:port, as ingress-nginx does: it bypasses the ClusterIP), and
tells the backend who asked: X-Forwarded-For and X-Real-IP carry the client
address as nginx saw it, X-Forwarded-Host the Host it asked for. A backend
with no ready endpoint answers 503, as ingress-nginx does.

Paths in the file (pid, temp directories) are relative: run it as
`nginx -p DIR -c nginx.conf -e stderr`, and reload with `nginx -p DIR -s reload`.
Rendering is pure; starting nginx is the shell's job.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from labkit.controllers.ingress.routing import (
    CATCH_ALL, Backend, Location, RoutingTable, Server, compile_ingresses,
)
from labkit.model.objects import EndpointSlice, Ingress, Service

_BARE = re.compile(r"[A-Za-z0-9/._~%!*'()@:+,=-]+")

PROXY_HEADERS = (
    ("Host", "$host"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Host", "$host"),
    ("X-Forwarded-Port", "$server_port"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Scheme", "$scheme"),
    ("X-Request-ID", "$request_id"),
    ("Connection", '""'),
)


@dataclass(frozen=True)
class NginxRuntime:
    """Where the controller's nginx listens and keeps its files (relative to -p)."""

    listen: str = "80"  # "80", or "127.0.0.1:18080" for a test on loopback
    pid: str = "nginx.pid"
    temp_dir: str = "tmp"
    error_log: str = "stderr notice"
    access_log: str = "off"
    worker_processes: int = 1
    worker_connections: int = 256
    # The lab's controller (labkit.controllers.ingress.controller) also sets these:
    request_id_from_client: bool = False  # X-Request-ID: the client's, else nginx's ($req_id)
    status_listen: str = ""  # e.g. "127.0.0.1:10246": /configuration/generation answers `generation`
    generation: str = ""


def upstream_name(backend: Backend) -> str:
    """ingress-nginx's upstream name: NAMESPACE-SERVICE-PORT."""
    return f"{backend.namespace}-{backend.service}-{backend.port}"


def endpoint_address(ip: str, port: int) -> str:
    """"10.244.1.5:8080", or "[fd00::5]:8080" for IPv6."""
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def quote_path(path: str) -> str:
    """A location path as nginx reads it: bare when safe, else double-quoted."""
    if _BARE.fullmatch(path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_name(host: str) -> str:
    """The server_name for an Ingress host (ingress-nginx's buildServerName)."""
    if host.startswith("*."):
        return r"~^(?<subdomain>[\w-]+)\." + re.escape(host[2:]).replace(r"\-", "-") + "$"
    return host


def resolve_endpoints(table: RoutingTable, services: Iterable[Service],
                      slices: Iterable[EndpointSlice]) -> dict[str, tuple[str, ...]]:
    """Backend.key -> the ready endpoint addresses nginx proxies to.

    The Ingress names a Service port (by number or name); the Service port's
    name picks the EndpointSlice port, whose number is the pod's port.
    Unknown Services and ports give an empty tuple (the location answers 503).
    """
    svcs = {(s.meta.namespace, s.meta.name): s for s in services}
    slices = list(slices)
    out: dict[str, tuple[str, ...]] = {}
    for b in table.backends():
        svc = svcs.get((b.namespace, b.service))
        sp = None
        if svc is not None:
            sp = next((p for p in svc.ports if (p.port == b.port if isinstance(b.port, int)
                                                else p.name == b.port)), None)
        addrs: list[str] = []
        if sp is not None:
            for sl in slices:
                if sl.meta.namespace != b.namespace or sl.service_name != b.service:
                    continue
                if sl.address_type not in ("IPv4", "IPv6"):
                    continue
                port = next((p.port for p in sl.ports if p.name == sp.name and p.protocol == sp.protocol
                             and p.port is not None), None)
                if port is None:
                    continue
                for ep in sl.endpoints:
                    if ep.conditions.ready is False:
                        continue
                    addrs += [endpoint_address(ip, port) for ip in ep.addresses]
        out[b.key] = tuple(sorted(dict.fromkeys(addrs)))
    return out


def _upstream_names(backends: Sequence[Backend]) -> dict[Backend, str]:
    names: dict[Backend, str] = {}
    used: set[str] = set()
    for b in backends:
        name, n = upstream_name(b), 1
        while name in used:  # "a-b" + "c" and "a" + "b-c" would collide
            n += 1
            name = f"{upstream_name(b)}-{n}"
        used.add(name)
        names[b] = name
    return names


def _location(loc: Location, upstreams: Mapping[Backend, str],
              endpoints: Mapping[str, Sequence[str]]) -> list[str]:
    where = f"= {quote_path(loc.path)}" if loc.exact else quote_path(loc.path)
    if loc.via == "defaultBackend":
        why = f"no rule matched: the defaultBackend of {loc.source}"
    elif loc.via == "none":
        why = "no rule matched and there is no default backend: 404"
    else:
        why = f"{loc.source} ({loc.path_type})"
    lines = [f"        location {where} {{", f"            # {why}"]
    if loc.guard_for:
        lines.append(f"            # (written out so that nginx does not redirect {loc.path} to {loc.guard_for})")
    if loc.backend is None:
        lines.append("            return 404;")
    elif not endpoints.get(loc.backend.key):
        lines += [f"            # {loc.backend} has no ready endpoint", "            return 503;"]
    else:
        lines.append(f"            proxy_pass http://{upstreams[loc.backend]};")
    lines.append("        }")
    return lines


def _server(s: Server, listen: str, upstreams: Mapping[Backend, str],
            endpoints: Mapping[str, Sequence[str]]) -> list[str]:
    catch_all = s.host == CATCH_ALL
    what = "the catch-all server: host-less rules, unknown hosts, no Host" if catch_all else f"host {s.host}"
    head = f"    # {what}"
    lines = [head, "    server {",
             f"        listen {listen}{' default_server' if catch_all else ''};",
             f"        server_name {server_name(s.host)};", ""]
    for loc in s.locations:
        lines += _location(loc, upstreams, endpoints)
    lines.append("    }")
    return lines


def render_nginx_conf_from_table(table: Optional[RoutingTable], endpoints: Mapping[str, Sequence[str]],
                                 runtime: NginxRuntime = NginxRuntime(), title: str = "",
                                 extra: Sequence[str] = ()) -> str:
    """nginx.conf for a routing table; endpoints maps Backend.key -> ["IP:port", ...].

    table None: no Ingress server at all (the port belongs to a Gateway);
    extra: more lines for the http{} block (a Gateway's, from gateway_conf).
    """
    backends = table.backends() if table is not None else ()
    upstreams = _upstream_names(backends)
    t = runtime.temp_dir
    out = [
        "# nginx.conf of the lab's ingress controller, rendered by labkit" + (f" from {title}" if title else ""),
        "# (as ingress-nginx renders it). Generated: edit the Ingress objects, not this file.",
        f"worker_processes {runtime.worker_processes};",
        f"pid {runtime.pid};",
        f"error_log {runtime.error_log};",
        "daemon off;",
        "",
        "events {",
        f"    worker_connections {runtime.worker_connections};",
        "}",
        "",
        "http {",
        f"    access_log {runtime.access_log};",
        "    default_type text/plain;",
        "    server_tokens off;",
        "    server_names_hash_bucket_size 256;",
        "    server_names_hash_max_size 4096;",
        f"    client_body_temp_path {t}/client_body;",
        f"    proxy_temp_path {t}/proxy;",
        f"    fastcgi_temp_path {t}/fastcgi;",
        f"    uwsgi_temp_path {t}/uwsgi;",
        f"    scgi_temp_path {t}/scgi;",
        "",
        "    # Tell the backend who asked, as nginx saw it.",
        "    proxy_http_version 1.1;",
    ]
    headers = PROXY_HEADERS
    if runtime.request_id_from_client:  # ingress-nginx's $req_id
        out += ["    map $http_x_request_id $req_id {", "        default $http_x_request_id;",
                '        "" $request_id;', "    }"]
        headers = tuple((n, "$req_id" if n == "X-Request-ID" else v) for n, v in PROXY_HEADERS)
    out += [f"    proxy_set_header {name} {value};" for name, value in headers]
    if runtime.status_listen:
        out += ["", "    # The controller's own status server (ingress-nginx has one on 127.0.0.1:10246):",
                "    # labkit asks it which configuration the workers run, after a reload.",
                "    server {", f"        listen {runtime.status_listen};",
                "        location = /configuration/generation {",
                f'            return 200 "{runtime.generation}";', "        }",
                "        location / { return 404; }", "    }"]
    for b in backends:
        addrs = endpoints.get(b.key, ())
        if not addrs:
            continue
        out += ["", f"    # Service {b.namespace}/{b.service}, port {b.port}",
                f"    upstream {upstreams[b]} {{"]
        out += [f"        server {a};" for a in addrs]
        out.append("    }")
    for s in (table.servers if table is not None else ()):
        out.append("")
        out += _server(s, runtime.listen, upstreams, endpoints)
    out += list(extra)
    out.append("}")
    return "\n".join(out) + "\n"


def render_nginx_conf(ingresses: Iterable[Ingress], endpoints: Mapping[str, Sequence[str]],
                      runtime: NginxRuntime = NginxRuntime()) -> str:
    """nginx.conf for Ingress objects (oldest first), proxying to the given endpoints."""
    ings = list(ingresses)
    names = ", ".join(f"{i.meta.namespace}/{i.meta.name}" for i in ings)
    title = f"Ingress {names}" if ings else "no Ingress"
    return render_nginx_conf_from_table(compile_ingresses(ings), endpoints, runtime, title)
