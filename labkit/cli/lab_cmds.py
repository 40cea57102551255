"""The lab's commands: up, down, status, doctor, apply, delete, scale, probe, http, conntrack, rules.

labkit/cli/main.py dispatches each of them here as `main_lab(command, argv)`;
each has its own parser (prog "labkit <command>"). Exit codes: 0 done,
1 a probe that was not answered, 2 a LabkitError (raised to main.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

from labkit.errors import LabkitError

COMMANDS = ("up", "down", "status", "doctor", "apply", "delete", "scale", "probe", "http",
            "trace", "conntrack", "rules")


def _read(path: str) -> str:
    try:
        with (sys.stdin if path == "-" else open(path)) as f:
            return f.read()
    except OSError as e:
        raise LabkitError(f"cannot read {path}: {e.strerror}") from None


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"labkit {command}", description=description)


def _name(p: argparse.ArgumentParser, required: bool = True) -> None:
    from labkit.topology.plan import DEFAULT_LAB_NAME

    p.add_argument("--name", default=DEFAULT_LAB_NAME, help=f"the lab's name (default {DEFAULT_LAB_NAME})")


def _attach(name: str):
    from labkit.backends.netns.lab import NetnsLab
    from labkit.cli.kind_cmds import attach_kind  # hook: a kind lab of this name, if one is up

    return attach_kind(name) or RecordedSimLab.load(name) or NetnsLab.attach(name)


# --- sim labs that outlive the command ---------------------------------------------------

RECORDED_CALLS = ("apply", "delete", "scale", "probe", "http", "trace", "netpol_matrix", "netpol_check")  # the calls that change a sim lab


def sim_state_dir() -> Path:
    """Where this user's command-line sim labs are kept: $LABKIT_STATE_DIR, else
    $XDG_STATE_HOME/labkit, else ~/.local/state/labkit; one JSON file per lab under sim/."""
    base = os.environ.get("LABKIT_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "labkit")
    return Path(base) / "sim"


class RecordedSimLab:
    """A sim lab made by `labkit up --backend sim`, rebuilt in every later command.

    A SimLab lives in one process, so its state file records how it was made
    (kind config, seed, the manifests of `up`) and every later call that
    changes it (apply, delete, scale, and the probes: they move its clock,
    its random choices and its conntrack tables), in order. Replaying them on
    a fresh SimLab -- deterministic under the seed -- gives the very lab the
    last command left. Read-only calls (conntrack, rules, pods) are not recorded.
    """

    backend = "sim"

    def __init__(self, path: Path, record: dict):
        from labkit.backends.sim.lab import SimLab

        self.path = path
        self.record = record
        self.sim = SimLab(record["lab"], record["kind_config"], record["seed"])
        self.sim.up(record["manifests"], record["source"])
        for call in record["calls"]:
            getattr(self.sim, call["call"])(*call["args"], **call["kwargs"])

    @classmethod
    def create(cls, lab: str, kind_config: str, seed: int, manifests: str, source: str) -> "RecordedSimLab":
        path = sim_state_dir() / f"{lab}.json"
        if path.exists():
            raise LabkitError(f"lab {lab!r} already exists (fix: `labkit down --name {lab}` first, "
                              "or pick another --name)")
        made = cls(path, {"lab": lab, "backend": "sim", "kind_config": kind_config, "seed": seed,
                          "manifests": manifests, "source": source, "calls": []})
        made.save()
        return made

    @classmethod
    def load(cls, lab: str) -> Optional["RecordedSimLab"]:
        """The sim lab named `lab`, or None if this user has none of that name."""
        path = sim_state_dir() / f"{lab}.json"
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise LabkitError(f"the state of sim lab {lab!r} ({path}) cannot be read: {e} "
                              f"(fix: `labkit down --name {lab}`, then make it again)") from None
        return cls(path, record)

    def save(self) -> None:
        """Write the record (a temporary file, then rename), with counts for `labkit status`."""
        self.record["pods"] = len(self.sim.pods())
        self.record["namespaces"] = len(self.sim.plan.namespaces)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.record, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def __getattr__(self, name: str):
        value = getattr(self.sim, name)
        if name not in RECORDED_CALLS:
            return value

        def recorded(*args, **kwargs):
            result = value(*args, **kwargs)
            self.record["calls"].append({"call": name, "args": list(args), "kwargs": kwargs})
            self.save()
            return result

        return recorded


def sim_lab_names() -> list[str]:
    try:
        return sorted(p.name[:-5] for p in sim_state_dir().iterdir() if p.name.endswith(".json"))
    except FileNotFoundError:
        return []


def down_sim_lab(lab: str) -> Optional[str]:
    """Remove sim lab `lab`'s state; its summary line, or None if there was no such sim lab."""
    path = sim_state_dir() / f"{lab}.json"
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return f"lab {lab}: removed its simulation state"


