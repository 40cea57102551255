"""The trace of a packet's walk through the rules, in the kernel's own words.

A TraceEvent is one line of what the kernel's TRACE target reports. The
default text form is exactly what `xtables-monitor --trace` prints on an
nf_tables host (rule handles, `JUMP:CHAIN`, `policy:ACCEPT`, the rule in
`iptables -S` spelling), so a simulated trace and a kernel trace can be
compared line by line. The legacy form (`rule:N`, `return:N`, `policy:N`)
is what iptables-legacy's TRACE logs.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Optional

NFT_RETURN = "0xfffffffb"  # how xtables-monitor prints a RETURN verdict


class TraceEvent(NamedTuple):
    ns: str            # network namespace the chain ran in
    table: str
    chain: str
    kind: str          # "rule", "policy" or "return" (end of a user chain)
    verdict: str       # ACCEPT DROP REJECT CONTINUE RETURN JUMP:X GOTO:X DNAT SNAT MASQUERADE
    rule: object = None  # the Rule (for "rule" events)
    position: int = 0  # 1-based rule number in its chain (policy/return: rules + 1)

    @property
    def nft_verdict(self) -> str:
        """The verdict as the kernel reports it (NAT targets accept, REJECT drops)."""
        v = self.verdict
        if v in ("DNAT", "SNAT", "MASQUERADE"):
            return "ACCEPT"
        if v == "REJECT":
            return "DROP"
        if v == "RETURN":
            return NFT_RETURN
        return v

    def render(self, style: str = "nft") -> Optional[str]:
        """One line; None when the kernel prints nothing for this event in `style`."""
        if style == "legacy":
            return f"{self.table}:{self.chain}:{self.kind}:{self.position}"
        if self.kind == "return":
            return None  # nf_tables does not report falling off a user chain
        if self.kind == "policy":
            return f"{self.table}:{self.chain}:policy:{self.nft_verdict} "
        rule = self.rule
        return (f"{self.table}:{self.chain}:rule:0x{rule.handle:x}:{self.nft_verdict}  "
                f"-4 -t {self.table} {rule.canonical}")

    def render_readable(self) -> str:
        """For learners: position, verdict and the rule as written."""
        where = f"{self.ns}: " if self.ns else ""
        if self.kind == "policy":
            return f"{where}{self.table}:{self.chain}: policy {self.verdict}"
        if self.kind == "return":
            return f"{where}{self.table}:{self.chain}: end of chain, return"
        return (f"{where}{self.table}:{self.chain}:rule:{self.position}:{self.verdict}  "
                f"{self.rule.canonical}")


def render_trace(events, style: str = "nft", packet_id: int | None = None) -> str:
    """Trace lines for `events`. With packet_id, each line carries the full
    xtables-monitor prefix ` TRACE: 2 <id> ` (legacy: `TRACE: `)."""
    lines = []
    for ev in events:
        text = ev.render(style)
        if text is None:
            continue
        if packet_id is not None:
            text = (f"TRACE: {text}" if style == "legacy"
                    else f" TRACE: 2 {packet_id:08x} {text}")
        lines.append(text)
    return "\n".join(lines) + ("\n" if lines else "")


_MONITOR_LINE = re.compile(r"^\s*TRACE: (\d+) ([0-9a-f]{8}) (.*)$")


def parse_xtables_monitor(text: str) -> list[tuple[str, list[str]]]:
    """`xtables-monitor --trace` output -> [(packet id, [trace bodies in order])].

    One entry per run of consecutive lines with the same id (the kernel
    reuses ids, so a dict would merge packets). Bodies are what
    TraceEvent.render("nft") returns, so a kernel run and a sim run compare
    with ==. PACKET and EVENT lines are skipped.
    """
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _MONITOR_LINE.match(line)
        if not m:
            continue
        if out and out[-1][0] == m.group(2):
            out[-1][1].append(m.group(3))
        else:
            out.append((m.group(2), [m.group(3)]))
    return out
