"""parse_iptables_restore: iptables-restore / iptables-save text -> Ruleset.

It accepts what kube-proxy, the lab's pod network, NetworkPolicy rules and a
learner's exercises use, with iptables-restore's own rules (a `*table` block
replaces that table and ends with COMMIT; `:CHAIN` declares or flushes a
chain; jumps must name a chain of the same table; NAT targets need the right
table and hook). Everything else is refused with the line number and the
text, so the simulation never quietly runs a different ruleset.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import RuleError
from . import targets as T
from .matchers import MATCHES, Extension, PortMatch, RuleSyntax
from .packet import PROTO_NUMBERS, int_ip, ip_int

BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}

# which hooks a target may be used from (the kernel checks this on load)
TARGET_HOOKS = {
    T.DNAT: frozenset({"PREROUTING", "OUTPUT"}),
    T.SNAT: frozenset({"POSTROUTING", "INPUT"}),
    T.MASQUERADE: frozenset({"POSTROUTING"}),
    T.REJECT: frozenset({"INPUT", "FORWARD", "OUTPUT"}),
}

PROTO_NAMES = {"tcp", "udp", "sctp", "icmp", "all"}


@dataclass(frozen=True)
class AddrMatch:
    """-s / -d: a network as (address int, mask int), optionally negated."""

    net: int
    mask: int
    negated: bool = False

    @property
    def prefixlen(self) -> int:
        return bin(self.mask).count("1")

    def render(self, opt: str) -> str:
        return f"{'! ' if self.negated else ''}{opt} {int_ip(self.net)}/{self.prefixlen}"


@dataclass(frozen=True)
class IfaceMatch:
    """-i / -o: an interface name; a trailing + matches every name with that prefix."""

    name: str
    negated: bool = False

    def matches(self, ifname: str) -> bool:
        if self.name.endswith("+"):
            hit = ifname.startswith(self.name[:-1])
        else:
            hit = ifname == self.name
        return hit != self.negated

    def render(self, opt: str) -> str:
        return f"{'! ' if self.negated else ''}{opt} {self.name}"


class Rule:
    """One rule: generic header matches, extension matches, a target.

    `check(packet, ctx)` is compiled once from the matches; `text` is the line
    as written, `canonical` the rule as `iptables -S` prints it.
    """

    __slots__ = ("table", "chain", "src", "dst", "proto", "proto_neg", "iif", "oif",
                 "matches", "target", "line_no", "text", "handle", "check",
                 "exact_dst", "exact_dport", "_canonical")

    def __init__(self, table: str, chain: str, line_no: int, text: str):
        self.table, self.chain, self.line_no, self.text = table, chain, line_no, text
        self.src: Optional[AddrMatch] = None
        self.dst: Optional[AddrMatch] = None
        self.proto: Optional[str] = None
        self.proto_neg = False
        self.iif: Optional[IfaceMatch] = None
        self.oif: Optional[IfaceMatch] = None
        self.matches: list[Extension] = []
        self.target: Optional[T.Target] = None
        self.handle = 0
        self.check: Callable = _always
        self.exact_dst: Optional[int] = None
        self.exact_dport: Optional[int] = None
        self._canonical: Optional[str] = None

    @property
    def canonical(self) -> str:
        """`-A CHAIN ...` in the order and spelling of `iptables -S`."""
        if self._canonical is None:
            parts = [f"-A {self.chain}"]
            if self.src:
                parts.append(self.src.render("-s"))
            if self.dst:
                parts.append(self.dst.render("-d"))
            if self.iif:
                parts.append(self.iif.render("-i"))
            if self.oif:
                parts.append(self.oif.render("-o"))
            if self.proto:
                parts.append(f"{'! ' if self.proto_neg else ''}-p {self.proto}")
            parts.extend(m.render() for m in self.matches)
            if self.target:
                parts.append(self.target.render())
            self._canonical = " ".join(parts)
        return self._canonical

    @property
    def spec(self) -> str:
        """The canonical text without `-A CHAIN` (what -D RULESPEC compares)."""
        return self.canonical.split(" ", 2)[2] if self.canonical.count(" ") >= 2 else ""

    def compile(self) -> None:
        checks: list[Callable] = []
        if self.proto and self.proto != "all":
            proto, pn = self.proto, self.proto_neg
            checks.append(lambda p, c: (p.proto == proto) != pn)
        for addr, attr in ((self.dst, "dst"), (self.src, "src")):
            if addr is None:
                continue
            # Bind this address's values now (default arguments): a closure over
            # the loop's variables would test -s with -d's network.
            net, mask, n = addr.net, addr.mask, addr.negated
            if attr == "dst":
                checks.append(lambda p, c, net=net, mask=mask, n=n: ((ip_int(p.dst) & mask) == net) != n)
            else:
                checks.append(lambda p, c, net=net, mask=mask, n=n: ((ip_int(p.src) & mask) == net) != n)
        if self.iif:
            iif = self.iif
            checks.append(lambda p, c: iif.matches(p.iifname))
        if self.oif:
            oif = self.oif
            checks.append(lambda p, c: oif.matches(p.oifname))
        for m in self.matches:
            checks.extend(m.compile())
        self.check = _all_of(checks)
        if self.dst and not self.dst.negated and self.dst.mask == 0xFFFFFFFF:
            self.exact_dst = self.dst.net
        for m in self.matches:
            if isinstance(m, PortMatch) and m.exact_dport() is not None:
                self.exact_dport = m.exact_dport()

    def __repr__(self) -> str:
        return f"Rule({self.table}:{self.canonical})"


# Words of a rule line: runs of non-space characters and "quoted strings",
# glued together as the shell (and iptables-restore) glue them.
_WORD = re.compile(r'(?:"[^"]*"|[^\s"]+)+')


def split_words(line: str) -> list[str]:
    """shlex.split(line), fast for the common case (kube-proxy's 90k-line files).

    Lines with a backslash, a single quote or an odd number of double quotes
    go to shlex itself, so the result (and its error) is always shlex's.
    """
    if "\\" in line or "'" in line or line.count('"') % 2:
        return shlex.split(line)
    return [w.replace('"', "") for w in _WORD.findall(line)]


def _always(p, c) -> bool:
    return True


def _all_of(checks: list[Callable]) -> Callable:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda p, c: a(p, c) and b(p, c)
    if len(checks) == 3:
        a, b, d = checks
        return lambda p, c: a(p, c) and b(p, c) and d(p, c)
    items = tuple(checks)

    def all_checks(p, c):
        for ch in items:
            if not ch(p, c):
                return False
        return True

    return all_checks


@dataclass
class Chain:
    name: str
    policy: Optional[str]  # ACCEPT / DROP for built-in chains, None for user chains
    handle: int = 0
    rules: list[Rule] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    next_handle: int = 1

    def new_handle(self) -> int:
        h = self.next_handle
        self.next_handle += 1
        return h


@dataclass
class Ruleset:
    """Tables of chains of rules, as the kernel would hold them after the restore."""

    tables: dict[str, Table] = field(default_factory=dict)

    def chain(self, table: str, chain: str) -> Optional[Chain]:
        t = self.tables.get(table)
        return t.chains.get(chain) if t else None

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables.values() for c in t.chains.values())

    def render(self) -> str:
        """iptables-save style text (canonical rule spelling, counters zero)."""
        out = []
        for t in self.tables.values():
            out.append(f"*{t.name}")
            for c in t.chains.values():
                out.append(f":{c.name} {c.policy or '-'} [0:0]")
            for c in t.chains.values():
                out.extend(r.canonical for r in c.rules)
            out.append("COMMIT")
        return "\n".join(out) + "\n"


# --- the parser ---------------------------------------------------------------

REFUSED_OPTIONS = {
    "-f": "fragment matching (-f) is not supported by the simulation",
    "--fragment": "fragment matching (-f) is not supported by the simulation",
    "-R": "-R (replace) is not supported in restore files; delete and insert instead",
    "-Z": "-Z (zero counters) is not supported in restore files",
    "-E": "-E (rename chain) is not supported by the simulation",
    "-c": "-c (set counters) is not supported; remove the counters",
}


class _Parser:
    def __init__(self, text: str, base: Optional[Ruleset]):
        self.lines = text.splitlines()
        self.ruleset = base if base is not None else Ruleset()
        self.table: Optional[Table] = None
        self.table_line = 0
        self.line_no = 0
        self.rule_lines: list[Rule] = []

    def fail(self, message: str, line_no: int | None = None) -> RuleError:
        n = line_no or self.line_no
        line = self.lines[n - 1].strip() if 0 < n <= len(self.lines) else ""
        ctx = []
        for k in (n - 1, n + 1):
            if 0 < k <= len(self.lines):
                ctx.append(f"    line {k}: {self.lines[k - 1].strip()}")
        return RuleError(message, n, line, "\n".join(ctx))

    def parse(self) -> Ruleset:
        for i, raw in enumerate(self.lines, 1):
            self.line_no = i
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                self.start_table(line[1:].strip())
            elif line == "COMMIT":
                self.commit()
            elif line.startswith(":"):
                self.declare_chain(line)
            else:
                self.command(line)
        if self.table is not None:
            raise self.fail(f"table {self.table.name} has no COMMIT line (iptables-restore "
                            "applies nothing without it)", self.table_line)
        return self.ruleset

    def start_table(self, name: str) -> None:
        if self.table is not None:
            raise self.fail(f"*{name} starts before table {self.table.name} was committed "
                            "(add COMMIT first)")
        if name not in BUILTIN_CHAINS:
            raise self.fail(f"unknown table {name!r} (use raw, mangle, nat or filter; the "
                            "security table is not simulated)")
        self.table = Table(name)  # a *table block replaces the table
        self.table_line = self.line_no
        self.rule_lines = []

    def need_table(self) -> Table:
        if self.table is None:
            raise self.fail("rule outside a table: start the block with *filter, *nat, "
                            "*mangle or *raw")
        return self.table

    def declare_chain(self, line: str) -> None:
        t = self.need_table()
        parts = line[1:].split()
        if len(parts) < 2:
            raise self.fail("chain line needs a name and a policy: ':NAME POLICY [0:0]'")
        name, policy = parts[0], parts[1]
        builtin = name in BUILTIN_CHAINS[t.name]
        if builtin:
            if policy == "-":
                policy = "ACCEPT"
            if policy not in ("ACCEPT", "DROP"):
                raise self.fail(f"built-in chain {name} takes policy ACCEPT or DROP, not {policy}")
        else:
            if policy != "-":
                raise self.fail(f"user-defined chain {name} cannot have a policy "
                                f"(write ':{name} - [0:0]')")
            self.check_chain_name(name)
            policy = None
        if name in t.chains:
            t.chains[name].rules.clear()
            if builtin:
                t.chains[name].policy = policy
        else:
            t.chains[name] = Chain(name, policy, t.new_handle())

    def check_chain_name(self, name: str) -> None:
        if len(name) > 28:
            raise self.fail(f"chain name {name} is longer than 28 characters")
        if name.startswith("-") or name in ("ACCEPT", "DROP", "RETURN", "QUEUE"):
            raise self.fail(f"{name!r} cannot be a chain name")

    def get_chain(self, name: str, create_builtin: bool = True) -> Chain:
        t = self.need_table()
        if name in t.chains:
            return t.chains[name]
        if name in BUILTIN_CHAINS[t.name] and create_builtin:
            c = t.chains[name] = Chain(name, "ACCEPT", t.new_handle())
            return c
        raise self.fail(f"chain {name} does not exist in table {t.name} "
                        f"(declare it first: ':{name} - [0:0]')")

    def commit(self) -> None:
        t = self.need_table()
        for rule in self.rule_lines:
            if rule.target and isinstance(rule.target, T.Jump):
                if rule.target.chain not in t.chains:
                    raise self.fail(f"-j {rule.target.chain}: no chain of that name in table "
                                    f"{t.name} (declare it: ':{rule.target.chain} - [0:0]')",
                                    rule.line_no)
                if t.chains[rule.target.chain].builtin:
                    raise self.fail(f"cannot jump to built-in chain {rule.target.chain}",
                                    rule.line_no)
        self.check_hooks(t)
        self.ruleset.tables[t.name] = t
        self.table = None

    def check_hooks(self, t: Table) -> None:
        """NAT and REJECT targets only work from certain hooks; the kernel refuses the rest."""
        reach: dict[str, set[str]] = {name: set() for name in t.chains}
        for hook in BUILTIN_CHAINS[t.name]:
            if hook not in t.chains:
                continue
            stack = [hook]
            while stack:
                cname = stack.pop()
                if hook in reach[cname]:
                    continue
                reach[cname].add(hook)
                for r in t.chains[cname].rules:
                    if isinstance(r.target, T.Jump) and r.target.chain in reach:
                        stack.append(r.target.chain)
        for cname, chain in t.chains.items():
            for r in chain.rules:
                kind = r.target.kind if r.target else ""
                allowed = TARGET_HOOKS.get(kind)
                if allowed is None:
                    continue
                bad = reach[cname] - allowed
                if bad:
                    raise self.fail(
                        f"-j {kind} is used from hook {', '.join(sorted(bad))} (via chain "
                        f"{cname}) but the kernel only allows it from "
                        f"{'/'.join(sorted(allowed))}", r.line_no)

    def command(self, line: str) -> None:
        t = self.need_table()
        try:
            args = split_words(line)
        except ValueError as e:
            raise self.fail(f"cannot split the line into words ({e}): check the quotes")
        if args and args[0].startswith("[") and args[0].endswith("]"):
            args = args[1:]  # [packets:bytes] counters prefix
        if not args:
            return
        cmd, rest = args[0], args[1:]
        if cmd in REFUSED_OPTIONS:
            raise self.fail(REFUSED_OPTIONS[cmd])
        if cmd in ("-A", "--append", "-I", "--insert", "-D", "--delete"):
            if not rest:
                raise self.fail(f"{cmd} needs a chain name")
            chain = self.get_chain(rest[0])
            rest = rest[1:]
            if cmd in ("-A", "--append"):
                rule = self.parse_rule(t, chain.name, rest, line)
                rule.handle = t.new_handle()
                chain.rules.append(rule)
                self.rule_lines.append(rule)
            elif cmd in ("-I", "--insert"):
                pos = 1
                if rest and rest[0].isdigit():
                    pos = int(rest[0])
                    rest = rest[1:]
                    if not 1 <= pos <= len(chain.rules) + 1:
                        raise self.fail(f"-I {chain.name} {pos}: the chain has "
                                        f"{len(chain.rules)} rules (index too big)")
                rule = self.parse_rule(t, chain.name, rest, line)
                rule.handle = t.new_handle()
                chain.rules.insert(pos - 1, rule)
                self.rule_lines.append(rule)
            else:
                self.delete_rule(t, chain, rest, line)
        elif cmd in ("-N", "--new-chain"):
            if len(rest) != 1:
                raise self.fail("-N takes exactly one chain name")
            if rest[0] in t.chains:
                raise self.fail(f"-N {rest[0]}: chain already exists")
            self.check_chain_name(rest[0])
            t.chains[rest[0]] = Chain(rest[0], None, t.new_handle())
        elif cmd in ("-F", "--flush"):
            if rest:
                self.get_chain(rest[0]).rules.clear()
            else:
                for c in t.chains.values():
                    c.rules.clear()
        elif cmd in ("-X", "--delete-chain"):
            names = rest or [n for n, c in t.chains.items() if not c.builtin]
            for name in names:
                c = self.get_chain(name, create_builtin=False)
                if c.builtin:
                    raise self.fail(f"-X {name}: built-in chains cannot be deleted")
                for other in t.chains.values():
                    for r in other.rules:
                        if isinstance(r.target, T.Jump) and r.target.chain == name:
                            raise self.fail(f"-X {name}: chain is still referenced by a rule "
                                            f"in {other.name} (line {r.line_no})")
                if c.rules:
                    raise self.fail(f"-X {name}: chain is not empty (flush it with -F first)")
                del t.chains[name]
        elif cmd in ("-P", "--policy"):
            if len(rest) != 2:
                raise self.fail("-P takes a chain and a policy: -P FORWARD DROP")
            c = self.get_chain(rest[0])
            if not c.builtin:
                raise self.fail(f"-P {rest[0]}: only built-in chains have a policy")
            if rest[1] not in ("ACCEPT", "DROP"):
                raise self.fail(f"-P {rest[0]} {rest[1]}: policy must be ACCEPT or DROP")
            c.policy = rest[1]
        else:
            raise self.fail(f"unsupported command {cmd!r} (restore files use -A, -I, -D, -N, "
                            "-F, -X, -P)")

    def delete_rule(self, t: Table, chain: Chain, rest: list[str], line: str) -> None:
        if len(rest) == 1 and rest[0].isdigit():
            n = int(rest[0])
            if not 1 <= n <= len(chain.rules):
                raise self.fail(f"-D {chain.name} {n}: no rule number {n} "
                                f"(the chain has {len(chain.rules)})")
            del chain.rules[n - 1]
            return
        probe = self.parse_rule(t, chain.name, rest, line)
        for i, r in enumerate(chain.rules):
            if r.canonical == probe.canonical:
                del chain.rules[i]
                return
        raise self.fail(f"-D {chain.name}: no rule in {chain.name} matches that rule "
                        "(iptables says 'Bad rule (does a matching rule exist in that chain?)')")

    def parse_rule(self, t: Table, chain: str, args: list[str], line: str) -> Rule:
        rule = Rule(t.name, chain, self.line_no, line)
        try:
            self._parse_rule_args(rule, args)
        except RuleSyntax as e:
            raise self.fail(str(e)) from None
        except ValueError as e:
            raise self.fail(str(e)) from None
        rule.compile()
        return rule

    def _parse_rule_args(self, rule: Rule, args: list[str]) -> None:
        i = 0
        negate = False
        owners: list = []  # extensions loaded so far, newest last, for option dispatch

        def take(n: int, opt: str) -> list[str]:
            nonlocal i
            vals = args[i + 1:i + 1 + n]
            if len(vals) < n or any(v == "!" for v in vals):
                raise RuleSyntax(f"{opt} needs {n} argument{'s' if n != 1 else ''}")
            i += n
            return vals

        while i < len(args):
            a = args[i]
            if a == "!":
                if negate:
                    raise RuleSyntax("two ! in a row")
                negate = True
                i += 1
                continue
            if a in ("-s", "--source", "--src", "-d", "--destination", "--dst"):
                (v,) = take(1, a)
                addr = self.parse_addr(v, a, negate)
                if a in ("-s", "--source", "--src"):
                    if rule.src:
                        raise RuleSyntax("-s given twice")
                    rule.src = addr
                else:
                    if rule.dst:
                        raise RuleSyntax("-d given twice")
                    rule.dst = addr
            elif a in ("-p", "--protocol"):
                (v,) = take(1, a)
                v = v.lower()
                if v.isdigit():
                    names = {n: k for k, n in PROTO_NUMBERS.items()}
                    if int(v) not in names:
                        raise RuleSyntax(f"-p {v}: protocol number not supported "
                                         "(tcp, udp, sctp, icmp)")
                    v = names[int(v)]
                if v not in PROTO_NAMES:
                    raise RuleSyntax(f"-p {v}: protocol not supported by the simulation "
                                     "(tcp, udp, sctp, icmp, all)")
                rule.proto, rule.proto_neg = v, negate
            elif a in ("-i", "--in-interface", "-o", "--out-interface"):
                (v,) = take(1, a)
                if len(v) > 15:
                    raise RuleSyntax(f"{a} {v}: interface names have at most 15 characters")
                m = IfaceMatch(v, negate)
                if a in ("-i", "--in-interface"):
                    if rule.chain in ("OUTPUT", "POSTROUTING"):
                        raise RuleSyntax(f"-i cannot be used in the {rule.chain} chain "
                                         "(packets there have no input interface yet)")
                    rule.iif = m
                else:
                    if rule.chain in ("PREROUTING", "INPUT"):
                        raise RuleSyntax(f"-o cannot be used in the {rule.chain} chain "
                                         "(packets there have no output interface yet)")
                    rule.oif = m
            elif a in ("-m", "--match"):
                if negate:
                    raise RuleSyntax("! cannot negate -m; put it before the match's option")
                (name,) = take(1, a)
                factory = MATCHES.get(name)
                if factory is None:
                    raise RuleSyntax(f"match -m {name} is not supported by the simulation "
                                     f"(supported: {', '.join(sorted(MATCHES))})")
                ext = factory()
                if isinstance(ext, PortMatch) and rule.proto != ext.name:
                    if rule.proto is None:
                        # iptables allows -m tcp before -p tcp; check later
                        pass
                rule.matches.append(ext)
                owners.append(ext)
            elif a in ("-j", "--jump", "-g", "--goto"):
                if negate:
                    raise RuleSyntax(f"! cannot negate {a}")
                if rule.target is not None:
                    raise RuleSyntax("a rule has one target (-j or -g given twice)")
                (name,) = take(1, a)
                goto = a in ("-g", "--goto")
                target = T.make_target(name, goto)
                if target is None:
                    if name not in self.need_table().chains:
                        if name.isupper() and "-" not in name:
                            raise RuleSyntax(
                                f"target -j {name} is not supported by the simulation (ACCEPT, "
                                "DROP, REJECT, RETURN, DNAT, SNAT, MASQUERADE, MARK, LOG, TRACE "
                                "or a chain of this table)")
                        raise RuleSyntax(f"-j {name}: no chain of that name in table "
                                         f"{rule.table} (declare it first: ':{name} - [0:0]')")
                    target = T.Jump(name, goto=False)
                elif goto and name not in self.need_table().chains:
                    raise RuleSyntax(f"-g {name}: no chain of that name in table {rule.table} "
                                     f"(declare it first: ':{name} - [0:0]')")
                rule.target = target
                owners.append(target)
            elif a in REFUSED_OPTIONS:
                raise RuleSyntax(REFUSED_OPTIONS[a])
            elif a.startswith("--"):
                owner = None
                for ext in reversed(owners):
                    if ext.knows(a):
                        owner = ext
                        break
                if owner is None and rule.proto in ("tcp", "udp", "sctp"):
                    implicit = MATCHES[rule.proto]()
                    if implicit.knows(a):
                        rule.matches.append(implicit)
                        owners.append(implicit)
                        owner = implicit
                if owner is None:
                    raise RuleSyntax(f"option {a} is not supported here (no loaded match or "
                                     "target of this rule takes it; is a -m missing?)")
                opt = owner.canonical(a) if isinstance(owner, Extension) else a
                n = owner.OPTIONS[opt]
                vals = take(n, a)
                owner.add(opt, vals, negate)
            elif a.startswith("-") and len(a) > 1:
                raise RuleSyntax(f"option {a} is not supported by the simulation")
            else:
                raise RuleSyntax(f"unexpected word {a!r} (quote arguments that contain spaces)")
            negate = False
            i += 1
        if negate:
            raise RuleSyntax("! at the end of the rule negates nothing")
        for ext in rule.matches:
            ext.finish()
            if isinstance(ext, PortMatch) and (rule.proto != ext.name or rule.proto_neg):
                raise RuleSyntax(f"-m {ext.name} needs -p {ext.name} on the rule "
                                 "(iptables: 'multiport/port matches need a protocol')")
            if ext.name == "multiport" and rule.proto not in ("tcp", "udp", "sctp"):
                raise RuleSyntax("-m multiport needs -p tcp, -p udp or -p sctp on the rule")
        if rule.target is not None:
            rule.target.finish(None if rule.proto_neg else rule.proto)
            tables = T.TABLE_OF_TARGET.get(rule.target.kind)
            if tables and rule.table not in tables:
                raise RuleSyntax(f"-j {rule.target.kind} cannot be used in the {rule.table} "
                                 f"table (only in {', '.join(tables)})")

    def parse_addr(self, text: str, opt: str, negated: bool) -> AddrMatch:
        if "," in text:
            raise RuleSyntax(f"{opt} {text}: several addresses in one rule (iptables would "
                             "expand it into several rules; write one rule per address)")
        addr, sep, plen = text.partition("/")
        net = ip_int(addr)
        if sep:
            if plen.isdigit() and int(plen) <= 32:
                bits = int(plen)
                mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
            elif plen.count(".") == 3:
                mask = ip_int(plen)
            else:
                raise RuleSyntax(f"{opt} {text}: bad prefix length /{plen}")
        else:
            mask = 0xFFFFFFFF
        return AddrMatch(net & mask, mask, negated)


def parse_iptables_restore(text: str, base: Optional[Ruleset] = None) -> Ruleset:
    """Parse iptables-restore text. With `base`, apply it like `--noflush` would not:
    each *table block still replaces that table; other tables of `base` stay."""
    return _Parser(text, base).parse()
