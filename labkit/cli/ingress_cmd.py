"""`labkit ingress`: ask the lab's ingress controller where a request goes.

  labkit ingress route -f FILE [-f FILE ...] [--host HOST] --path PATH [--json]
  labkit ingress nginx-conf -f FILE [-f FILE ...]
  labkit ingress enable [--name LAB]       the controller in a running lab
  labkit ingress conf [--name LAB]         the nginx.conf it runs

`route` loads the Ingress objects of the files (in the order given: that
order stands for creation time when several Ingresses are merged) and prints
which backend answers, and why. `nginx-conf` prints the nginx.conf the lab's
controller would run (endpoints taken from Services and EndpointSlices in
the same files). The thin shell around labkit.controllers.ingress.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from labkit.errors import LabkitError


def _read(paths: Sequence[str]) -> list:
    from labkit.model.load import load_manifests

    objs: list = []
    for path in paths:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except OSError as e:
            raise LabkitError(f"cannot read {path}: {e.strerror} (fix: check the file name)") from None
        objs += load_manifests(text, path)
    return objs


def _ingresses(objs: list, paths: Sequence[str]) -> list:
    ings = [o for o in objs if o.kind == "Ingress"]
    if not ings:
        raise LabkitError(f"no Ingress in {', '.join(paths)} "
                          "(fix: pass the manifest that holds your kind: Ingress objects)")
    return ings


def _route(args: argparse.Namespace) -> int:
    from labkit.controllers.ingress.routing import compile_ingresses, route_request

    if not args.path.startswith("/"):
        raise LabkitError(f"--path {args.path!r} must begin with / (fix: --path /{args.path.lstrip('/')})")
    table = compile_ingresses(_ingresses(_read(args.file), args.file))
    result = route_request(table, args.host, args.path)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    host = args.host or "(no host)"
    print(f"request  http://{args.host or ''}{args.path}")
    print(f"server   {result.server}" + ("   (catch-all: no rule names host " + host + ")"
                                         if result.server == "_" else ""))
    print(f"location {result.location or '-'}   (path as nginx matches it: {result.path})")
    if result.status == 200:
        print(f"backend  {result.backend}   (namespace {result.backend.namespace}, via {result.via})")
    elif result.status == 301:
        print(f"answer   301 redirect to {result.redirect_to}   (nginx adds the slash of an "
              "ImplementationSpecific path)")
    elif result.status == 400:
        print("answer   400 Bad Request   (the path climbs above /)")
    else:
        print("answer   404 Not Found   (no rule matched and there is no default backend)")
    if result.source:
        print(f"from     {result.source}")
    return 0


def _nginx_conf(args: argparse.Namespace) -> int:
    from labkit.controllers.ingress.nginx_conf import (
        NginxRuntime, render_nginx_conf_from_table, resolve_endpoints,
    )
    from labkit.controllers.ingress.routing import compile_ingresses

    objs = _read(args.file)
    ings = _ingresses(objs, args.file)
    table = compile_ingresses(ings)
    endpoints = resolve_endpoints(table, [o for o in objs if o.kind == "Service"],
                                  [o for o in objs if o.kind == "EndpointSlice"])
    names = ", ".join(f"{i.meta.namespace}/{i.meta.name}" for i in ings)
    sys.stdout.write(render_nginx_conf_from_table(table, endpoints, NginxRuntime(listen=args.listen),
                                                  f"Ingress {names}"))
    return 0


def _enable(args: argparse.Namespace) -> int:
    """Apply the lab's ingress controller to a running lab (recorded like any apply)."""
    from labkit.cli.lab_cmds import _attach
    from labkit.controllers.ingress.controller import INGRESS_NGINX_MANIFEST, NAME, NAMESPACE

    lab = _attach(args.name)
    for r in lab.apply(INGRESS_NGINX_MANIFEST, "ingress-nginx controller"):
        print(f"{r} configured")
    [svc] = [s for s in lab.services() if s.meta.namespace == NAMESPACE and s.meta.name == NAME]
    ips = [i.ip for i in svc.load_balancer_ingress if i.ip]
    if ips:
        print(f"the controller answers at {ips[0]}:80 (e.g. labkit http --name {args.name} --from outside "
              f"--to {ips[0]}:80 --host HOST --path /PATH)")
    return 0


def _lab_conf(args: argparse.Namespace) -> int:
    from labkit.cli.lab_cmds import _attach

    sys.stdout.write(_attach(args.name).ingress_conf())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit ingress",
                                     description="Where the lab's ingress controller sends a request.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("route", help="which backend answers one request",
                       description="Which Service answers one HTTP request, by the Ingress rules.")
    r.add_argument("-f", "--file", action="append", required=True, metavar="FILE",
                   help="a manifest with Ingress objects (repeat; '-' reads stdin)")
    r.add_argument("--host", default=None, help="the request's Host (default: none)")
    r.add_argument("--path", required=True, help="the request's path, e.g. /api?x=1")
    r.add_argument("--json", action="store_true", help='print {"backend", "via", "status"}')
    r.set_defaults(run=_route)
    n = sub.add_parser("nginx-conf", help="the nginx.conf the lab's controller runs",
                       description="Print the nginx.conf rendered from the Ingress objects.")
    n.add_argument("-f", "--file", action="append", required=True, metavar="FILE",
                   help="manifests with Ingresses, Services and EndpointSlices (repeat)")
    n.add_argument("--listen", default="80", help="nginx's listen address (default: 80)")
    n.set_defaults(run=_nginx_conf)
    e = sub.add_parser("enable", help="put the ingress controller in a running lab",
                       description="Apply the lab's ingress-nginx controller (a pod running nginx, "
                                   "behind a LoadBalancer Service on port 80).")
    e.add_argument("--name", default="lab", help="the lab's name (default: lab)")
    e.set_defaults(run=_enable)
    c = sub.add_parser("conf", help="the nginx.conf a running lab's controller runs",
                       description="Print the nginx.conf of a running lab's ingress controller.")
    c.add_argument("--name", default="lab", help="the lab's name (default: lab)")
    c.set_defaults(run=_lab_conf)
    return parser


def main_ingress(argv: Sequence[str]) -> int:
    """`labkit ingress ...`; LabkitError propagates to the frame (exit code 2)."""
    args = build_parser().parse_args(argv)
    return args.run(args)
