"""`labkit trace`: follow one new packet through rule text, chain by chain.

The packet is walked by the simulated dataplane in a single namespace whose
local addresses are given (it also has a default route out of eth0, so
non-local destinations are forwarded). It enters PREROUTING, or OUTPUT when
--from is one of the local addresses. Exit code: 0 if some outcome accepts
the packet, 1 if every outcome drops or rejects it, 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Optional, Sequence

from labkit.errors import LabkitError

NODE, UPLINK = "node", "eth0"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labkit trace",
        description="Follow one new packet through iptables-restore rules, chain by chain, "
                    "with the kernel's semantics (simulated).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rules", metavar="FILE",
                     help="iptables-restore / iptables-save text ('-' for stdin)")
    src.add_argument("--lab", metavar="NAME", help="a running lab (--from ns/pod)")
    p.add_argument("--from", dest="src", required=True, metavar="SRC_IP",
                   help="source address (with --lab: NAMESPACE/POD)")
    p.add_argument("--to", dest="dst", required=True, metavar="DST_IP:PORT",
                   help="destination address and port")
    p.add_argument("--protocol", choices=("tcp", "udp", "sctp"), default="tcp")
    p.add_argument("--local-address", action="append", default=[], metavar="IP",
                   help="an address of the node (repeat for several)")
    p.add_argument("--sport", type=int, default=40000, help="source port (default 40000)")
    p.add_argument("--all-branches", action="store_true",
                   help="every possible outcome with its probability")
    p.add_argument("--seed", type=int, default=0, help="seed for random rules (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def parse_destination(text: str) -> tuple[str, int]:
    from labkit.dataplane.packet import ip_int
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise LabkitError(f"--to {text}: write the destination as IP:PORT, e.g. 10.96.0.10:53")
    try:
        ip_int(host)
    except ValueError as e:
        raise LabkitError(f"--to {text}: {e}") from None
    return host, int(port)


def check_address(opt: str, text: str) -> str:
    from labkit.dataplane.packet import ip_int
    try:
        ip_int(text)
    except ValueError as e:
        raise LabkitError(f"{opt} {text}: {e}") from None
    return text


def build_node(rules_text: str, local_addresses: Sequence[str]):
    """The one-namespace lab `labkit trace --rules` runs in."""
    from labkit.dataplane.topology import Topology
    topo = Topology()
    topo.add_namespace(NODE, forwarding=True, rules=rules_text)
    topo.add_external(NODE, UPLINK)
    for ip in local_addresses:
        topo.add_address(NODE, UPLINK, f"{ip}/32")
    topo.add_route(NODE, "default", dev=UPLINK)
    return topo


def trace_rules(rules_text: str, src: str, dst: str, dport: int, protocol: str = "tcp",
                local_addresses: Sequence[str] = (), all_branches: bool = False,
                seed: int = 0, sport: int = 40000) -> list[dict]:
    """The outcomes `labkit trace --json` prints, as data."""
    from labkit.dataplane.packet import Packet
    from labkit.dataplane.topology import LabState
    from labkit.dataplane.walk import walk_all_branches, walk_packet
    topo = build_node(rules_text, local_addresses)
    flags = "SYN" if protocol == "tcp" else ""
    packet = Packet(protocol, src, dst, sport, dport, flags=flags)
    ingress = None if src in set(local_addresses) else UPLINK
    if all_branches:
        walks = walk_all_branches(topo, LabState(), NODE, packet, ingress=ingress, seed=seed)
    else:
        walks = [walk_packet(topo, LabState(), NODE, packet, ingress=ingress,
                             rng=random.Random(seed))]
    return [outcome(w, packet) for w in walks]


def outcome(walk, packet) -> dict:
    final = walk.packet
    changed = (final.dst, final.dport) != (packet.dst, packet.dport)
    dnat = [h for h in walk.hops if h.where.endswith("DNAT") and not h.where.startswith("POST")]
    destination = None
    if dnat or changed:
        last = dnat[-1].packet if dnat else final
        destination = f"{last.dst}:{last.dport}"
    return {
        "destination": destination,
        "verdict": walk.kernel_verdict,
        "explicit": walk.explicit,
        "masquerade": walk.masquerade,
        "probability": walk.probability,
        "trace": [line for line in (ev.render("nft") for ev in walk.trace) if line is not None],
        "detail": walk.verdict + (f" ({walk.reason})" if walk.reason else ""),
    }


def render_outcomes(outcomes: list[dict], src: str, dst: str, dport: int, proto: str) -> str:
    lines = [f"{proto} {src} -> {dst}:{dport}: {len(outcomes)} outcome"
             f"{'s' if len(outcomes) != 1 else ''}"]
    for n, o in enumerate(outcomes, 1):
        head = f"\n[{n}] {o['verdict']}"
        if o["destination"]:
            head += f" -> {o['destination']}"
        head += f"  probability {o['probability']:.4f}"
        head += "  (decided by a rule)" if o["explicit"] else "  (no rule decided: policy)"
        if o["masquerade"]:
            head += "  masquerade"
        lines.append(head)
        lines.append(f"    {o['detail']}")
        lines.extend(f"    {t.rstrip()}" for t in o["trace"])
    return "\n".join(lines) + "\n"


def main_trace(argv: Sequence[str]) -> int:
    """`labkit trace`: rule text (--rules), or a live lab (--name / --lab)."""
    argv = list(argv)
    if any(a in ("--name", "--lab") or a.startswith(("--name=", "--lab=")) for a in argv):
        from labkit.cli.lab_cmds import main_lab

        return main_lab("trace", [a.replace("--lab", "--name", 1) if a.startswith("--lab") else a
                                  for a in argv])
    parser = build_parser()
    args = parser.parse_args(list(argv))
    try:
        return _run(args)
    except LabkitError as e:
        print(f"labkit trace: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    dst, dport = parse_destination(args.dst)
    src = check_address("--from", args.src)
    local = [check_address("--local-address", a) for a in args.local_address]
    rules_text = _read(args.rules)
    outcomes = trace_rules(rules_text, src, dst, dport, args.protocol, local,
                           args.all_branches, args.seed, args.sport)
    if args.json:
        print(json.dumps({"outcomes": [{k: v for k, v in o.items() if k != "detail"}
                                       for o in outcomes]}, indent=2))
    else:
        sys.stdout.write(render_outcomes(outcomes, src, dst, dport, args.protocol))
    return 0 if any(o["verdict"] == "ACCEPT" for o in outcomes) else 1


def _read(path: Optional[str]) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise LabkitError(f"--rules {path}: cannot read it ({e.strerror})") from None
