"""Which backend answers an HTTP request, for networking.k8s.io/v1 Ingress objects.

The lab's ingress controller is nginx configured the way ingress-nginx
configures it, so this module computes the answer in two steps that mirror
nginx: compile_ingresses() merges every Ingress into a routing table of
servers (one per host) holding locations (nginx `location` blocks), and
route_request() picks a server by Host and a location by path exactly as
nginx does. nginx_conf.py renders the same table, and the tests send the same
requests through the real nginx, so the simulation and the kernel lab agree.

The rules this follows
----------------------
Hosts.  A rule's host is matched against the request's Host header with its
port and one trailing dot removed, case-insensitively. "foo.bar.com" matches
only itself. "*.foo.com" matches exactly one more DNS label: bar.foo.com, but
neither foo.com nor baz.bar.foo.com (nginx gets this as the regex
~^(?<subdomain>[\\w-]+)\\.foo\\.com$, as ingress-nginx writes it; a plain nginx
"*.foo.com" would match any depth). A rule without a host goes to the
catch-all server "_", which also answers every host no rule names, and
requests that carry no host at all. A request whose host has its own server
is answered by that server alone: it never falls back to host-less rules.

Paths.  The request path is what nginx matches: the query string and any
fragment removed, %XX escapes decoded, "//" merged, "." and ".." resolved
(".." above the root is a 400 Bad Request). Matching is case-sensitive.
  Exact  /foo     matches /foo only (not /foo/, not /FOO): `location = /foo`.
  Prefix /foo     matches /foo, /foo/ and /foo/..., element by element (not
                  /foobar); a trailing slash in the Ingress path is ignored,
                  so Prefix /foo/ is the same as Prefix /foo. nginx has no
                  element-wise prefix, so ingress-nginx writes it as two
                  locations: `location = /foo` and `location /foo/`.
                  Prefix / matches everything: `location /`.
  ImplementationSpecific (the lab's controller, like ingress-nginx without
                  annotations): a plain nginx prefix location, character by
                  character: /foo matches /foobar too. An empty path means /.
                  If such a path ends in a slash, say /docs/, a request for
                  exactly /docs gets nginx's 301 redirect to /docs/.
Longest match wins; an Exact path wins a tie with a Prefix path of the same
text (it is the more specific; nginx tries `=` locations first). Concretely:
an exact location equal to the path wins; otherwise the longest prefix
location the path starts with.

Defaults and misses.  Every server has a root location `/`. When no Prefix /
rule claims it, it serves the server's default backend: for a host, the
defaultBackend of the Ingress that first named the host; for the catch-all
server, the defaultBackend of the first Ingress that has one. Without one,
nginx answers 404 itself.

Several Ingress objects (the ingress-nginx merge).  Ingresses are taken in
the order given, which stands for their creationTimestamp (ingress-nginx
sorts oldest first; manifests carry no timestamps, so the order of files and
documents is the order of creation). All rules for one host, from every
Ingress, share one server. When two paths produce the same nginx location
(same host, same kind, same text -- Prefix /foo and Prefix /foo/ included),
the first one wins and the later one is ignored, as ingress-nginx ignores
"location already configured". An Exact path always claims its `= /p` over
the exact half of a Prefix path, whatever the order.
  Two deliberate differences from ingress-nginx, both toward the Ingress
  specification: (1) ingress-nginx keeps a Prefix path's trailing slash in its
  exact location (`= /aaa/bbb/`) and so fails the conformance scenario
  "Prefix /aaa/bbb/ matches /aaa/bbb"; the lab strips it first. (2) In
  ingress-nginx only a rule-less Ingress sets the catch-all default, so an
  Ingress with rules and a defaultBackend answers unknown hosts with 404; the
  lab lets that defaultBackend catch them, as the Ingress documentation
  describes ("if none of the hosts or paths match ... the default backend").

Backends.  A Service backend is named "SERVICE:PORT" with the port number, or
the port name when the Ingress names the port. A `resource` backend is not a
Service; the lab's controller (like ingress-nginx) skips such a path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union
from urllib.parse import unquote_to_bytes

from labkit.errors import ManifestError, Problem
from labkit.model.objects import Ingress, IngressBackend, ref

CATCH_ALL = "_"  # nginx's conventional name for the default server

# The one-label wildcard as ingress-nginx's buildServerName writes it.
_LABEL = r"[\w-]+"
_LABEL_RE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, order=True)
class Backend:
    """A Service port an Ingress sends traffic to."""

    namespace: str
    service: str
    port: Union[int, str]  # the port number, or its name when the Ingress names it

    def __str__(self) -> str:
        return f"{self.service}:{self.port}"

    @property
    def key(self) -> str:
        """Unique across namespaces: "default/web:80"."""
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Location:
    """One nginx location block: `= /foo` (exact) or `/foo/` (prefix)."""

    exact: bool
    path: str
    backend: Optional[Backend]  # None: nginx answers 404 itself
    via: str  # "rule" or "defaultBackend" or "none"
    source: str = ""  # "Ingress default/web, spec.rules[0].http.paths[1]"
    path_type: str = ""  # the Ingress pathType it came from ("" for the root default)
    redirect: bool = False  # an ImplementationSpecific "/p/": a request for "/p" gets 301
    guard_for: str = ""  # set on an `= /p` added so that nginx does not redirect /p to "= /p/"

    @property
    def nginx(self) -> str:
        """The location's nginx spelling: "= /foo" or "/foo/"."""
        return f"= {self.path}" if self.exact else self.path


