"""Netfilter: run a packet through one table's chains at one hook.

Kernel semantics, generically: rules in order, the first matching rule's
target decides; jumps push, goto replaces, RETURN (or the end of a user
chain) pops; the end of a built-in chain applies its policy. Non-terminal
targets (MARK, LOG, TRACE, none) continue. NAT targets end the traversal
with ACCEPT and hand the binding to conntrack.

Speed: each chain gets an index built once. When most rules of a chain
require one exact destination address (or one exact destination port), the
index maps that value to the positions of the rules that could match it,
merged in order with the rules that have no such requirement. Every skipped
rule provably cannot match the packet, so the result is the linear scan's.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from . import targets as T
from .iptables_parse import Chain, Rule, Ruleset
from .packet import Packet, ip_int
from .trace import TraceEvent

INDEX_MIN_RULES = 8

# hook -> tables in priority order (raw -300, mangle -150, nat dst -100,
# filter 0, nat src +100), as in the kernel
HOOK_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "nat"),
    "FORWARD": ("mangle", "filter"),
    "OUTPUT": ("raw", "mangle", "nat", "filter"),
    "POSTROUTING": ("mangle", "nat"),
}


class ChainIndex:
    """Candidate rule positions for a packet, in order (see module docstring)."""

    __slots__ = ("rules", "key", "all", "merged", "unkeyed")

    def __init__(self, chain: Chain, use_index: bool = True):
        rules = chain.rules
        self.rules = rules
        self.all = tuple(range(len(rules)))
        self.key = None
        self.merged: dict = {}
        self.unkeyed: tuple = self.all
        if not use_index or len(rules) < INDEX_MIN_RULES:
            return
        by_dst = sum(1 for r in rules if r.exact_dst is not None)
        by_dport = sum(1 for r in rules if r.exact_dport is not None)
        if max(by_dst, by_dport) * 2 < len(rules):
            return
        self.key = "dst" if by_dst >= by_dport else "dport"
        buckets: dict[int, list[int]] = {}
        unkeyed: list[int] = []
        for i, r in enumerate(rules):
            k = r.exact_dst if self.key == "dst" else r.exact_dport
            if k is None:
                unkeyed.append(i)
            else:
                buckets.setdefault(k, []).append(i)
        self.unkeyed = tuple(unkeyed)
        self.merged = {k: tuple(sorted(v + unkeyed)) for k, v in buckets.items()}

    def candidates(self, p: Packet) -> tuple:
        if self.key is None:
            return self.all
        k = ip_int(p.dst) if self.key == "dst" else p.dport
        return self.merged.get(k, self.unkeyed)


class CompiledRuleset:
    """A Ruleset plus per-chain indexes, built once and reused for every packet."""

    def __init__(self, ruleset: Ruleset, use_index: bool = True):
        self.ruleset = ruleset
        self.use_index = use_index
        self._index: dict[tuple[str, str], ChainIndex] = {}

    def chain(self, table: str, name: str) -> Optional[Chain]:
        return self.ruleset.chain(table, name)

    def index(self, table: str, chain: Chain) -> ChainIndex:
        key = (table, chain.name)
        idx = self._index.get(key)
        if idx is None or idx.rules is not chain.rules or len(idx.all) != len(chain.rules):
            idx = self._index[key] = ChainIndex(chain, self.use_index)
        return idx


class HookResult(NamedTuple):
    verdict: str            # ACCEPT, DROP, REJECT
    packet: Packet          # with any MARK changes
    explicit: bool          # a rule (not a policy) decided
    nat: Optional[T.Target]  # the NAT target that fired, if any
    rule: Optional[Rule]    # the deciding rule


def traverse(crs: CompiledRuleset, table: str, hook: str, p: Packet, ctx) -> HookResult:
    """Run `p` through `table`'s built-in chain `hook`. `ctx` supplies state
    lookups (conntrack, addresses, coins) and collects trace events."""
    base = crs.chain(table, hook)
    if base is None:
        return HookResult("ACCEPT", p, False, None, None)
    ns = ctx.ns
    chain = base
    rules = chain.rules
    cands = crs.index(table, chain).candidates(p)
    i = 0
    frames: list = []
    while True:
        if i >= len(cands):
            if frames:
                if ctx.tracing():
                    ctx.trace.append(TraceEvent(ns, table, chain.name, "return", "RETURN", None,
                                                len(rules) + 1))
                chain, rules, cands, i = frames.pop()
                continue
            policy = base.policy or "ACCEPT"
            if ctx.tracing():
                ctx.trace.append(TraceEvent(ns, table, base.name, "policy", policy, None,
                                            len(base.rules) + 1))
            return HookResult(policy, p, False, None, None)
        pos = cands[i]
        rule = rules[pos]
        i += 1
        if not rule.check(p, ctx):
            continue
        target = rule.target
        kind = target.kind if target is not None else ""
        if kind == T.TRACE:
            ctx.traced = True
        if kind == T.JUMP or kind == T.GOTO:
            if ctx.tracing():
                ctx.trace.append(TraceEvent(ns, table, chain.name, "rule",
                                            f"{kind}:{target.chain}", rule, pos + 1))
            if kind == T.JUMP:
                frames.append((chain, rules, cands, i))
                if len(frames) > 64:
                    raise RecursionError(f"chain loop through {target.chain}")
            chain = crs.chain(table, target.chain)
            rules = chain.rules
            cands = crs.index(table, chain).candidates(p)
            i = 0
            continue
        if kind == T.MARK:
            p = p.replace(mark=target.apply(p.mark))
            verdict = "CONTINUE"
        elif kind in ("", T.LOG, T.TRACE):
            verdict = "CONTINUE"
        else:
            verdict = kind
        if ctx.tracing():
            ctx.trace.append(TraceEvent(ns, table, chain.name, "rule", verdict, rule, pos + 1))
        if verdict == "CONTINUE":
            continue
        if kind == T.RETURN:
            if frames:
                chain, rules, cands, i = frames.pop()
                continue
            policy = base.policy or "ACCEPT"
            if ctx.tracing():
                ctx.trace.append(TraceEvent(ns, table, base.name, "policy", policy, None,
                                            len(base.rules) + 1))
            return HookResult(policy, p, False, None, None)
        if kind in T.NAT_KINDS:
            return HookResult("ACCEPT", p, True, target, rule)
        return HookResult(kind, p, True, None, rule)
