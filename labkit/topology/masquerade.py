"""The lab's own NAT rules, as iptables-restore text: kindnet's and the docker host's.

A kind node carries more than kube-proxy's rules: kindnet's ip-masq-agent
masquerades pod traffic leaving the pod network (chain KIND-MASQ-AGENT, with
kindnet's own comments), and the docker host masquerades the node network
towards the internet. The lab loads both, so a learner sees the same SNAT a
real kind cluster does. Pure: text out, plus a merge of restore texts so each
namespace gets ONE iptables-restore.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

MASQ_CHAIN = "KIND-MASQ-AGENT"


@dataclass(frozen=True)
class MasqueradeSettings:
    """The pod network's masquerade, as a learner may change it.

    enabled: False leaves kindnet's chain out entirely (`labkit masquerade off`):
    pod traffic leaves the node with the pod's own address.
    non_masquerade_cidrs: ip-masq-agent's list; None means kindnet's default
    (the pod subnet).
    """

    enabled: bool = True
    non_masquerade_cidrs: Optional[tuple[str, ...]] = None


def render_kindnet_masquerade(pod_subnet: str, non_masquerade_cidrs: Optional[Sequence[str]] = None) -> str:
    """kindnet's ip-masq-agent rules for a node (nat table only).

    non_masquerade_cidrs: destinations reached with the pod's own address (ip-masq-agent's
    nonMasqueradeCIDRs); kindnet's default is the pod subnet alone.
    """
    cidrs = list(non_masquerade_cidrs) if non_masquerade_cidrs is not None else [pod_subnet]
    return "\n".join(
        [
            "*nat",
            ":POSTROUTING ACCEPT [0:0]",
            f":{MASQ_CHAIN} - [0:0]",
            "-A POSTROUTING -m addrtype ! --dst-type LOCAL -m comment --comment "
            '"kind-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic '
            f'to our custom {MASQ_CHAIN} chain" -j {MASQ_CHAIN}',
        ]
        + [f"-A {MASQ_CHAIN} -d {cidr} -m comment --comment "
           '"kind-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN' for cidr in cidrs]
        + [
            f"-A {MASQ_CHAIN} -m comment --comment "
            '"kind-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE',
            "COMMIT",
            "",
        ]
    )


def render_network_masquerade(node_network: str, bridge: str) -> str:
    """The docker host's rule for the node network: SNAT whatever leaves by another link."""
    return "\n".join(
        [
            "*nat",
            ":POSTROUTING ACCEPT [0:0]",
            f"-A POSTROUTING -s {node_network} ! -o {bridge} -j MASQUERADE",
            "COMMIT",
            "",
        ]
    )


def merge_restore_texts(*texts: str) -> str:
    """Several iptables-restore inputs -> one, table by table, in first-seen order.

    Chain declarations are kept once (the first one wins: it carries the
    policy); rules keep their order, earlier texts first. Lines before the
    first table (comments) are dropped. The result, loaded without
    --noflush, replaces exactly the tables it names.
    """
    order: list[str] = []
    chains: dict[str, dict[str, str]] = {}
    rules: dict[str, list[str]] = {}
    for text in texts:
        table = None
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                if table not in chains:
                    order.append(table)
                    chains[table] = {}
                    rules[table] = []
            elif table is None or not line.strip() or line.startswith("#"):
                continue
            elif line.startswith(":"):
                name = line[1:].split()[0]
                chains[table].setdefault(name, line)
            elif line.strip() == "COMMIT":
                table = None
            else:
                rules[table].append(line)
    out: list[str] = []
    for table in order:
        out.append(f"*{table}")
        out += chains[table].values()
        out += rules[table]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""
