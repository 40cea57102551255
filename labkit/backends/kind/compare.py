"""A live node's kube-proxy rules against labkit's rendering of the same objects (pure).

Input: the node's `iptables-save` text and labkit's iptables-restore text
for that node (render_iptables(...).full_text). Both are read into
per-chain rule lists and printed by labkit's own save-format printer
(parse_iptables_restore(...).render()), so spelling differences
(`-d 10.96.0.1` vs `-d 10.96.0.1/32`, option order, 0.3333333333 vs
0.33333333349) vanish and only real differences remain.

Compared: kube-proxy's chains (KUBE-*, minus kubelet's canary and hint
chains) and the rules in built-in chains that jump to them. Not compared,
but listed: other owners' chains (kindnet's KIND-MASQ-AGENT, docker's
embedded-DNS chains, kubelet's). In KUBE-SERVICES, KUBE-NODEPORTS,
KUBE-EXTERNAL-SERVICES and KUBE-PROXY-FIREWALL kube-proxy writes one rule
per service in Go's map order, which changes from sync to sync, so there
only the set of rules counts; everywhere else order counts too.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from labkit.dataplane.iptables_parse import BUILTIN_CHAINS, parse_iptables_restore
from labkit.errors import RuleError

UNORDERED_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL")
KUBELET_CHAINS = ("KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT", "KUBE-MARK-DROP")


def owner(chain: str) -> str:
    """Who programs a (non built-in) chain on a kind node."""
    if chain in KUBELET_CHAINS:
        return "kubelet"
    if chain == "KIND-MASQ-AGENT":
        return "kindnet's ip-masq-agent"
    if chain.startswith("DOCKER"):
        return "docker's embedded DNS server (127.0.0.11)"
    if chain.startswith("CNI-"):
        return "the CNI portmap plugin (hostPort)"
    return "kube-proxy" if chain.startswith("KUBE-") else "someone else"


@dataclass(frozen=True)
class ChainDiff:
    table: str
    chain: str
    only_node: tuple[str, ...]  # rules the node has and labkit does not render
    only_labkit: tuple[str, ...]  # rules labkit renders and the node does not have
    reordered: bool = False  # the same rules in another order (where order counts)
    explanation: str = ""


@dataclass(frozen=True)
class RulesComparison:
    node: str
    chains: int  # kube-proxy chains compared
    rules: int  # kube-proxy rules on the node
    diffs: tuple[ChainDiff, ...]
    not_compared: tuple[str, ...]  # "nat KIND-MASQ-AGENT (kindnet's ip-masq-agent): 2 rules"

    @property
    def same(self) -> bool:
        return not self.diffs


def split_save(text: str) -> dict[str, dict[str, list[str]]]:
    """{table: {chain: [-A lines]}}; chains declared but empty are present with []."""
    tables: dict[str, dict[str, list[str]]] = {}
    table = None
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("*"):
            table = line[1:].strip()
            tables.setdefault(table, {})
        elif table is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            tables[table].setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            tables[table].setdefault(line.split()[1], []).append(line)
    return tables


def _target(rule: str) -> str:
    m = re.search(r" -[jg] (\S+)", rule)
    return m.group(1) if m else ""


def _canonical(table: str, chains: dict[str, list[str]]) -> dict[str, list[str]]:
    """The chains' rules in labkit's save-format spelling (as written, where labkit cannot read a rule)."""
    builtin = BUILTIN_CHAINS.get(table, ())
    doc = [f"*{table}"] + [f":{c} {'ACCEPT' if c in builtin else '-'} [0:0]" for c in chains]
    doc += [r for rules in chains.values() for r in rules] + ["COMMIT", ""]
    try:
        rendered = split_save(parse_iptables_restore("\n".join(doc)).render()).get(table, {})
    except RuleError:
        return {c: [" ".join(r.split()) for r in rules] for c, rules in chains.items()}
    return {c: rendered.get(c, []) for c in chains}


def _kube_proxy_part(tables: dict[str, dict[str, list[str]]], owned: set[str]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for table, chains in tables.items():
        builtin = BUILTIN_CHAINS.get(table, ())
        part = {}
        for chain, rules in chains.items():
            if chain in builtin:
                jumps = [r for r in rules if _target(r) in owned]
                if jumps:
                    part[chain] = jumps
            elif chain in owned:
                part[chain] = rules
        if part:
            out[table] = part
    return out


def _service_of(rules) -> str:
    for r in rules:
        m = re.search(r'--comment "?([^" ]+/[^" ]+?)(?:"| )', r)
        if m:
            return m.group(1)
    return ""


def explain(table: str, chain: str, only_node, only_labkit, whole_node: bool, whole_labkit: bool,
            reordered: bool) -> str:
    """One or two sentences on what a chain's difference means."""
    svc = _service_of(list(only_node) + list(only_labkit))
    about = f" (Service port {svc})" if svc else ""
    if whole_node or whole_labkit:
        where, other = ("the node", "labkit's rendering") if whole_node else ("labkit's rendering", "the node")
        if chain.startswith("KUBE-SEP-"):
            dnat = [r for r in (only_node or only_labkit) if "--to-destination" in r]
            ep = dnat[0].split("--to-destination ", 1)[1].split()[0] if dnat else "?"
            return (f"endpoint chain for {ep}{about} exists only in {where}: {other} does not have this endpoint "
                    "(an EndpointSlice changed between the two reads, or the objects differ)")
        return (f"chain {chain}{about} exists only in {where}: kube-proxy and labkit did not see the same "
                "Services")
    if reordered:
        return ("the same rules in another order; in this chain the order decides which rule matches first "
                "(for a KUBE-SVC chain: which endpoint gets which probability)")
    strip = lambda rs: sorted(re.sub(r"--probability \S+", "--probability P", r) for r in rs)  # noqa: E731
    if only_node and strip(only_node) == strip(only_labkit):
        return (f"only the --probability values differ{about}: kube-proxy gives the i-th of n endpoints "
                "1/(n-i+1), so a different value means a different endpoint count or a changed rule")
    if chain == "KUBE-SERVICES" or chain == "KUBE-NODEPORTS":
        return (f"the service dispatch rules differ{about}: a Service (or a port of one) is known to only one side")
    if chain.startswith("KUBE-SVC-") or chain.startswith("KUBE-SVL-"):
        return f"the load-balancing rules differ{about}: the two sides see different endpoints"
    return f"the rules differ{about}"