@dataclass(frozen=True)
class Server:
    """One nginx server block: a host (or "_") and its locations."""

    host: str  # "foo.bar.com", "*.foo.com", or CATCH_ALL
    locations: tuple[Location, ...]

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")


@dataclass(frozen=True)
class RoutingTable:
    """Every Ingress merged: what the ingress controller serves."""

    servers: tuple[Server, ...]  # exact hosts, then wildcards, then CATCH_ALL last
    default: Optional[Backend]  # the catch-all default backend

    def server(self, host: str) -> Server:
        for s in self.servers:
            if s.host == host:
                return s
        raise KeyError(host)

    def backends(self) -> tuple[Backend, ...]:
        """Every backend any location uses, sorted, once."""
        seen = {loc.backend for s in self.servers for loc in s.locations if loc.backend}
        return tuple(sorted(seen, key=lambda b: (b.namespace, b.service, isinstance(b.port, str), str(b.port))))


@dataclass(frozen=True)
class RouteResult:
    """What the ingress controller does with one request."""

    status: int  # 200 (proxied), 404, 301 (nginx's slash redirect), 400 (bad path)
    via: str  # "rule", "defaultBackend", "none"
    backend: Optional[Backend]
    server: str = ""  # the server that answered ("_" for the catch-all)
    location: str = ""  # its location, as nginx writes it ("= /foo", "/foo/")
    path: str = ""  # the path nginx matched (normalized)
    source: str = ""  # the Ingress rule that supplied the location
    redirect_to: str = ""  # for 301: the path nginx redirects to

    def to_json(self) -> dict:
        """The `labkit ingress route --json` answer (a 301 or 400 has backend null)."""
        return {"backend": str(self.backend) if self.backend else None,
                "via": self.via, "status": self.status}


# --- the request, as nginx sees it ------------------------------------------------


def normalize_host(host: Optional[str]) -> str:
    """The Host header as nginx matches it: lower case, no port, no trailing dot.

    "" means the request carried no host name.
    """
    if not host:
        return ""
    h = host.strip().lower()
    if h.startswith("["):  # an IPv6 literal: no server name can match it
        return h.split("]", 1)[0] + "]"
    h = h.rsplit(":", 1)[0] if ":" in h else h
    return h[:-1] if h.endswith(".") else h


def normalize_path(raw: str) -> Optional[str]:
    """The request path as nginx matches it against locations; None if nginx says 400.

    Drops the query string and fragment, decodes %XX, merges slashes and
    resolves "." and ".." segments.
    """
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        return None  # a broken escape
    try:
        path = unquote_to_bytes(path).decode("utf-8", "surrogateescape")
    except ValueError:
        return None
    if "\x00" in path:
        return None
    out: list[str] = []
    parts = path.split("/")[1:]
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "" and not last:
            continue  # "//" merged
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if not out or out == [""]:
                return None  # above the root
            out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    return "/" + "/".join(out)


