"""The reachability truth table: every pod to every pod, on one port and protocol.

Rendered two ways a learner will meet elsewhere:

- "e2e": the upstream suite's TruthTable.PrettyPrint (tab-separated, "-" in
  the corner, "." for allowed, "X" for denied), so a table can be diffed
  against a CI log of test/e2e/network/netpol;
- "grid": a boxed table like cyclonus prints, with the probe in the corner.

parse_truth_table reads the e2e form back (tests keep their expectations in it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from labkit.controllers.netpol.evaluate import (
    Endpoint,
    NetpolError,
    PolicyCluster,
    Verdict,
    check_connection,
    check_port,
)

ALLOWED_MARK = "."
DENIED_MARK = "X"
IGNORED_MARK = "?"  # upstream's mark for a missing value; used for ignored loopback cells


@dataclass(frozen=True)
class Matrix:
    """names[i] -> names[j] verdicts (rows are sources, columns destinations)."""

    names: tuple[str, ...]
    port: int
    protocol: str
    verdicts: Mapping[tuple[str, str], Verdict]

    def allowed(self, src: str, dst: str) -> bool:
        return self.verdicts[(src, dst)].allowed

    def truth(self) -> dict[tuple[str, str], bool]:
        return {k: v.allowed for k, v in self.verdicts.items()}


def compute_matrix(cluster: PolicyCluster, port: int = 80, protocol: str = "TCP",
                   pods: Optional[Sequence[str]] = None) -> Matrix:
    """The verdict for every ordered pair of pods (default: every pod, sorted by namespace/name)."""
    port, protocol = check_port(port, protocol)
    by_name = {f"{p.meta.namespace}/{p.meta.name}": p for p in cluster.pods if not p.host_network}
    names = tuple(pods) if pods is not None else tuple(sorted(by_name))
    missing = [n for n in names if n not in by_name]
    if missing:
        raise NetpolError(f"pods {', '.join(missing)} are not in the manifests "
                          f"(fix: list pods as NAMESPACE/NAME from: {', '.join(sorted(by_name))})")
    ends = {}
    for n in names:
        p = by_name[n]
        ip = p.pod_ips[0] if p.pod_ips else p.pod_ip
        ends[n] = Endpoint(ip, p)
    verdicts = {(a, b): check_connection(cluster, ends[a], ends[b], port, protocol)
                for a in names for b in names}
    return Matrix(names, port, protocol, verdicts)


def render_truth_table(names: Sequence[str], truth: Mapping[tuple[str, str], bool],
                       ignore_loopback: bool = False, indent: str = "") -> str:
    """Upstream's TruthTable.PrettyPrint, byte for byte (plus an optional '?' diagonal)."""
    lines = [indent + "\t".join(["-", *names])]
    for a in names:
        cells = []
        for b in names:
            if ignore_loopback and a == b:
                cells.append(IGNORED_MARK)
            else:
                cells.append(ALLOWED_MARK if truth[(a, b)] else DENIED_MARK)
        lines.append(indent + "\t".join([a, *cells]))
    return "\n".join(lines)


def render_matrix(matrix: Matrix, style: str = "e2e", ignore_loopback: bool = False) -> str:
    """The matrix as text: style "e2e" (upstream's table) or "grid" (cyclonus-like)."""
    truth = matrix.truth()
    if style == "e2e":
        return render_truth_table(matrix.names, truth, ignore_loopback)
    if style != "grid":
        raise NetpolError(f"matrix style {style!r} is unknown (fix: use e2e or grid)")
    corner = f"{matrix.protocol}/{matrix.port}"
    head = [corner] + [n.upper() for n in matrix.names]
    rows = []
    for a in matrix.names:
        row = [a]
        for b in matrix.names:
            if ignore_loopback and a == b:
                row.append(IGNORED_MARK)
            else:
                row.append(ALLOWED_MARK if truth[(a, b)] else DENIED_MARK)
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths)) + "|"

    return "\n".join([rule, line(head), rule, *(line(r) for r in rows), rule])


def parse_truth_table(text: str) -> tuple[tuple[str, ...], dict[tuple[str, str], bool]]:
    """Upstream's printed table -> (names, {(from, to): allowed}); '?' cells are left out."""
    rows = [ln.strip().split() for ln in text.strip().splitlines() if ln.strip()]
    if not rows or rows[0][0] != "-":
        raise NetpolError("a truth table starts with a header line '-  x/a  x/b ...'")
    names = tuple(rows[0][1:])
    if [r[0] for r in rows[1:]] != list(names):
        raise NetpolError(f"truth table rows {[r[0] for r in rows[1:]]} do not match "
                          f"its columns {list(names)} (fix: one row per column, same order)")
    truth: dict[tuple[str, str], bool] = {}
    for r in rows[1:]:
        if len(r) != len(names) + 1:
            raise NetpolError(f"truth table row {r[0]} has {len(r) - 1} cells, expected {len(names)}")
        for name, mark in zip(names, r[1:]):
            if mark == IGNORED_MARK:
                continue
            if mark not in (ALLOWED_MARK, DENIED_MARK):
                raise NetpolError(f"truth table cell {r[0]} -> {name} is {mark!r} "
                                  f"(fix: use '.' for allowed, 'X' for denied)")
            truth[(r[0], name)] = mark == ALLOWED_MARK
    return names, truth


def compare_truth(expected: Mapping[tuple[str, str], bool], observed: Mapping[tuple[str, str], bool],
                  ignore_loopback: bool = False) -> list[tuple[str, str, bool, bool]]:
    """Cells that differ, as (from, to, expected, observed), in a stable order."""
    diffs = []
    for key in sorted(expected):
        if ignore_loopback and key[0] == key[1]:
            continue
        if key in observed and observed[key] != expected[key]:
            diffs.append((key[0], key[1], expected[key], observed[key]))
    return diffs


def matrix_to_json(matrix: Matrix) -> dict:
    """{"port", "protocol", "pods", "allowed": {from: {to: bool}}, "reasons": {...}}."""
    return {
        "port": matrix.port,
        "protocol": matrix.protocol,
        "pods": list(matrix.names),
        "allowed": {a: {b: matrix.allowed(a, b) for b in matrix.names} for a in matrix.names},
        "reasons": {a: {b: matrix.verdicts[(a, b)].reason for b in matrix.names} for a in matrix.names},
    }
