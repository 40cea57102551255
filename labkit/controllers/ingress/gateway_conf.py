"""A Gateway's HTTPRoutes as the lab's nginx serves them: a location table, and its nginx text.

The table is computed FROM the model (gateway.py), so nginx cannot tell a
different story: for every (listener port, server name, location) nginx can
select, the model ranks the route matches whose hostname and path take such
a request (ranked_candidates); the location keeps that ranked list. A request
then gets the first entry whose header, query and method conditions hold --
in nginx, one `map` per condition and one per location that picks the first
entry (regexes are tried in order) -- and the entry's rule shares the
request among its backendRefs with nginx's `split_clients`, keyed on the
request id as nginx-gateway-fabric does. The simulation answers from this same
table (route_table_request), hashing the same key with nginx's MurmurHash2.

Server names.  Every hostname of the listeners and of the attached routes
gets a server (nginx's `*.example.com` covers one or more labels, as Gateway
API's wildcard does), plus the port's catch-all server. A server's answers
are the model's for a representative host: the name itself, or
"labkit-any.<suffix>" for a wildcard, "labkit-unknown.invalid" for the
catch-all.

Locations.  Exact /p gives `= /p`; PathPrefix /p gives `= /p` and `/p/`;
`/` always exists. Any location ending in a slash also gets the bare `= /p`
so that nginx never redirects /p to /p/.

What differs from the model (documented for the learner): nginx's $arg_NAME
finds a query parameter by a case-insensitive name and compares its raw
(still percent-encoded) value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from labkit.controllers.ingress.gateway import (
    HTTPRequest, _invalid, ranked_candidates, select_listener,
)
from labkit.controllers.ingress.nginx_conf import endpoint_address, quote_path
from labkit.controllers.ingress.routing import normalize_host, normalize_path
from labkit.model.gateway import Gateway, HTTPBackendRef, HTTPRoute, HTTPRouteMatch
from labkit.model.objects import EndpointSlice, Namespace, Service, ref

REP_TOKEN = "~labkit-any~"  # a path segment no route names: stands for "anything below"
WILDCARD_LABEL = "labkit-any"
UNKNOWN_HOST = "labkit-unknown.invalid"
STATUS_404 = "lk-status-404"  # split/map values that mean "answer this status yourself"
STATUS_500 = "lk-status-500"
STATUS_503 = "lk-status-503"


@dataclass(frozen=True)
class Share:
    """One backendRef of a rule: where its part of the traffic goes."""

    service: str  # "SERVICE:PORT" ("" when invalid)
    namespace: str
    weight: int
    percent: int  # nginx split_clients hundredths of a percent; 0 means "*" (the rest)
    invalid: str = ""  # why it answers 500

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}"


@dataclass(frozen=True)
class Entry:
    """One ranked match: its extra conditions, and the rule's shares (empty: 500)."""

    route: str  # "HTTPRoute shop/storefront"
    rule: int
    match: int
    conditions: tuple[tuple[str, str, str], ...]  # ("header"|"query"|"method", name, value)
    shares: tuple[Share, ...]
    why_500: str = ""


@dataclass(frozen=True)
class GwLocation:
    exact: bool
    path: str
    entries: tuple[Entry, ...]  # best first; nothing matched after them: 404

    @property
    def nginx(self) -> str:
        return f"= {self.path}" if self.exact else self.path


@dataclass(frozen=True)
class GwServer:
    port: int
    host: str  # "" for the port's catch-all server
    locations: tuple[GwLocation, ...]


@dataclass(frozen=True)
class GatewayTable:
    gateway: str  # "Gateway infra/lab-gateway"
    servers: tuple[GwServer, ...]

    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({s.port for s in self.servers}))

    def shares(self) -> tuple[Share, ...]:
        seen = {}
        for s in self.servers:
            for loc in s.locations:
                for e in loc.entries:
                    for sh in e.shares:
                        if not sh.invalid:
                            seen[sh.key] = sh
        return tuple(seen[k] for k in sorted(seen))


# --- nginx's split_clients, exactly ---------------------------------------------------