# --- compiling Ingress objects into the routing table ----------------------------


def backend_of(ing: Ingress, b: Optional[IngressBackend]) -> Optional[Backend]:
    """An Ingress backend as the lab names it; None for a resource backend."""
    if b is None or b.service is None:
        return None
    s = b.service
    return Backend(ing.meta.namespace, s.name, s.port_name or s.port_number)


@dataclass
class _ServerDraft:
    host: str
    default: Optional[Backend]
    default_from: str
    locations: dict  # (exact, path) -> Location


def _check(ingresses: Sequence[Ingress]) -> None:
    """What the API server would refuse and the routing depends on."""
    problems = []
    for ing in ingresses:
        for i, rule in enumerate(ing.rules):
            for j, p in enumerate(rule.paths):
                at = f"spec.rules[{i}].http.paths[{j}].path"
                if p.path and not p.path.startswith("/"):
                    problems.append(Problem(ref(ing), at, f"must be an absolute path (starting with /), "
                                            f"got {p.path!r}", f'write it as "/{p.path.lstrip("/")}"'))
                elif any(c.isspace() or not c.isprintable() for c in p.path):
                    problems.append(Problem(ref(ing), at, f"{p.path!r} contains a space or a control "
                                            "character, which a request path never does",
                                            "percent-encode it, or remove it"))
    if problems:
        raise ManifestError(problems)


def _path_locations(path_type: str, path: str, backend: Backend, source: str) -> list[Location]:
    """The nginx locations one Ingress path becomes."""
    if path_type == "Exact":
        return [Location(True, path, backend, "rule", source, path_type)]
    if path_type == "Prefix":
        p = path.rstrip("/")
        if not p:
            return [Location(False, "/", backend, "rule", source, path_type)]
        return [Location(True, p, backend, "rule", source, path_type),
                Location(False, p + "/", backend, "rule", source, path_type)]
    p = path or "/"  # ImplementationSpecific: nginx's own prefix
    return [Location(False, p, backend, "rule", source, path_type, redirect=p != "/" and p.endswith("/"))]


def compile_ingresses(ingresses: Iterable[Ingress]) -> RoutingTable:
    """Merge Ingress objects (oldest first) into servers and locations, as ingress-nginx does."""
    ings = list(ingresses)
    _check(ings)
    default, default_from = None, ""
    for ing in ings:
        default = backend_of(ing, ing.default_backend)
        if default:
            default_from = ref(ing)
            break
    drafts: dict[str, _ServerDraft] = {}
    claims: list[tuple[str, Location]] = []
    for ing in ings:
        own = backend_of(ing, ing.default_backend)
        for i, rule in enumerate(ing.rules):
            host = rule.host or CATCH_ALL
            if host not in drafts:
                if host == CATCH_ALL:
                    drafts[host] = _ServerDraft(host, default, default_from, {})
                else:
                    drafts[host] = _ServerDraft(host, own, ref(ing) if own else "", {})
            for j, p in enumerate(rule.paths):
                b = backend_of(ing, p.backend)
                if b is None:
                    continue  # a resource backend: not something nginx can proxy to
                source = f"{ref(ing)}, spec.rules[{i}].http.paths[{j}]"
                claims += [(host, loc) for loc in _path_locations(p.path_type, p.path, b, source)]
    drafts.setdefault(CATCH_ALL, _ServerDraft(CATCH_ALL, default, default_from, {}))
    # Exact paths claim their `= /p` before anything else; otherwise first come, first served.
    ordered = [c for c in claims if c[1].path_type == "Exact"] + \
        [c for c in claims if c[1].path_type != "Exact"]
    for host, loc in ordered:
        drafts[host].locations.setdefault((loc.exact, loc.path), loc)
    servers = []
    for d in drafts.values():
        if (False, "/") not in d.locations:
            via = "defaultBackend" if d.default else "none"
            d.locations[(False, "/")] = Location(False, "/", d.default, via, d.default_from)
        _guard_exact_slashes(d.locations)
        locs = sorted(d.locations.values(), key=lambda l: (l.path, not l.exact))
        servers.append(Server(d.host, tuple(locs)))
    servers.sort(key=lambda s: (s.host == CATCH_ALL, s.wildcard, s.host))
    return RoutingTable(tuple(servers), default)


