"""`conntrack -L` output -> ConntrackEntry (pure: text in, data out).

Both the plain and the `-o extended` formats:
  ipv4     2 tcp      6 117 SYN_SENT src=10.244.1.2 dst=10.96.0.10 sport=40000 dport=80 [UNREPLIED] \
      src=10.244.2.2 dst=10.244.1.2 sport=8080 dport=40000 mark=0 use=1
  udp      17 29 src=... dst=... sport=.. dport=.. [UNREPLIED] src=... mark=0 zone=3 use=1
"""
from __future__ import annotations

from labkit.backends.base import ConntrackEntry, Tuple4
from labkit.errors import RuleError

_PROTOS = {"tcp", "udp", "icmp", "sctp", "udplite", "dccp", "gre", "unknown"}


def parse_conntrack(text: str) -> list[ConntrackEntry]:
    """Every entry in `text`; lines that are not entries ("conntrack v1.4.7 ...") are skipped."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if words[0] in ("ipv4", "ipv6"):
            words = words[2:]
        if not words or words[0] not in _PROTOS:
            continue
        out.append(parse_conntrack_line(words, n, line))
    return out


def parse_conntrack_line(words: list[str], line_no: int = 0, line: str = "") -> ConntrackEntry:
    proto = words[0]
    try:
        timeout = int(words[2])
    except (IndexError, ValueError):
        raise RuleError("a conntrack entry needs 'PROTO NUMBER TIMEOUT'", line_no, line) from None
    state = ""
    rest = words[3:]
    if rest and "=" not in rest[0] and not rest[0].startswith("["):
        state, rest = rest[0], rest[1:]
    tuples: list[dict[str, str]] = []
    flags: list[str] = []
    extra: dict[str, str] = {}
    for w in rest:
        if w.startswith("[") and w.endswith("]"):
            flags.append(w[1:-1])
            continue
        key, sep, value = w.partition("=")
        if not sep:
            continue
        if key == "src":
            tuples.append({})
        if key in ("src", "dst", "sport", "dport", "type", "code", "id") and tuples and key not in tuples[-1]:
            tuples[-1][key] = value
        else:
            extra[key] = value
    if len(tuples) < 2:
        raise RuleError("a conntrack entry needs an original and a reply tuple (src=... twice)", line_no, line)

    def tup(d: dict[str, str]) -> Tuple4:
        if "sport" in d:
            return Tuple4(d["src"], d["dst"], int(d["sport"]), int(d["dport"]))
        # icmp: the id stands in for the ports, as conntrack itself does
        return Tuple4(d["src"], d["dst"], int(d.get("id", 0)), int(d.get("id", 0)))

    return ConntrackEntry(
        proto=proto,
        orig=tup(tuples[0]),
        reply=tup(tuples[1]),
        state=state,
        timeout=timeout,
        mark=int(extra.get("mark", "0"), 0),
        zone=int(extra.get("zone", "0")),
        flags=tuple(flags),
    )