def murmur_hash2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (src/core/ngx_murmurhash.c)."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    n = len(data)
    h = n & mask
    i = 0
    while n - i >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def split_percents(weights: Sequence[int]) -> list[int]:
    """split_clients hundredths of a percent for weights (0 = "*", the rest; weight 0 gets none).

    Every positive weight but the last gets floor(weight/total) in hundredths
    of a percent; the last positive one takes the rest ("*"). A share too
    small for one hundredth gets 0.01% so that it is not dropped.
    """
    total = sum(w for w in weights if w > 0)
    positive = [i for i, w in enumerate(weights) if w > 0]
    out = [0] * len(weights)
    for i in positive[:-1]:
        out[i] = max(1, weights[i] * 10000 // total)
    return out


def split_pick(percents: Sequence[int], weights: Sequence[int], key: str) -> Optional[int]:
    """The index nginx's split_clients picks for `key` (None: no positive weight)."""
    parts = [(p, i) for i, (p, w) in enumerate(zip(percents, weights)) if w > 0]
    if not parts:
        return None
    h = murmur_hash2(key.encode())
    last = 0
    for p, i in parts:
        if p == 0:
            return i
        last += p * 0xFFFFFFFF // 10000
        if h < last:
            return i
    return None  # the percents summed below 100% and no "*": nginx gives ""


# --- compiling -------------------------------------------------------------------------


def _conditions(m: HTTPRouteMatch) -> tuple:
    out = [("method", "", m.method)] if m.method else []
    out += [("header", h.name.lower(), h.value) for h in m.headers]
    out += [("query", q.name, q.value) for q in m.query_params]
    return tuple(out)


def _shares(refs: Sequence[HTTPBackendRef], route: HTTPRoute, services: Mapping) -> tuple[Share, ...]:
    weights = [r.weight for r in refs]
    percents = split_percents(weights)
    out = []
    for r, p in zip(refs, percents):
        if r.weight <= 0:
            continue
        bad = _invalid(r, route, services)
        ns = r.namespace or route.meta.namespace
        out.append(Share("" if bad else f"{r.name}:{r.port}", ns, r.weight, p, bad))
    return tuple(out)


def _entries(gateway, listener, routes, host, path, ns_map, services) -> tuple[Entry, ...]:
    out = []
    for _, route, r, i in ranked_candidates(gateway, listener, routes, host, path, ns_map):
        rule = route.rules[r]
        conds = _conditions(rule.matches[i])
        shares = _shares(rule.backend_refs, route, services)
        why = "" if shares else ("the rule has no backendRefs" if not rule.backend_refs
                                 else "every backendRef has weight 0")
        out.append(Entry(ref(route), r, i, conds, shares, why))
        if not conds:
            break  # nothing below it can win
    return tuple(out)


def _rep_host(host: str) -> str:
    if not host:
        return UNKNOWN_HOST
    return WILDCARD_LABEL + host[1:] if host.startswith("*.") else host


def _location_paths(routes: Sequence[HTTPRoute]) -> list[tuple[bool, str]]:
    paths = {(False, "/")}
    for route in routes:
        for rule in route.rules:
            for m in rule.matches:
                v = m.path.value
                if m.path.type == "Exact":
                    paths.add((True, v))
                else:
                    p = v.rstrip("/")
                    if p:
                        paths |= {(True, p), (False, p + "/")}
    for exact, p in list(paths):
        if p != "/" and p.endswith("/"):
            paths.add((True, p[:-1]))
    return sorted(paths, key=lambda x: (x[1], not x[0]))


def compile_gateway(gateway: Gateway, routes: Iterable[HTTPRoute], services: Iterable[Service] = (),
                    namespaces: Iterable[Namespace] = ()) -> GatewayTable:
    """The servers and locations the lab's nginx serves for `gateway` (routes oldest first)."""
    routes = list(routes)
    ns_map = {n.meta.name: n for n in namespaces}
    svc_map = {(s.meta.namespace, s.meta.name): s for s in services}
    servers = []
    for port in sorted({l.port for l in gateway.listeners if l.protocol == "HTTP"}):
        hosts = {l.hostname for l in gateway.listeners if l.port == port and l.hostname}
        hosts |= {h for r in routes for h in r.hostnames}
        for host in sorted(hosts) + [""]:
            rep_host = _rep_host(host)
            listener = select_listener(gateway, rep_host, port)
            locs = []
            for exact, p in _location_paths(routes):
                rep_path = p if exact else p + REP_TOKEN
                entries = () if listener is None else _entries(gateway, listener, routes, rep_host, rep_path,
                                                               ns_map, svc_map)
                locs.append(GwLocation(exact, p, entries))
            servers.append(GwServer(port, host, tuple(locs)))
    return GatewayTable(ref(gateway), tuple(servers))


# --- answering from the table (the simulation) ---------------------------------------------


@dataclass(frozen=True)
class TableAnswer:
    status: int  # 200, 404, 500
    share: Optional[Share]
    server: str = ""
    location: str = ""
    entry: Optional[Entry] = None


def _select_server(table: GatewayTable, port: int, host: str) -> Optional[GwServer]:
    on_port = [s for s in table.servers if s.port == port]
    if not on_port:
        return None
    for s in on_port:
        if s.host and not s.host.startswith("*.") and s.host == host:
            return s
    wild = [s for s in on_port if s.host.startswith("*.") and host.endswith(s.host[1:])
            and len(host) > len(s.host) - 1]
    if wild:
        return max(wild, key=lambda s: len(s.host))
    return next(s for s in on_port if not s.host)


def _select_location(server: GwServer, path: str) -> GwLocation:
    for loc in server.locations:
        if loc.exact and loc.path == path:
            return loc
    return max((l for l in server.locations if not l.exact and path.startswith(l.path)),
               key=lambda l: len(l.path))


def _holds(cond: tuple, request: HTTPRequest, args: list) -> bool:
    kind, name, value = cond
    if kind == "method":
        return request.method == value
    if kind == "header":
        return request.header(name) == value
    for k, v in args:
        if k.lower() == name.lower():
            return v == value
    return False


def route_table_request(table: GatewayTable, request: HTTPRequest, key: str) -> TableAnswer:
    """What the lab's nginx answers: the server, the location, the first entry whose
    conditions hold, and split_clients on `key` (the request id)."""
    host = normalize_host(request.host)
    server = _select_server(table, request.port, host)
    if server is None:
        return TableAnswer(404, None)
    path = normalize_path(request.path)
    if path is None:
        return TableAnswer(400, None, server.host)
    loc = _select_location(server, path)
    raw_query = request.path.split("?", 1)[1].split("#", 1)[0] if "?" in request.path else ""
    args = [tuple(a.split("=", 1)) if "=" in a else (a, "") for a in raw_query.split("&") if a]
    for e in loc.entries:
        if all(_holds(c, request, args) for c in e.conditions):
            if not e.shares:
                return TableAnswer(500, None, server.host, loc.nginx, e)
            i = split_pick([s.percent for s in e.shares], [s.weight for s in e.shares], key)
            share = e.shares[i] if i is not None else None
            if share is None or share.invalid:
                return TableAnswer(500, share, server.host, loc.nginx, e)
            return TableAnswer(200, share, server.host, loc.nginx, e)
    return TableAnswer(404, None, server.host, loc.nginx)


# --- rendering ---------------------------------------------------------------------------


def gateway_upstream_name(share: Share) -> str:
    return "gw-" + share.key.replace("/", "-").replace(":", "-")


def _regex(value: str) -> str:
    """A PCRE for exactly `value`, quoted for nginx."""
    body = "^" + re.sub(r"([\\.^$|?*+()\[\]{}/-])", r"\\\1", value) + "$"
    return '"~' + body.replace('"', '\\"') + '"'


def _cond_var(cond: tuple) -> str:
    kind, name, _ = cond
    if kind == "method":
        return "$request_method"
    if kind == "header":
        return "$http_" + name.replace("-", "_")
    return "$arg_" + name


def resolve_gateway_endpoints(table: GatewayTable, services: Iterable[Service],
                              slices: Iterable[EndpointSlice]) -> dict[str, tuple[str, ...]]:
    """Share.key -> ready endpoint addresses (the Service port given by number)."""
    svcs = {(s.meta.namespace, s.meta.name): s for s in services}
    slices = list(slices)
    out = {}
    for sh in table.shares():
        name, port = sh.service.rsplit(":", 1)
        svc = svcs.get((sh.namespace, name))
        sp = next((p for p in svc.ports if p.port == int(port)), None) if svc else None
        addrs = []
        if sp is not None:
            for sl in slices:
                if sl.meta.namespace != sh.namespace or sl.service_name != name:
                    continue
                if sl.address_type not in ("IPv4", "IPv6"):
                    continue
                tp = next((p.port for p in sl.ports if p.name == sp.name and p.protocol == sp.protocol
                           and p.port is not None), None)
                if tp is None:
                    continue
                for ep in sl.endpoints:
                    if ep.conditions.ready is not False:
                        addrs += [endpoint_address(ip, tp) for ip in ep.addresses]
        out[sh.key] = tuple(sorted(dict.fromkeys(addrs)))
    return out


def render_gateway_http(table: GatewayTable, endpoints: Mapping[str, Sequence[str]],
                        listen_host: str = "", split_key: str = "$req_id") -> list[str]:
    """The lines of the http{} block that serve `table`: condition maps, splits, upstreams, servers."""
    out = ["", f"    # ---- {table.gateway}: its HTTPRoutes, as labkit compiled them ----"]
    conds: dict[tuple, str] = {}
    splits: dict[tuple, str] = {}
    body: list[str] = []

    def target(share: Share) -> str:
        if share.invalid:
            return STATUS_500
        return gateway_upstream_name(share) if endpoints.get(share.key) else STATUS_503

    def entry_value(e: Entry) -> str:
        if not e.shares:
            return STATUS_500
        if len(e.shares) == 1:
            return target(e.shares[0])
        k = tuple((target(s), s.percent) for s in e.shares)
        if k not in splits:
            splits[k] = f"$lk_split_{len(splits) + 1}"
        return splits[k]

    for n, s in enumerate(table.servers):
        listen = f"{listen_host}:{s.port}" if listen_host else str(s.port)
        what = f"host {s.host}" if s.host else "the catch-all server of the port"
        body += ["", f"    # {what}", "    server {",
                 f"        listen {listen}{'' if s.host else ' default_server'};",
                 f"        server_name {s.host or '_'};"]
        for m, loc in enumerate(s.locations):
            where = f"= {quote_path(loc.path)}" if loc.exact else quote_path(loc.path)
            body += [f"        location {where} {{"]
            for e in loc.entries:
                c = " and ".join(f"{k} {nm + '=' if nm else ''}{v}" for k, nm, v in e.conditions)
                body.append(f"            # {e.route} rules[{e.rule}].matches[{e.match}]"
                            + (f" when {c}" if c else ""))
            if not loc.entries:
                body += ["            # no HTTPRoute rule takes this path: 404", "            return 404;",
                         "        }"]
                continue
            if len(loc.entries) == 1 and not loc.entries[0].conditions:
                var = entry_value(loc.entries[0])
            else:
                var = f"$lk_loc_{n}_{m}"
                flags = []
                for e in loc.entries:
                    for cnd in e.conditions:
                        if cnd not in conds:
                            conds[cnd] = f"$lk_cond_{len(conds) + 1}"
                        flags.append(cnd)
                order = list(dict.fromkeys(flags))
                key = "".join(conds[c] for c in order)
                out += ["", f'    map "{key}" {var} {{']
                for e in loc.entries:
                    pattern = "".join("1" if c in e.conditions else "." for c in order)
                    out.append(f'        "~^{pattern}$" {entry_value(e)};')
                out += [f"        default {STATUS_404};", "    }"]
            if var.startswith("lk-status-"):
                body += [f"            return {var[-3:]};", "        }"]
                continue
            if var.startswith("gw-"):
                body += [f"            proxy_pass http://{var};", "        }"]
                continue
            for code in ("404", "500", "503"):
                body.append(f'            if ({var} = "lk-status-{code}") {{ return {code}; }}')
            body += [f"            proxy_pass http://{var};", "        }"]
        body.append("    }")
    for cnd, var in conds.items():
        kind, name, value = cnd
        out += ["", f"    # {kind} {name + '=' if name else ''}{value}",
                f"    map {_cond_var(cnd)} {var} {{", f"        {_regex(value)} 1;", "        default 0;", "    }"]
    for k, var in splits.items():
        out += ["", f'    split_clients "{split_key}" {var} {{']
        for tgt, pct in k:
            out.append(f"        {pct // 100}.{pct % 100:02d}% {tgt};" if pct else f"        * {tgt};")
        out.append("    }")
    for sh in table.shares():
        addrs = endpoints.get(sh.key, ())
        if addrs:
            out += ["", f"    # Service {sh.key}", f"    upstream {gateway_upstream_name(sh)} {{"]
            out += [f"        server {a};" for a in addrs]
            out.append("    }")
    return out + body
