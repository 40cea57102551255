"""`labkit netpol`: ask the NetworkPolicy evaluator, from manifests.

    labkit netpol check -f FILE [-f FILE ...] --from NS/POD|IP --to NS/POD|IP --port N
        [--protocol TCP|UDP|SCTP] [--json]
    labkit netpol matrix -f FILE ... [--port N] [--protocol P] [--style e2e|grid] [--json]
    labkit netpol rules -f FILE ... --node NODE
    labkit netpol check --name LAB --from NS/POD --to NS/POD --port N [--protocol P] [--probe] [--json]
    labkit netpol matrix --name LAB [--port N] [--protocol P] [--probe] [--json]

FILE holds Namespaces (with labels), Pods (labels, container ports and
status.podIP) and NetworkPolicies. `check` prints the verdict and its reason;
with --json it prints {"allowed": ..., "reason": ...} and exits 0 either way,
without it exits 1 when the connection is denied. `matrix` prints the
pod-by-pod truth table. `rules` prints the filter rules a policy agent would
load on one node. Bad input exits 2 with a message naming the problem.

With --name the questions go to a running lab (its pods, namespaces and
policies); --probe then sends real packets: `check` one probe between the two
pods, `matrix` one per ordered pair of pods (TCP SYN or UDP datagram, all at
once), printed next to the prediction with the differences marked; `matrix
--probe` exits 1 when probe and prediction differ.
"""
from __future__ import annotations

import argparse
import json
from typing import Sequence

from labkit.errors import LabkitError


def _read(path: str) -> str:
    from labkit.cli.render_cmd import read_text

    return read_text(path, "manifest file")


def _cluster(files: Sequence[str]):
    from labkit.controllers.netpol import build_cluster
    from labkit.model.load import load_manifests

    objects = []
    for path in files:
        objects += load_manifests(_read(path), path)
    return build_cluster(objects)


def _check_source(args) -> None:
    """-f FILES or --name LAB, not both; --probe only with --name."""
    name = getattr(args, "name", None)
    if name and args.files:
        raise LabkitError("give either -f FILE (manifests) or --name LAB (a running lab), not both")
    if name and args.action == "rules":
        raise LabkitError(f"--name {name}: `labkit rules --name {name} --node NODE --table filter` shows "
                          "a lab node's rules (fix: use that, or give the manifests with -f FILE)")
    if getattr(args, "probe", False) and not name:
        raise LabkitError("--probe sends packets in a running lab (fix: add --name LAB)")
    if not name and not args.files:
        raise LabkitError("no manifests given (fix: add -f FILE with Namespaces, Pods and NetworkPolicies, "
                          "or --name LAB to ask a running lab)")


def _live_lab(name: str):
    from labkit.cli.lab_cmds import _attach

    return _attach(name)


def _live_check(args) -> int:
    verdict, result = _live_lab(args.name).netpol_check(args.source, args.destination, args.port,
                                                        args.protocol, probe=args.probe)
    if args.json:
        out = {"allowed": verdict.allowed, "reason": verdict.reason}
        if result is not None:
            from labkit.controllers.netpol.probed import probed_allowed

            out["probe"] = {"verdict": result.verdict, "allowed": probed_allowed(result.verdict),
                            "destination": result.destination, "protocol": result.protocol}
        print(json.dumps(out))
        return 0
    print(verdict.reason)
    if result is not None:
        from labkit.controllers.netpol.probed import probed_allowed

        agree = probed_allowed(result.verdict) == verdict.allowed
        print(f"probe: {result.source} -> {result.destination} {result.protocol}: {result.verdict} "
              f"({'as predicted' if agree else 'NOT as predicted'})")
    return 0 if verdict.allowed else 1


def _live_matrix(args) -> int:
    from labkit.controllers.netpol.probed import probed_matrix_to_json, render_probed_matrix

    pm = _live_lab(args.name).netpol_matrix(args.port, args.protocol, probe=args.probe)
    if not pm.names:
        raise LabkitError(f"lab {args.name} has no pods (fix: `labkit apply --name {args.name} -f FILE`)")
    if args.json:
        print(json.dumps(probed_matrix_to_json(pm), indent=2))
    else:
        print(render_probed_matrix(pm))
    return 1 if pm.differences() else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit netpol",
                                     description="Answer NetworkPolicy questions from manifests.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE",
                       help="YAML with Namespaces, Pods and NetworkPolicies ('-' for stdin); repeatable")
        p.add_argument("--name", metavar="LAB", help="ask a running lab instead of manifests")

    check = sub.add_parser("check", help="may one connection be made, and why")
    common(check)
    check.add_argument("--from", dest="source", required=True, metavar="NS/POD|IP")
    check.add_argument("--to", dest="destination", required=True, metavar="NS/POD|IP")
    check.add_argument("--port", type=int, required=True, metavar="N")
    check.add_argument("--protocol", default="TCP", metavar="TCP|UDP|SCTP")
    check.add_argument("--json", action="store_true", help='print {"allowed": ..., "reason": ...}')
    check.add_argument("--probe", action="store_true", help="with --name: also send one real packet")

    matrix = sub.add_parser("matrix", help="the pod-by-pod truth table")
    common(matrix)
    matrix.add_argument("--port", type=int, default=80, metavar="N")
    matrix.add_argument("--protocol", default="TCP", metavar="TCP|UDP|SCTP")
    matrix.add_argument("--style", choices=("e2e", "grid"), default="e2e",
                        help="e2e: like the upstream suite's tables (default); grid: boxed")
    matrix.add_argument("--json", action="store_true")
    matrix.add_argument("--probe", action="store_true",
                        help="with --name: probe every pair of pods with real packets, beside the prediction")

    rules = sub.add_parser("rules", help="the filter rules a policy agent loads on one node")
    common(rules)
    rules.add_argument("--node", required=True, metavar="NODE")
    return parser


def main_netpol(argv: Sequence[str]) -> int:
    """Entry point for `labkit netpol ...`."""
    args = build_parser().parse_args(list(argv))
    _check_source(args)
    if args.name:
        return _live_check(args) if args.action == "check" else _live_matrix(args)
    cluster = _cluster(args.files)
    if args.action == "check":
        from labkit.controllers.netpol import check_connection, resolve_endpoint

        verdict = check_connection(cluster, resolve_endpoint(cluster, args.source),
                                   resolve_endpoint(cluster, args.destination), args.port, args.protocol)
        if args.json:
            print(json.dumps({"allowed": verdict.allowed, "reason": verdict.reason}))
            return 0
        print(verdict.reason)
        return 0 if verdict.allowed else 1
    if args.action == "matrix":
        from labkit.controllers.netpol.matrix import compute_matrix, matrix_to_json, render_matrix

        m = compute_matrix(cluster, args.port, args.protocol)
        if not m.names:
            raise LabkitError("the manifests hold no pods (fix: add Pods with status.podIP)")
        if args.json:
            print(json.dumps(matrix_to_json(m), indent=2))
        else:
            print(f"{m.protocol}/{m.port}: '.' allowed, 'X' denied (rows: from, columns: to)")
            print(render_matrix(m, args.style))
        return 0
    from labkit.controllers.netpol.render import render_netpol_iptables

    print(render_netpol_iptables(cluster, args.node), end="")
    return 0
