"""The predicted matrix next to the one real packets gave: the course's proof of every verdict.

A lab probes each ordered pair of pods once (a TCP SYN or a UDP datagram to
the destination pod's IP) and this module, pure, sets the answers beside the
evaluator's matrix:

- a probe that got an answer from the destination (answered, or refused: the
  packet reached the pod, nothing listened -- an SCTP INIT always, as the
  lab's kernel has no SCTP) counts as allowed; one that got
  nothing back before its deadline (the SYN was dropped) counts as denied; an
  ICMP unreachable counts as denied too;
- a pod's packets to itself never leave it, so no node's rules see them: the
  loopback cells are not probed ('?'), as the upstream e2e suite ignores them;
- a cell whose probe disagrees with the prediction is marked '!'.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from labkit.controllers.netpol.matrix import ALLOWED_MARK, DENIED_MARK, IGNORED_MARK, Matrix

DIFFERS_MARK = "!"
REACHED = ("answered", "refused")  # probe verdicts (labkit.backends.base) that passed the policy


def probe_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The ordered pairs a lab probes: every pod to every other pod (loopback left out)."""
    return [(a, b) for a in names for b in names if a != b]


def probed_allowed(verdict: str) -> bool:
    """A probe's verdict word -> did the packet get through the policy?"""
    return verdict in REACHED


@dataclass(frozen=True)
class ProbedMatrix:
    """The evaluator's matrix, and (when probed) each pair's probe verdict and where it ran."""

    predicted: Matrix
    verdicts: Mapping[tuple[str, str], str]  # (from, to) -> "answered", "no-reply", ... ({} unprobed)
    backend: str = ""  # "sim", "netns", ...: who sent the packets ("" when nothing was probed)

    @property
    def names(self) -> tuple[str, ...]:
        return self.predicted.names

    @property
    def probed(self) -> bool:
        return bool(self.verdicts)

    def observed(self, src: str, dst: str) -> Optional[bool]:
        """What the probe says (None: not probed)."""
        v = self.verdicts.get((src, dst))
        return None if v is None else probed_allowed(v)

    def observed_truth(self) -> dict[tuple[str, str], bool]:
        return {k: probed_allowed(v) for k, v in self.verdicts.items()}

    def differences(self) -> list[tuple[str, str, bool, bool]]:
        """(from, to, predicted, probed) for every probed cell that disagrees, in row order."""
        out = []
        for a in self.names:
            for b in self.names:
                seen = self.observed(a, b)
                if seen is not None and seen != self.predicted.allowed(a, b):
                    out.append((a, b, self.predicted.allowed(a, b), seen))
        return out

    @property
    def agrees(self) -> bool:
        return self.probed and not self.differences()


def _grid(names: Sequence[str], cell) -> list[list[str]]:
    return [["-", *names]] + [[a, *(cell(a, b) for b in names)] for a in names]


def _lines(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render_probed_matrix(pm: ProbedMatrix) -> str:
    """The predicted table, the probed one beside it ('!' where they differ), then the differences."""
    m = pm.predicted
    mark = {True: ALLOWED_MARK, False: DENIED_MARK}
    predicted = _lines(_grid(m.names, lambda a, b: mark[m.allowed(a, b)]))
    head = [f"{m.protocol}/{m.port}: '.' allowed, 'X' denied (rows: from, columns: to)"]
    if not pm.probed:
        return "\n".join(head + ["predicted (evaluator)", *predicted])

    def probed_cell(a: str, b: str) -> str:
        seen = pm.observed(a, b)
        if seen is None:
            return IGNORED_MARK
        return mark[seen] + (DIFFERS_MARK if seen != m.allowed(a, b) else "")

    probed = _lines(_grid(m.names, probed_cell))
    title = "predicted (evaluator)"
    width = max(len(line) for line in [title, *predicted])
    head[0] += (f"; probed with real packets on the {pm.backend} lab: '?' not probed "
                f"(a pod to itself never meets a node's rules), '!' differs from the prediction")
    lines = head + [f"{title.ljust(width)} | probed ({pm.backend})"]
    lines += [f"{p.ljust(width)} | {q}" for p, q in zip(predicted, probed)]
    diffs = pm.differences()
    if not diffs:
        lines.append(f"probed and predicted agree on all {len(pm.verdicts)} probed pairs")
    else:
        lines.append(f"{len(diffs)} of {len(pm.verdicts)} probed pairs differ:")
        for a, b, want, got in diffs:
            lines.append(f"  {a} -> {b}: predicted {'allowed' if want else 'denied'}, probe "
                         f"{pm.verdicts[(a, b)]} ({'allowed' if got else 'denied'})")
    return "\n".join(lines)


def probed_matrix_to_json(pm: ProbedMatrix) -> dict:
    """matrix_to_json's fields, plus "probed" (bool or null per cell), "verdicts" and "differences"."""
    from labkit.controllers.netpol.matrix import matrix_to_json

    out = matrix_to_json(pm.predicted)
    if not pm.probed:
        return out
    names = pm.names
    out["backend"] = pm.backend
    out["probed"] = {a: {b: pm.observed(a, b) for b in names} for a in names}
    out["verdicts"] = {a: {b: pm.verdicts.get((a, b)) for b in names} for a in names}
    out["differences"] = [{"from": a, "to": b, "predicted": want, "probed": got,
                           "verdict": pm.verdicts[(a, b)]} for a, b, want, got in pm.differences()]
    return out