def compare_rules(node_text: str, labkit_text: str, node: str = "") -> RulesComparison:
    """Compare kube-proxy's part of a node's iptables-save text with labkit's rendering."""
    node_tables, lab_tables = split_save(node_text), split_save(labkit_text)
    owned = {c for t in lab_tables.values() for c in t if owner(c) == "kube-proxy"}
    owned |= {c for t in node_tables.values() for c in t if owner(c) == "kube-proxy"}
    node_part = {t: _canonical(t, cs) for t, cs in _kube_proxy_part(node_tables, owned).items()}
    lab_part = {t: _canonical(t, cs) for t, cs in _kube_proxy_part(lab_tables, owned).items()}
    diffs: list[ChainDiff] = []
    chains = rules = 0
    for table in dict.fromkeys(list(lab_part) + list(node_part)):
        n_chains, l_chains = node_part.get(table, {}), lab_part.get(table, {})
        for chain in sorted(set(n_chains) | set(l_chains)):
            n, lab = n_chains.get(chain), l_chains.get(chain)
            chains += 1
            rules += len(n or [])
            n_rules, l_rules = n or [], lab or []
            if n_rules == l_rules and (n is None) == (lab is None):
                continue
            only_n = tuple((Counter(n_rules) - Counter(l_rules)).elements())
            only_l = tuple((Counter(l_rules) - Counter(n_rules)).elements())
            unordered = chain in UNORDERED_CHAINS or chain in BUILTIN_CHAINS.get(table, ())
            reordered = not only_n and not only_l and not unordered
            if not only_n and not only_l and not reordered and (n is None) == (lab is None):
                continue
            diffs.append(ChainDiff(table, chain, only_n, only_l, reordered,
                                   explain(table, chain, only_n, only_l, lab is None, n is None, reordered)))
    others = []
    for table, cs in node_tables.items():
        for chain, rs in cs.items():
            if chain not in BUILTIN_CHAINS.get(table, ()) and owner(chain) != "kube-proxy":
                others.append(f"{table} {chain} ({owner(chain)}): {len(rs)} rule{'s' if len(rs) != 1 else ''}")
    return RulesComparison(node, chains, rules, tuple(diffs), tuple(others))


def render_comparison(c: RulesComparison) -> str:
    """The report `labkit compare-rules` prints."""
    where = f"node {c.node}" if c.node else "the node"
    lines = []
    if c.same:
        lines.append(f"no difference: {where}'s kube-proxy rules ({c.rules} rules in {c.chains} chains) are "
                     "exactly labkit's rendering of the same Services and EndpointSlices")
    else:
        n = len(c.diffs)
        lines.append(f"{n} chain{'s' if n != 1 else ''} differ between {where}'s kube-proxy rules and labkit's "
                     "rendering of the same objects (- only on the node, + only in labkit's rendering):")
        for d in c.diffs:
            lines.append("")
            lines.append(f"{d.table} {d.chain}: {d.explanation}")
            lines += [f"  - {r}" for r in d.only_node]
            lines += [f"  + {r}" for r in d.only_labkit]
    if c.not_compared:
        lines.append("")
        lines.append("not compared (not kube-proxy's):")
        lines += [f"  {x}" for x in c.not_compared]
    return "\n".join(lines) + "\n"
