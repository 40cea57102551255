"""The kind backend on the command line: `labkit compare-rules`, and the hooks `labkit up/down` call.

    labkit up --backend kind -f web.yaml [--config kind.yaml]
    labkit compare-rules --name lab --node kind-worker
    labkit down --name lab

lab_cmds.py hands a kind lab to the functions here (up_kind, attach_kind,
down_kind); the other labs' commands (probe, http, rules, conntrack, ...)
then work on it unchanged.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from labkit.errors import LabkitError


def up_kind(name: str, config: str, manifests: str, source: str, seed: int) -> int:
    """`labkit up --backend kind`: make the cluster, apply, wait; one summary line."""
    from labkit.backends.kind.lab import KindLab

    lab = KindLab(name, config, seed)
    lab.up(manifests, source)
    print(f"lab {name} is up (kind cluster {lab.cluster!r}, kubectl context {lab.context}): "
          f"{len(lab.topology.nodes)} nodes, {len(lab.pods())} pods")
    return 0


def attach_kind(name: str):
    """The kind lab `name` if one is up, else None (the caller tries the other backends)."""
    from labkit.backends.kind.lab import KindLab, KindState, default_state_dir

    state = KindState.load(default_state_dir(), name)
    return KindLab.attach(name) if state is not None and state.phase == "up" else None


def down_kind(name: str) -> Optional[str]:
    """Delete the kind lab `name`'s cluster if labkit made one; a summary line, or None if there is none."""
    from labkit.backends.kind.lab import KindLab, KindState, default_state_dir

    state = KindState.load(default_state_dir(), name)
    if state is None:
        return None
    lab = KindLab(name, state.kind_config, state.seed)
    lab.state = state
    lab.down()
    return f"lab {name}: deleted kind cluster {state.cluster!r}"


def main_compare_rules(argv: Sequence[str]) -> int:
    """`labkit compare-rules`: exit 0 when the node's kube-proxy rules are labkit's, 1 when they differ."""
    from labkit.backends.kind.compare import render_comparison
    from labkit.backends.kind.lab import KindLab
    from labkit.topology.plan import DEFAULT_LAB_NAME

    p = argparse.ArgumentParser(
        prog="labkit compare-rules",
        description="Diff a live kind node's kube-proxy rules (docker exec NODE iptables-save) against labkit's "
                    "rendering of the same Services and EndpointSlices, and explain any difference.")
    p.add_argument("--name", default=DEFAULT_LAB_NAME, help=f"the kind lab's name (default {DEFAULT_LAB_NAME})")
    p.add_argument("--node", required=True, help="a node of the cluster, e.g. kind-worker")
    p.add_argument("--show-rendering", action="store_true", help="print labkit's rendering instead of comparing")
    args = p.parse_args(list(argv))
    lab = KindLab.attach(args.name)
    if args.show_rendering:
        sys.stdout.write(lab.render_kube_proxy(args.node))
        return 0
    c = lab.compare_rules(args.node)
    sys.stdout.write(render_comparison(c))
    return 0 if c.same else 1


if __name__ == "__main__":
    try:
        sys.exit(main_compare_rules(sys.argv[1:]))
    except LabkitError as e:
        print(f"labkit: {e}", file=sys.stderr)
        sys.exit(2)