def cmd_up(argv: Sequence[str]) -> int:
    p = _parser("up", "Make a lab: nodes, pods and outside hosts, then apply manifests.")
    p.add_argument("--backend", choices=("auto", "netns", "sim", "kind"), default="auto")
    _name(p)
    p.add_argument("--config", help="a kind cluster config (kind.x-k8s.io/v1alpha4)")
    p.add_argument("-f", "--filename", action="append", default=[], help="manifests to apply (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    backend = args.backend
    if backend == "kind":  # hook: labkit/cli/kind_cmds.py makes the cluster
        from labkit.cli.kind_cmds import up_kind

        return up_kind(args.name, _read(args.config) if args.config else "",
                       "\n---\n".join(_read(f) for f in args.filename), ",".join(args.filename), args.seed)
    from labkit.topology.plan import check_lab_name

    check_lab_name(args.name)
    if backend in ("auto", "netns"):
        from labkit.tools import missing_requirements
        from labkit.backends.netns.lab import REQUIRED_TOOLS

        missing = missing_requirements(root=True, tools=REQUIRED_TOOLS)
        if missing and backend == "netns":
            raise LabkitError("the netns backend cannot run here: " + "; ".join(m.reason for m in missing)
                              + " (a command-line kernel lab needs root; labkit.lab() in Python runs one "
                              "in a user namespace without root)")
        if missing:
            print("labkit: the netns backend is not possible here (" + "; ".join(m.reason for m in missing)
                  + "), so the lab is the simulation", file=sys.stderr)
            backend = "sim"
        else:
            backend = "netns"
    config = _read(args.config) if args.config else ""
    manifests = "\n---\n".join(_read(f) for f in args.filename)
    if backend == "sim":
        from labkit.backends.netns import registry as reg

        if reg.load_registry(args.name) is not None:
            raise LabkitError(f"lab {args.name!r} already exists as a kernel lab (fix: `labkit down --name "
                              f"{args.name}` first, or pick another --name)")
        sim = RecordedSimLab.create(args.name, config, args.seed, manifests, ",".join(args.filename))
        print(f"lab {args.name} is up (sim): {len(sim.plan.nodes)} nodes, {len(sim.plan.pods)} pods, "
              f"{len(sim.services())} services")
        return 0
    from labkit.backends.netns.lab import NetnsLab

    if RecordedSimLab.load(args.name) is not None:
        raise LabkitError(f"lab {args.name!r} already exists as a sim lab (fix: `labkit down --name "
                          f"{args.name}` first, or pick another --name)")
    lab = NetnsLab(args.name, config, args.seed)
    lab.up(manifests, ",".join(args.filename))
    plan = lab.plan
    print(f"lab {args.name} is up (netns): {len(plan.nodes)} nodes, {len(plan.pods)} pods, "
          f"{len(lab.services())} services")
    return 0


def cmd_down(argv: Sequence[str]) -> int:
    p = _parser("down", "Remove a lab (or every lab): namespaces, processes, state files.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--name", help="the lab's name")
    g.add_argument("--all", action="store_true", help="every lab found on this machine")
    args = p.parse_args(argv)
    from labkit.backends.netns import cleanup

    if args.all:
        lines = [r.summary() for r in cleanup.down_all()] + [down_sim_lab(n) for n in sim_lab_names()]
        print("\n".join(filter(None, lines)) or "no labs found")
        return 0
    from labkit.topology.plan import DEFAULT_LAB_NAME, check_lab_name

    name = args.name or DEFAULT_LAB_NAME
    check_lab_name(name)
    from labkit.cli.kind_cmds import down_kind  # hook: a kind lab's cluster, if labkit made one

    kind = down_kind(name)
    if kind is not None:
        print(kind)
        return 0
    sim = down_sim_lab(name)
    if sim is not None and name not in cleanup.find_labs():
        print(sim)
        return 0
    print(cleanup.down_lab(name).summary())  # idempotent: a lab that is not there is removed again
    return 0


def cmd_status(argv: Sequence[str]) -> int:
    p = _parser("status", "List the labs on this machine.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from labkit.backends.netns import cleanup, registry as reg
    from labkit.backends.netns.runner import list_netns

    labs = []
    namespaces = list_netns()
    for name in cleanup.find_labs():
        r = reg.load_registry(name)
        ns = [n for n in namespaces if cleanup.lab_of_netns(n) == name]
        labs.append({
            "name": name,
            "backend": r.backend if r else "netns",
            "phase": r.phase if r else "unknown (no state: `labkit down --name %s`)" % name,
            "namespaces": len(ns),
            "pods": sum(1 for n in ns if "-pod-" in n),
            "processes": len(r.processes) if r else 0,
        })
    for name in sim_lab_names():
        try:
            record = json.loads((sim_state_dir() / f"{name}.json").read_text())
        except (OSError, ValueError):
            record = {}
        labs.append({"name": name, "backend": "sim", "phase": "up" if record else "unreadable state",
                     "namespaces": record.get("namespaces", 0), "pods": record.get("pods", 0), "processes": 0})
    if args.json:
        print(json.dumps(labs, indent=1))
    elif not labs:
        print("no labs")
    else:
        for lab in labs:
            print(f"{lab['name']}: {lab['backend']}, {lab['phase']}, {lab['namespaces']} namespaces, "
                  f"{lab['pods']} pods")
    return 0


def cmd_doctor(argv: Sequence[str]) -> int:
    p = _parser("doctor", "Say what this machine allows (root, user namespaces, tools) and how to fix gaps.")
    p.parse_args(argv)
    from labkit.backends.netns.doctor import check_machine, render_doctor

    sys.stdout.write(render_doctor(check_machine()))
    return 0


def _manifest_cmd(command: str, argv: Sequence[str]) -> int:
    p = _parser(command, f"{command.capitalize()} objects in a running lab; every node's rules re-sync.")
    _name(p)
    p.add_argument("-f", "--filename", action="append", required=True)
    args = p.parse_args(argv)
    lab = _attach(args.name)
    for f in args.filename:
        refs = getattr(lab, command)(_read(f), f)
        for r in refs:
            print(f"{r} {'configured' if command == 'apply' else 'deleted'}")
    return 0


def cmd_scale(argv: Sequence[str]) -> int:
    p = _parser("scale", "Set a Deployment's replicas in a running lab.")
    _name(p)
    p.add_argument("target", help="deployment/NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("-n", "--namespace", default="default")
    args = p.parse_args(argv)
    if not args.target.startswith("deployment/"):
        raise LabkitError(f"scale takes deployment/NAME, not {args.target!r}")
    _attach(args.name).scale(args.target, args.replicas, args.namespace)
    print(f"{args.target} scaled to {args.replicas}")
    return 0


def _probe_args(command: str, description: str) -> argparse.ArgumentParser:
    p = _parser(command, description)
    _name(p)
    p.add_argument("--from", dest="source", required=True, help="NAMESPACE/POD, a node, outside or internet")
    p.add_argument("--to", dest="destination", required=True, help="ADDRESS:PORT")
    p.add_argument("--json", action="store_true")
    return p


def cmd_probe(argv: Sequence[str]) -> int:
    p = _probe_args("probe", "Send TCP SYNs (scapy) or UDP datagrams and say who answered.")
    p.add_argument("--protocol", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--count", type=int, default=1)
    args = p.parse_args(argv)
    from labkit.backends.base import format_probe

    results = _attach(args.name).probe(args.source, args.destination, args.protocol, args.count)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        for r in results:
            print(format_probe(r))
    return 0 if all(r.ok for r in results) else 1


def cmd_http(argv: Sequence[str]) -> int:
    p = _probe_args("http", "One real HTTP request from inside a namespace.")
    p.add_argument("--path", default="/hostname")
    p.add_argument("--host", default=None, help="the Host header (default: the --to address)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="another request header (repeatable)")
    args = p.parse_args(argv)
    from labkit.backends.base import format_probe

    kw = _http_options(args)
    r = _attach(args.name).http(args.source, args.destination, args.path, **kw)
    if args.json:
        print(json.dumps(asdict(r), indent=1))
    else:
        print(format_probe(r))
        if r.ok:
            print(f"HTTP {r.status}: {r.body}")
        for k, v in r.headers:  # through the ingress controller: what nginx sent the pod
            print(f"  sent upstream: {k}: {v}")
    return 0 if r.ok else 1


def _http_options(args) -> dict:
    """--host and --header as http()'s keyword arguments (only those given, so every backend
    that knows no Host header still takes a plain request)."""
    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise LabkitError(f"--header {h!r} must be NAME: VALUE (fix: --header 'X-Canary: always')")
        headers[name.strip()] = value.strip()
    kw: dict = {}
    if args.host is not None:
        kw["host"] = args.host
    if headers:
        kw["headers"] = headers
    return kw


def cmd_trace(argv: Sequence[str]) -> int:
    p = _probe_args("trace", "One TCP SYN traced by the kernel through a node's chains.")
    args = p.parse_args(argv)
    t = _attach(args.name).trace(args.source, args.destination)
    if args.json:
        print(json.dumps(asdict(t), indent=1))
    else:
        for s in t.steps:
            where = f"{s.table}/{s.chain}" + (f" #{s.rule_number}" if s.rule_number else " (policy)" if not s.rule else "")
            print(f"{where:<48} -> {s.verdict:<28} {s.packet}")
        print(f"verdict: {t.verdict}")
    return 0 if t.verdict == "answered" else 1


def cmd_conntrack(argv: Sequence[str]) -> int:
    p = _parser("conntrack", "A node's conntrack table.")
    _name(p)
    p.add_argument("--node", required=True)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    entries = _attach(args.name).conntrack(args.node)
    if args.json:
        print(json.dumps([asdict(e) for e in entries], indent=1))
    else:
        for e in entries:
            print(f"{e.proto:<4} {e.state:<12} {e.orig}  reply {e.reply}"
                  + (f"  [{','.join(e.flags)}]" if e.flags else ""))
    return 0


def cmd_rules(argv: Sequence[str]) -> int:
    p = _parser("rules", "A node's rules, as iptables-save prints them.")
    _name(p)
    p.add_argument("--node", required=True)
    p.add_argument("--table", default="nat", choices=("nat", "filter", "mangle", "raw"))
    args = p.parse_args(argv)
    sys.stdout.write(_attach(args.name).rules(args.node, args.table))
    return 0


_HANDLERS: dict[str, Callable[[Sequence[str]], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "doctor": cmd_doctor,
    "apply": lambda argv: _manifest_cmd("apply", argv),
    "delete": lambda argv: _manifest_cmd("delete", argv),
    "scale": cmd_scale,
    "probe": cmd_probe,
    "http": cmd_http,
    "trace": cmd_trace,
    "conntrack": cmd_conntrack,
    "rules": cmd_rules,
}


def main_lab(command: str, argv: list[str]) -> int:
    """Run lab command `command` with its arguments (see COMMANDS)."""
    if command not in _HANDLERS:
        raise LabkitError(f"unknown lab command {command!r} (one of: {', '.join(COMMANDS)})")
    return _HANDLERS[command](list(argv))


# One `main_<command>(argv)` per command, the shape labkit/cli/main.py's Subcommand table calls.
def main_up(argv): return main_lab("up", argv)  # noqa: E704
def main_down(argv): return main_lab("down", argv)  # noqa: E704
def main_status(argv): return main_lab("status", argv)  # noqa: E704
def main_doctor(argv): return main_lab("doctor", argv)  # noqa: E704
def main_apply(argv): return main_lab("apply", argv)  # noqa: E704
def main_delete(argv): return main_lab("delete", argv)  # noqa: E704
def main_scale(argv): return main_lab("scale", argv)  # noqa: E704
def main_probe(argv): return main_lab("probe", argv)  # noqa: E704
def main_http(argv): return main_lab("http", argv)  # noqa: E704
def main_lab_trace(argv): return main_lab("trace", argv)  # noqa: E704
def main_conntrack(argv): return main_lab("conntrack", argv)  # noqa: E704
def main_rules(argv): return main_lab("rules", argv)  # noqa: E704


if __name__ == "__main__":  # python -m labkit.cli.lab_cmds up --name demo
    try:
        sys.exit(main_lab(sys.argv[1], sys.argv[2:]))
    except LabkitError as e:
        print(f"labkit: {e}", file=sys.stderr)
        sys.exit(2)