def _guard_exact_slashes(locations: dict) -> None:
    """Keep nginx from redirecting /foo to an Exact /foo/.

    nginx answers a request for /foo with a 301 to /foo/ whenever a location
    named /foo/ proxies (even `= /foo/`) and no location is named /foo. The
    Ingress says Exact /foo/ does not match /foo, so an `= /foo` is added that
    does what the prefix search would do. ImplementationSpecific /foo/ keeps
    nginx's redirect: that is what the lab's controller does with it.
    """
    for loc in list(locations.values()):
        if not (loc.exact and loc.path != "/" and loc.path.endswith("/")):
            continue
        bare = loc.path[:-1]
        if (True, bare) in locations or (False, loc.path) in locations and locations[(False, loc.path)].redirect:
            continue
        target = max((l for l in locations.values() if not l.exact and bare.startswith(l.path)),
                     key=lambda l: len(l.path))
        locations[(True, bare)] = Location(True, bare, target.backend, target.via, target.source,
                                           target.path_type, guard_for=loc.path)


# --- routing one request ----------------------------------------------------------


def host_matches(pattern: str, host: str) -> bool:
    """An Ingress host against a normalized request host ("*." covers one label)."""
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and bool(_LABEL_RE.fullmatch(host[: -len(suffix)]))
    return pattern == host


def select_server(table: RoutingTable, host: Optional[str]) -> Server:
    """nginx's order: the exact name, then a wildcard (regex) name, then the default server."""
    h = normalize_host(host)
    if h:
        for wildcard in (False, True):
            for s in table.servers:
                if s.host != CATCH_ALL and s.wildcard == wildcard and host_matches(s.host, h):
                    return s
    return table.server(CATCH_ALL)


def select_location(server: Server, path: str) -> tuple[Location, bool]:
    """nginx's order: an equal `=` location, else the longest prefix (or its slash redirect)."""
    for loc in server.locations:
        if loc.exact and loc.path == path:
            return loc, False
    for loc in server.locations:
        if loc.redirect and loc.path == path + "/":
            return loc, True
    best = max((loc for loc in server.locations if not loc.exact and path.startswith(loc.path)),
               key=lambda loc: len(loc.path))
    return best, False


def route_request(table: RoutingTable, host: Optional[str], path: str) -> RouteResult:
    """The answer for one request: status, backend, and which rule gave it."""
    clean = normalize_path(path)
    server = select_server(table, host)
    if clean is None:
        return RouteResult(400, "none", None, server.host, "", path)
    loc, redirect = select_location(server, clean)
    if redirect:
        return RouteResult(301, "rule", None, server.host, loc.nginx, clean, loc.source, loc.path)
    status = 200 if loc.backend else 404
    return RouteResult(status, loc.via, loc.backend, server.host, loc.nginx, clean, loc.source)


def route(ingresses: Iterable[Ingress], host: Optional[str], path: str) -> RouteResult:
    """compile_ingresses + route_request, for one question."""
    return route_request(compile_ingresses(ingresses), host, path)


def render_routing_table(table: RoutingTable) -> str:
    """The table as a learner reads it: one line per location, grouped by server."""
    lines = []
    for s in table.servers:
        lines.append(f"server {s.host}" + (" (catch-all)" if s.host == CATCH_ALL else ""))
        for loc in s.locations:
            target = str(loc.backend) if loc.backend else "404"
            how = "" if loc.via == "rule" else f"  ({loc.via})"
            lines.append(f"  location {loc.nginx:<24} -> {target}{how}")
    return "\n".join(lines) + "\n"
