"""Targets (-j NAME --option ...): what a matching rule does.

The netfilter engine dispatches on `kind`; each target renders itself the
way `iptables -S` prints it (MARK --or-mark shows as --set-xmark V/V, REJECT
always names its --reject-with), so sim traces carry the kernel's rule text.
"""
from __future__ import annotations

from .matchers import RuleSyntax, parse_int, parse_mark, parse_port_range, quote
from .packet import int_ip, ip_int

# kinds the engine understands
ACCEPT, DROP, REJECT, RETURN, JUMP, GOTO = "ACCEPT", "DROP", "REJECT", "RETURN", "JUMP", "GOTO"
DNAT, SNAT, MASQUERADE, MARK, LOG, TRACE = "DNAT", "SNAT", "MASQUERADE", "MARK", "LOG", "TRACE"

NAT_KINDS = frozenset({DNAT, SNAT, MASQUERADE})
TABLE_OF_TARGET = {DNAT: ("nat",), SNAT: ("nat",), MASQUERADE: ("nat",),
                   REJECT: ("filter", "mangle", "raw", "security"), TRACE: ("raw",)}

REJECT_WITH = ("icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable",
               "icmp-proto-unreachable", "icmp-net-prohibited", "icmp-host-prohibited",
               "icmp-admin-prohibited", "tcp-reset")


class Target:
    kind = ""
    OPTIONS: dict[str, int] = {}

    def knows(self, opt: str) -> bool:
        return opt in self.OPTIONS

    def add(self, opt: str, args: list[str], negated: bool) -> None:
        raise RuleSyntax(f"-j {self.kind} takes no option {opt}")

    def finish(self, proto: str | None) -> None:
        pass

    def render(self) -> str:
        return f"-j {self.kind}"


class Simple(Target):
    """ACCEPT, DROP, RETURN, TRACE: no options."""

    def __init__(self, kind: str):
        self.kind = kind


class Jump(Target):
    """-j CHAIN or -g CHAIN."""

    def __init__(self, chain: str, goto: bool):
        self.chain = chain
        self.kind = GOTO if goto else JUMP

    def render(self):
        return f"-g {self.chain}" if self.kind == GOTO else f"-j {self.chain}"


class Reject(Target):
    kind = REJECT
    OPTIONS = {"--reject-with": 1}

    def __init__(self):
        self.with_ = "icmp-port-unreachable"

    def add(self, opt, args, negated):
        aliases = {"icmp-net-unreach": "icmp-net-unreachable",
                   "icmp-host-unreach": "icmp-host-unreachable",
                   "icmp-port-unreach": "icmp-port-unreachable",
                   "icmp-proto-unreach": "icmp-proto-unreachable",
                   "tcp-rst": "tcp-reset"}
        value = aliases.get(args[0], args[0])
        if value not in REJECT_WITH:
            raise RuleSyntax(f"--reject-with {args[0]}: unknown (use one of {', '.join(REJECT_WITH)})")
        self.with_ = value

    def finish(self, proto):
        if self.with_ == "tcp-reset" and proto != "tcp":
            raise RuleSyntax("--reject-with tcp-reset needs -p tcp on the rule")

    def render(self):
        return f"-j REJECT --reject-with {self.with_}"


class NatTarget(Target):
    """DNAT --to-destination / SNAT --to-source / MASQUERADE [--to-ports]."""

    def __init__(self, kind: str):
        self.kind = kind
        self.addr_lo = self.addr_hi = None  # ints
        self.ports: tuple[int, int] | None = None
        self.random = self.random_fully = self.persistent = False
        if kind == DNAT:
            self.OPTIONS = {"--to-destination": 1, "--random": 0, "--persistent": 0}
        elif kind == SNAT:
            self.OPTIONS = {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0}
        else:
            self.OPTIONS = {"--to-ports": 1, "--random": 0, "--random-fully": 0}

    def add(self, opt, args, negated):
        if opt in ("--to-destination", "--to-source"):
            if self.addr_lo is not None:
                raise RuleSyntax(f"{opt} given twice (the simulation takes one range)")
            self._parse_to(args[0], opt)
        elif opt == "--to-ports":
            self.ports = parse_port_range(args[0].replace("-", ":"), opt)
        elif opt == "--random":
            self.random = True
        elif opt == "--random-fully":
            self.random_fully = True
        elif opt == "--persistent":
            self.persistent = True

    def _parse_to(self, text: str, opt: str) -> None:
        addr, sep, port = text.partition(":")
        try:
            if "-" in addr:
                lo, hi = addr.split("-", 1)
                self.addr_lo, self.addr_hi = ip_int(lo), ip_int(hi)
            elif addr:
                self.addr_lo = self.addr_hi = ip_int(addr)
        except ValueError as e:
            raise RuleSyntax(f"{opt} {text}: {e}") from None
        if sep:
            self.ports = parse_port_range(port.replace("-", ":"), opt)
        if self.addr_lo is None and self.ports is None:
            raise RuleSyntax(f"{opt} needs ADDRESS[:PORT]")

    def finish(self, proto):
        if self.kind == DNAT and self.addr_lo is None and self.ports is None:
            raise RuleSyntax("-j DNAT needs --to-destination ADDRESS[:PORT]")
        if self.kind == SNAT and self.addr_lo is None:
            raise RuleSyntax("-j SNAT needs --to-source ADDRESS[:PORT]")
        if self.ports is not None and proto not in ("tcp", "udp", "sctp"):
            raise RuleSyntax(f"-j {self.kind} with a port needs -p tcp, -p udp or -p sctp on the "
                             "rule (the kernel refuses it: 'Need TCP, UDP, SCTP or DCCP with "
                             "port specification')")

    def render(self):
        parts = [f"-j {self.kind}"]
        if self.kind in (DNAT, SNAT):
            text = ""
            if self.addr_lo is not None:
                text = int_ip(self.addr_lo)
                if self.addr_hi != self.addr_lo:
                    text += "-" + int_ip(self.addr_hi)
            if self.ports:
                lo, hi = self.ports
                text += f":{lo}" if lo == hi else f":{lo}-{hi}"
            opt = "--to-destination" if self.kind == DNAT else "--to-source"
            parts.append(f"{opt} {text}")
        elif self.ports:
            lo, hi = self.ports
            parts.append(f"--to-ports {lo}" if lo == hi else f"--to-ports {lo}-{hi}")
        if self.random:
            parts.append("--random")
        if self.random_fully:
            parts.append("--random-fully")
        if self.persistent:
            parts.append("--persistent")
        return " ".join(parts)


