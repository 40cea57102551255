"""The `labkit` command: a thin frame that hands each subcommand its arguments.

Each subcommand lives in its own module, imported only when it runs, so
`labkit --help` starts without scapy, YAML, Jupyter or the renderers. A
subcommand module provides `main_<name>(argv) -> int` and parses its own
arguments (its parser's prog is "labkit <name>").

Exit codes: 0 success, 1 the subcommand's "no" (e.g. a packet was dropped),
2 bad usage or a LabkitError (its message goes to stderr), 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Sequence

import labkit
from labkit.errors import LabkitError


@dataclass(frozen=True)
class Subcommand:
    name: str
    module: str  # imported lazily, only when the subcommand runs
    function: str  # module.function(argv) -> int
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "render",
        "labkit.cli.render_cmd",
        "main_render",
        "print the rules kube-proxy would program for some manifests",
    ),
    Subcommand(
        "trace",
        "labkit.cli.trace_cmd",
        "main_trace",
        "follow one packet through the simulated dataplane, chain by chain",
    ),
    Subcommand("netpol", "labkit.cli.netpol_cmd", "main_netpol",
               "answer NetworkPolicy questions from manifests: check, matrix, rules"),
    Subcommand("ingress", "labkit.cli.ingress_cmd", "main_ingress",
               "route an HTTP request through Ingress/HTTPRoute objects; render nginx.conf"),
    Subcommand("up", "labkit.cli.lab_cmds", "main_up", "make a lab and apply manifests to it"),
    Subcommand("down", "labkit.cli.lab_cmds", "main_down", "remove a lab (or --all) completely"),
    Subcommand("status", "labkit.cli.lab_cmds", "main_status", "list the labs that are up"),
    Subcommand("doctor", "labkit.cli.lab_cmds", "main_doctor",
               "what this machine allows (root, namespaces, tools) and how to fix gaps"),
    Subcommand("apply", "labkit.cli.lab_cmds", "main_apply", "create or update objects in a lab"),
    Subcommand("delete", "labkit.cli.lab_cmds", "main_delete", "delete objects from a lab"),
    Subcommand("scale", "labkit.cli.lab_cmds", "main_scale", "set a Deployment's replicas"),
    Subcommand("probe", "labkit.cli.lab_cmds", "main_probe",
               "send TCP SYNs or UDP packets from a pod, node or outside host"),
    Subcommand("http", "labkit.cli.lab_cmds", "main_http", "one real HTTP request inside a lab"),
    Subcommand("conntrack", "labkit.cli.lab_cmds", "main_conntrack", "a node's conntrack table"),
    Subcommand("rules", "labkit.cli.lab_cmds", "main_rules", "a node's rules as iptables-save shows them"),
    Subcommand("compare-rules", "labkit.cli.kind_cmds", "main_compare_rules",
               "diff a kind node's live kube-proxy rules against labkit's rendering"),
    Subcommand("masquerade", "labkit.cli.outside_cmds", "main_masquerade",
               "turn the pod network's masquerade on or off in a lab"),
    Subcommand("dns", "labkit.cli.outside_cmds", "main_dns", "look a name up from a pod through cluster DNS"),
    Subcommand("env", "labkit.cli.outside_cmds", "main_env", "the Service environment variables a pod has"),
    Subcommand("version", "labkit.cli.main", "main_version", "print labkit's version"),
)

EPILOG = "Run 'labkit COMMAND --help' for a command's own options."


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: knows the subcommand names, not their options."""
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="The lab behind the course 'Kubernetes networking, packet by packet'.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"labkit {labkit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in SUBCOMMANDS:
        # add_help=False: `labkit render --help` is answered by render's own parser.
        sub.add_parser(cmd.name, help=cmd.help, add_help=False)
    return parser


def main_version(argv: Sequence[str]) -> int:
    """`labkit version`."""
    parser = argparse.ArgumentParser(prog="labkit version", description="Print labkit's version.")
    parser.parse_args(argv)
    print(f"labkit {labkit.__version__}")
    return 0


def _load(cmd: Subcommand):
    """The subcommand's entry function, importing its module now."""
    try:
        module = importlib.import_module(cmd.module)
    except ModuleNotFoundError as e:
        if e.name != cmd.module:
            raise  # the module exists but something it imports is missing
        raise LabkitError(
            f"the {cmd.name!r} command is not available yet (module {cmd.module} is missing)"
        )
    return getattr(module, cmd.function)


def run(argv: Sequence[str]) -> int:
    """Dispatch without catching anything: tests and other tools may call this."""
    parser = build_parser()
    args, rest = parser.parse_known_args(list(argv))
    cmd = next(c for c in SUBCOMMANDS if c.name == args.command)
    return int(_load(cmd)(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: errors become a message on stderr and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except SystemExit as e:  # argparse: --help (0) and usage errors (2)
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except LabkitError as e:
        print(f"labkit: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `labkit render ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
