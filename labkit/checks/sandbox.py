"""A throw-away simulated copy of a lab, to try a learner's rule without touching the lab.

Some exercises ask for a rule ("write the MASQUERADE that makes egress
work"). The check loads it into a copy: the same plan and cluster state
(read from the live lab, whichever backend runs it), the same rule text the
nodes carry, plus the learner's lines, and sends real probes through the
simulation, which interprets iptables-restore text as the kernel does. The
live lab is never changed, so a wrong rule cannot break the notebook.
"""
from __future__ import annotations

import shlex
from typing import Optional, Sequence

from labkit.checks.core import AnswerError
from labkit.topology.masquerade import MasqueradeSettings, merge_restore_texts

NAT_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")


def parse_rule_lines(answer, table: str = "nat") -> list[str]:
    """A learner's rule(s) -> lines as iptables-save prints them ("-A POSTROUTING ...").

    Accepts one string (several rules on several lines) or a list of strings;
    a leading `iptables` and `-t TABLE` are dropped, as a learner may copy the
    command they would type. AnswerError for anything that is not an -A/-I rule.
    """
    if isinstance(answer, str):
        lines = [l for l in answer.splitlines() if l.strip() and not l.strip().startswith("#")]
    elif isinstance(answer, (list, tuple)) and all(isinstance(a, str) for a in answer):
        lines = [l for a in answer for l in a.splitlines() if l.strip()]
    else:
        raise AnswerError(f"expected a rule as a string such as '-A POSTROUTING -j MASQUERADE', got {answer!r}")
    if not lines:
        raise AnswerError("the answer holds no rule: write one such as '-A POSTROUTING ... -j MASQUERADE'")
    out = []
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise AnswerError(f"cannot read {line!r}: {e}") from None
        if words and words[0] in ("iptables", "sudo"):
            words = [w for w in words if w not in ("iptables", "sudo")]
        if len(words) >= 2 and words[0] == "-t":
            if words[1] != table:
                raise AnswerError(f"this rule belongs in the {table} table, not {words[1]!r} (write -t {table}, "
                                  "or leave -t out)")
            words = words[2:]
        if len(words) < 2 or words[0] not in ("-A", "-I"):
            raise AnswerError(f"write the rule as iptables-save prints it, starting with the chain: "
                              f"'-A POSTROUTING ...' (got {line!r})")
        if words[0] == "-I":  # iptables-restore has -I too, but one appended rule is all we need
            words = ["-A"] + [w for i, w in enumerate(words[1:]) if not (i == 1 and w.isdigit())]
        out.append(" ".join(shlex.quote(w) if (" " in w or not w) else w for w in words))
    return out


def rules_text(lines: Sequence[str], table: str = "nat") -> str:
    """The lines as an iptables-restore input of `table` (chain declarations for the built-in chains)."""
    chains = sorted({l.split()[1] for l in lines})
    decl = [f":{c} ACCEPT [0:0]" if c in NAT_CHAINS + ("FORWARD",) else f":{c} - [0:0]" for c in chains]
    return "\n".join([f"*{table}"] + decl + list(lines) + ["COMMIT", ""])


def sim_copy(lab, masquerade: Optional[MasqueradeSettings] = None, cloud: bool = True):
    """A new SimLab in `lab`'s state (same plan, same cluster), with its own conntrack.

    masquerade: the pod network's masquerade in the copy (default: the lab's own).
    """
    from dataclasses import replace

    from labkit.backends.sim.lab import SimLab
    from labkit.topology.outside import LabNetworkSettings

    state = getattr(lab, "state", None)
    if state is None:
        raise AnswerError("this check needs the lab's cluster state: run the setup cell first")
    network = getattr(lab, "network", None) or LabNetworkSettings()
    network = replace(network, cloud=cloud or network.cloud,
                      masquerade=masquerade if masquerade is not None else network.masquerade)
    name = getattr(lab, "lab", None) or "lab"
    sim = SimLab(name, getattr(lab, "kind_config", "") or "", getattr(lab, "seed", 0), network=network)
    sim.up()
    sim._sync(state)  # the lab's cluster as it is now, not as a replay would make it
    return sim


def add_node_rules(sim, lines: Sequence[str], table: str = "nat", nodes: Optional[Sequence[str]] = None) -> None:
    """Append the rule lines to `table` of the copy's nodes (all, or those named)."""
    from labkit.backends.netns.rules import render_lab_rules
    from labkit.errors import RuleError

    texts = render_lab_rules(sim.plan, sim.state, sim.network.masquerade)
    extra = rules_text(lines, table)
    for n in sim.plan.nodes:
        if nodes is not None and n.name not in nodes:
            continue
        try:
            sim.dataplane.set_rules(n.netns, merge_restore_texts(texts[n.netns], extra))
        except RuleError as e:
            raise AnswerError(f"iptables-restore would refuse this rule: {e.reason}") from None


def service_manifest(svc, **spec) -> str:
    """YAML for a model Service as the lab has it (addresses and ports kept), with `spec` fields
    (API spelling, e.g. externalTrafficPolicy="Local") replaced: what `kubectl edit` would save."""
    import yaml

    ports = []
    for p in svc.ports:
        d = {"port": p.port, "protocol": p.protocol, "targetPort": p.target_port}
        if p.name:
            d = {"name": p.name, **d}
        if p.node_port and svc.type in ("NodePort", "LoadBalancer"):
            d["nodePort"] = p.node_port
        ports.append(d)
    body = {"type": svc.type}
    if svc.selector is not None:
        body["selector"] = dict(svc.selector)
    if svc.cluster_ip and svc.cluster_ip != "None":
        body["clusterIP"] = svc.cluster_ip
    if svc.type in ("NodePort", "LoadBalancer") and svc.external_traffic_policy:
        body["externalTrafficPolicy"] = svc.external_traffic_policy
    if svc.type == "LoadBalancer":
        if svc.load_balancer_source_ranges:
            body["loadBalancerSourceRanges"] = list(svc.load_balancer_source_ranges)
        if svc.health_check_node_port and svc.external_traffic_policy == "Local":
            body["healthCheckNodePort"] = svc.health_check_node_port
    body["ports"] = ports
    body.update(spec)
    if body.get("externalTrafficPolicy") != "Local":
        body.pop("healthCheckNodePort", None)
    doc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": svc.meta.name, "namespace": svc.meta.namespace}, "spec": body}
    return yaml.safe_dump(doc, sort_keys=False)