class MarkTarget(Target):
    """MARK: new = (old & ~mask) ^ value, the one form every option reduces to."""

    kind = MARK
    OPTIONS = {"--set-mark": 1, "--set-xmark": 1, "--or-mark": 1, "--xor-mark": 1, "--and-mark": 1}

    def __init__(self):
        self.value = None
        self.mask = 0

    def add(self, opt, args, negated):
        if self.value is not None:
            raise RuleSyntax("-j MARK takes one of --set-mark, --set-xmark, --or-mark, "
                             "--xor-mark, --and-mark")
        if opt == "--set-xmark":
            self.value, self.mask = parse_mark(args[0], opt)
        elif opt == "--set-mark":
            v, m = parse_mark(args[0], opt)
            self.value, self.mask = v, m | v
        elif opt == "--or-mark":
            v = parse_int(args[0], opt)
            self.value, self.mask = v, v
        elif opt == "--xor-mark":
            self.value, self.mask = parse_int(args[0], opt), 0
        elif opt == "--and-mark":
            v = parse_int(args[0], opt)
            self.value, self.mask = 0, (~v) & 0xFFFFFFFF

    def finish(self, proto):
        if self.value is None:
            raise RuleSyntax("-j MARK needs --set-mark, --set-xmark, --or-mark, --xor-mark "
                             "or --and-mark")

    def apply(self, mark: int) -> int:
        return ((mark & ~self.mask) ^ self.value) & 0xFFFFFFFF

    def render(self):
        return f"-j MARK --set-xmark 0x{self.value:x}/0x{self.mask:x}"


class LogTarget(Target):
    kind = LOG
    OPTIONS = {"--log-prefix": 1, "--log-level": 1, "--log-tcp-sequence": 0,
               "--log-tcp-options": 0, "--log-ip-options": 0, "--log-uid": 0}
    LEVELS = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")

    def __init__(self):
        self.prefix = ""
        self.level = 4
        self.flags: list[str] = []

    def add(self, opt, args, negated):
        if opt == "--log-prefix":
            if len(args[0]) > 29:
                raise RuleSyntax("--log-prefix is longer than 29 characters")
            self.prefix = args[0]
        elif opt == "--log-level":
            lvl = args[0]
            if lvl.isdigit() and int(lvl) < 8:
                self.level = int(lvl)
            elif lvl in self.LEVELS:
                self.level = self.LEVELS.index(lvl)
            elif lvl in ("panic", "err", "warn"):
                self.level = {"panic": 0, "err": 3, "warn": 4}[lvl]
            else:
                raise RuleSyntax(f"--log-level {lvl}: use 0-7 or a syslog level name")
        else:
            self.flags.append(opt)

    def render(self):
        parts = ["-j LOG"]
        if self.prefix:
            parts.append(f"--log-prefix {quote(self.prefix)}")
        if self.level != 4:
            parts.append(f"--log-level {self.level}")
        parts.extend(self.flags)
        return " ".join(parts)


def make_target(name: str, goto: bool) -> Target | None:
    """A target by name; None if `name` is not a built-in target (then: a chain)."""
    if goto:
        return Jump(name, goto=True)
    if name in (ACCEPT, DROP, RETURN, TRACE):
        return Simple(name)
    if name == REJECT:
        return Reject()
    if name in (DNAT, SNAT, MASQUERADE):
        return NatTarget(name)
    if name == MARK:
        return MarkTarget()
    if name == LOG:
        return LogTarget()
    return None
