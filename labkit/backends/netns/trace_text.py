"""`xtables-monitor --trace` output -> TraceSteps (pure: text in, data out).

The kernel prints, for each traced packet (an id), the packet as each table
sees it, then one TRACE line per rule or policy it met:
  PACKET: 2 77223f13 IN=lkdemo-0102 ... SRC=10.244.1.2 DST=10.96.53.43 ... SPORT=45000 DPORT=80 SYN
   TRACE: 2 77223f13 nat:KUBE-SERVICES:rule:0x29:JUMP:KUBE-SVC-X  -4 -t nat -A KUBE-SERVICES ... -j KUBE-SVC-X
   TRACE: 2 77223f13 nat:PREROUTING:policy:ACCEPT
The handles (0x29) are nftables handles, not positions; the rule's position
in its chain is found in the node's iptables-save text instead.
"""
from __future__ import annotations

import re

from labkit.backends.base import TraceStep

_TRACE = re.compile(r"^\s*TRACE: \d+ (?P<id>[0-9a-f]+) (?P<table>\w+):(?P<chain>[^:]+):(?P<kind>rule|policy|return)"
                    r"(?::(?P<rest>\S*))?\s*(?P<rule>.*)$")
_PACKET = re.compile(r"^\s*PACKET: \d+ (?P<id>[0-9a-f]+) (?P<fields>.*)$")
NFT_RETURN = "0xfffffffb"


def summarize_packet(fields: str) -> str:
    """"SRC=a DST=b ... SPORT=1 DPORT=2 SYN" -> "a:1 > b:2 SYN"."""
    kv = dict(w.split("=", 1) for w in fields.split() if "=" in w)
    flags = [w for w in fields.split() if "=" not in w and w.isupper() and w != "DF"]
    text = f"{kv.get('SRC', '?')}:{kv.get('SPORT', '')} > {kv.get('DST', '?')}:{kv.get('DPORT', '')}"
    return " ".join([text] + flags)


def rule_positions(save_text: str, table: str) -> dict[str, int]:
    """{"-A CHAIN ...": position in its chain (1-based)} from one table of iptables-save text."""
    positions: dict[str, int] = {}
    count: dict[str, int] = {}
    current = None
    for line in save_text.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
        elif current == table and line.startswith("-A "):
            chain = line.split()[1]
            count[chain] = count.get(chain, 0) + 1
            positions.setdefault(line, count[chain])
    return positions


def parse_xtables_trace(text: str, positions: dict[str, dict[str, int]] | None = None,
                        packet_id: str = "") -> list[TraceStep]:
    """The steps of one traced packet (the first id seen unless `packet_id`), TRACE rules left out.

    positions: {table: rule_positions(...)} to number the rules; 0 where unknown.
    """
    positions = positions or {}
    steps: list[TraceStep] = []
    packet = ""
    for line in text.splitlines():
        m = _PACKET.match(line)
        if m:
            packet_id = packet_id or m.group("id")
            if m.group("id") == packet_id:
                packet = summarize_packet(m.group("fields"))
            continue
        m = _TRACE.match(line)
        if not m or m.group("id") != (packet_id or m.group("id")):
            continue
        packet_id = packet_id or m.group("id")
        table, chain, kind = m.group("table"), m.group("chain"), m.group("kind")
        rule = re.sub(r"^-4 -t \w+ ", "", m.group("rule").strip())
        if "-j TRACE" in rule:
            continue
        rest = m.group("rest") or ""
        if kind == "policy":
            steps.append(TraceStep(table, chain, 0, "", rest or "ACCEPT", packet))
            continue
        if kind == "return":
            steps.append(TraceStep(table, chain, 0, "", "RETURN", packet))
            continue
        verdict = rest.split(":", 1)[1] if ":" in rest else ""
        if verdict.startswith("JUMP:") or verdict.startswith("GOTO:"):
            verdict = verdict.split(":", 1)[1]
        elif verdict == NFT_RETURN:
            verdict = "RETURN"
        elif verdict == "CONTINUE":  # a matched non-terminating target: MARK, LOG, ...
            target = re.search(r" -j (\S+)", rule)
            verdict = target.group(1) if target else "continue"
        else:  # ACCEPT/DROP as nftables sees them: name the iptables target (DNAT, MASQUERADE, ...)
            target = re.search(r" -j (\S+)", rule)
            verdict = target.group(1) if target else verdict
        number = positions.get(table, {}).get(rule, 0)
        steps.append(TraceStep(table, chain, number, rule, verdict, packet))
    return steps
