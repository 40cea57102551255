"""Match extensions (-m NAME --option ...): parsed once, compiled to checks.

Each extension knows its options, renders itself the way `iptables -S`
prints it (so a sim trace shows the same rule text as the kernel's), and
compiles to a function check(packet, ctx) -> bool. Anything an extension
does not know is refused with a reason, never ignored.
"""
from __future__ import annotations

import math
from typing import Callable

from .packet import Packet, ip_int

Check = Callable[[Packet, object], bool]

CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST",
              "BLACKHOLE", "UNREACHABLE", "PROHIBIT")


class RuleSyntax(Exception):
    """Raised inside parsing; the parser adds the line number and text."""


def parse_int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise RuleSyntax(f"{what}: {text!r} is not a number") from None


def parse_port_range(text: str, what: str) -> tuple[int, int]:
    """'80' -> (80, 80); '1000:2000' -> (1000, 2000); ':1024' and '1024:' too."""
    if ":" in text:
        lo, _, hi = text.partition(":")
        lo_n = parse_port(lo, what) if lo else 0
        hi_n = parse_port(hi, what) if hi else 65535
    else:
        lo_n = hi_n = parse_port(text, what)
    if lo_n > hi_n:
        raise RuleSyntax(f"{what}: range {text} goes backwards (write low:high)")
    return lo_n, hi_n


def parse_port(text: str, what: str) -> int:
    if not text.isdigit():
        raise RuleSyntax(f"{what}: port {text!r} must be a number from 0 to 65535 "
                         "(service names from /etc/services are not supported)")
    n = int(text)
    if n > 65535:
        raise RuleSyntax(f"{what}: port {n} is out of range (0-65535)")
    return n


def render_port_range(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}:{r[1]}"


def parse_mark(text: str, what: str) -> tuple[int, int]:
    """'0x4000/0x4000' -> (value, mask); no mask means 0xffffffff."""
    value, _, mask = text.partition("/")
    v = parse_int(value, what)
    m = parse_int(mask, what) if mask else 0xFFFFFFFF
    return v, m


def quote(text: str) -> str:
    """How iptables-save prints a string argument (xtables_save_string)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def neg(flag: bool) -> str:
    return "! " if flag else ""


class Extension:
    """Base of match extensions. OPTIONS maps option -> number of arguments."""

    name = ""
    OPTIONS: dict[str, int] = {}
    ALIASES: dict[str, str] = {}

    def canonical(self, opt: str) -> str:
        return self.ALIASES.get(opt, opt)

    def knows(self, opt: str) -> bool:
        opt = self.canonical(opt)
        return opt in self.OPTIONS

    def add(self, opt: str, args: list[str], negated: bool) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called when the rule is complete: check required options."""

    def render(self) -> str:
        raise NotImplementedError

    def compile(self) -> list[Check]:
        raise NotImplementedError

    # index hints: an exact destination port this match requires (or None)
    def exact_dport(self) -> int | None:
        return None


class PortMatch(Extension):
    """tcp / udp / sctp: --sport, --dport (and --tcp-flags, --syn for tcp)."""

    OPTIONS = {"--sport": 1, "--dport": 1}
    ALIASES = {"--source-port": "--sport", "--destination-port": "--dport"}

    def __init__(self, name: str):
        self.name = name
        self.sport: tuple[int, int] | None = None
        self.dport: tuple[int, int] | None = None
        self.sport_neg = self.dport_neg = False
        self.flags: tuple[frozenset, frozenset] | None = None
        self.flags_neg = False
        if name == "tcp":
            self.OPTIONS = {**PortMatch.OPTIONS, "--tcp-flags": 2, "--syn": 0}

    def add(self, opt, args, negated):
        opt = self.canonical(opt)
        if opt == "--sport":
            self.sport, self.sport_neg = parse_port_range(args[0], "--sport"), negated
        elif opt == "--dport":
            self.dport, self.dport_neg = parse_port_range(args[0], "--dport"), negated
        elif opt == "--tcp-flags":
            mask = _tcp_flag_set(args[0])
            comp = _tcp_flag_set(args[1])
            self.flags, self.flags_neg = (mask, comp), negated
        elif opt == "--syn":
            self.flags = (frozenset({"SYN", "RST", "ACK", "FIN"}), frozenset({"SYN"}))
            self.flags_neg = negated

    def render(self):
        parts = [f"-m {self.name}"]
        if self.sport:
            parts.append(f"{neg(self.sport_neg)}--sport {render_port_range(self.sport)}")
        if self.dport:
            parts.append(f"{neg(self.dport_neg)}--dport {render_port_range(self.dport)}")
        if self.flags:
            parts.append(f"{neg(self.flags_neg)}--tcp-flags {_render_flags(self.flags[0])} "
                         f"{_render_flags(self.flags[1])}")
        return " ".join(parts)

    def exact_dport(self):
        if self.dport and not self.dport_neg and self.dport[0] == self.dport[1]:
            return self.dport[0]
        return None

    def compile(self):
        checks: list[Check] = []
        proto = self.name
        checks.append(lambda p, c: p.proto == proto)
        if self.dport:
            lo, hi = self.dport
            if self.dport_neg:
                checks.append(lambda p, c: not (lo <= p.dport <= hi))
            elif lo == hi:
                checks.append(lambda p, c: p.dport == lo)
            else:
                checks.append(lambda p, c: lo <= p.dport <= hi)
        if self.sport:
            slo, shi = self.sport
            if self.sport_neg:
                checks.append(lambda p, c: not (slo <= p.sport <= shi))
            else:
                checks.append(lambda p, c: slo <= p.sport <= shi)
        if self.flags:
            mask, comp = self.flags
            fneg = self.flags_neg
            checks.append(lambda p, c: ((p.tcp_flags & mask) == comp) != fneg)
        return checks


_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")


def _tcp_flag_set(text: str) -> frozenset:
    if text == "ALL":
        return frozenset(_TCP_FLAGS)
    if text == "NONE":
        return frozenset()
    flags = frozenset(text.split(","))
    bad = flags - set(_TCP_FLAGS)
    if bad:
        raise RuleSyntax(f"--tcp-flags: unknown flag {sorted(bad)[0]} "
                         f"(use {','.join(_TCP_FLAGS)}, ALL or NONE)")
    return flags


def _render_flags(flags: frozenset) -> str:
    if flags == frozenset(_TCP_FLAGS):
        return "ALL"
    if not flags:
        return "NONE"
    return ",".join(f for f in _TCP_FLAGS if f in flags)


class CommentMatch(Extension):
    name = "comment"
    OPTIONS = {"--comment": 1}

    def __init__(self):
        self.text = None

    def add(self, opt, args, negated):
        if negated:
            raise RuleSyntax("--comment cannot be negated with !")
        self.text = args[0]

    def finish(self):
        if self.text is None:
            raise RuleSyntax("-m comment needs --comment TEXT")

    def render(self):
        return f"-m comment --comment {quote(self.text)}"

    def compile(self):
        return []


class StatisticMatch(Extension):
    """statistic --mode random --probability P: a coin the walk flips (seeded)."""

    name = "statistic"
    OPTIONS = {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1}

    def __init__(self):
        self.mode = None
        self.probability = None
        self.negated = False

    def add(self, opt, args, negated):
        if opt == "--mode":
            if args[0] == "nth":
                raise RuleSyntax("statistic --mode nth is not supported by the simulation "
                                 "(use --mode random --probability P)")
            if args[0] != "random":
                raise RuleSyntax(f"statistic --mode {args[0]}: unknown mode (random or nth)")
            self.mode = "random"
        elif opt == "--probability":
            try:
                p = float(args[0])
            except ValueError:
                raise RuleSyntax(f"--probability {args[0]!r} is not a number") from None
            if not 0.0 <= p <= 1.0:
                raise RuleSyntax(f"--probability {args[0]} must be between 0 and 1")
            # The kernel keeps the probability as a 31-bit integer (libxt_statistic:
            # lround(0x80000000 * P)) and compares it with a random 31-bit number;
            # iptables-save prints it back from that integer: 0.3333333333 becomes
            # 0.33333333349. The simulation flips the same quantised coin.
            self.probability = math.floor(p * 0x80000000 + 0.5) / 0x80000000  # lround
            self.negated = negated
        else:
            raise RuleSyntax(f"statistic {opt} belongs to --mode nth, which the simulation "
                             "does not support")

    def finish(self):
        if self.mode != "random" or self.probability is None:
            raise RuleSyntax("-m statistic needs --mode random --probability P")

    def render(self):
        return f"-m statistic --mode random {neg(self.negated)}--probability {self.probability:.11f}"

    def compile(self):
        p, negated = self.probability, self.negated
        if negated:
            return [lambda pkt, c: c.chance(1.0 - p)]
        return [lambda pkt, c: c.chance(p)]


class RecentMatch(Extension):
    """recent: per-name tables of addresses with last-seen times (session affinity)."""

    name = "recent"
    OPTIONS = {"--set": 0, "--rcheck": 0, "--update": 0, "--remove": 0, "--seconds": 1,
               "--reap": 0, "--hitcount": 1, "--rttl": 0, "--name": 1, "--mask": 1,
               "--rsource": 0, "--rdest": 0}

    def __init__(self):
        self.mode = None
        self.negated = False
        self.seconds = 0
        self.reap = False
        self.hitcount = 0
        self.table = "DEFAULT"
        self.mask = 0xFFFFFFFF
        self.side = "src"

    def add(self, opt, args, negated):
        if opt in ("--set", "--rcheck", "--update", "--remove"):
            if self.mode:
                raise RuleSyntax(f"recent: {opt} and --{self.mode} cannot be combined "
                                 "(one of --set, --rcheck, --update, --remove)")
            self.mode, self.negated = opt[2:], negated
        elif opt == "--seconds":
            self.seconds = parse_int(args[0], "--seconds")
        elif opt == "--reap":
            self.reap = True
        elif opt == "--hitcount":
            self.hitcount = parse_int(args[0], "--hitcount")
        elif opt == "--rttl":
            raise RuleSyntax("recent --rttl is not supported by the simulation (it has no TTLs)")
        elif opt == "--name":
            self.table = args[0]
        elif opt == "--mask":
            self.mask = ip_int(args[0])
        elif opt == "--rsource":
            self.side = "src"
        elif opt == "--rdest":
            self.side = "dst"

    def finish(self):
        if not self.mode:
            raise RuleSyntax("-m recent needs one of --set, --rcheck, --update, --remove")
        if self.reap and not self.seconds:
            raise RuleSyntax("recent --reap needs --seconds N")
        if self.mode in ("set", "remove") and (self.seconds or self.hitcount):
            raise RuleSyntax(f"recent --seconds/--hitcount only go with --rcheck or --update, "
                             f"not --{self.mode}")

    def render(self):
        parts = [f"-m recent {neg(self.negated)}--{self.mode}"]
        if self.seconds:
            parts.append(f"--seconds {self.seconds}")
        if self.reap:
            parts.append("--reap")
        if self.hitcount:
            parts.append(f"--hitcount {self.hitcount}")
        from .packet import int_ip
        parts.append(f"--name {self.table} --mask {int_ip(self.mask)}")
        parts.append("--rsource" if self.side == "src" else "--rdest")
        return " ".join(parts)

    def compile(self):
        mode, table, mask, side = self.mode, self.table, self.mask, self.side
        seconds, reap, hitcount, negated = self.seconds, self.reap, self.hitcount, self.negated

        def check(p: Packet, c) -> bool:
            addr = ip_int(p.src if side == "src" else p.dst) & mask
            return c.recent_check(table, addr, mode, seconds, reap, hitcount) != negated

        return [check]


class MarkMatch(Extension):
    name = "mark"
    OPTIONS = {"--mark": 1}

    def __init__(self):
        self.value = None
        self.mask = 0xFFFFFFFF
        self.negated = False

    def add(self, opt, args, negated):
        self.value, self.mask = parse_mark(args[0], "--mark")
        self.negated = negated

    def finish(self):
        if self.value is None:
            raise RuleSyntax("-m mark needs --mark VALUE[/MASK]")

    def render(self):
        m = f"0x{self.value:x}" if self.mask == 0xFFFFFFFF else f"0x{self.value:x}/0x{self.mask:x}"
        return f"-m mark {neg(self.negated)}--mark {m}"

    def compile(self):
        v, m, n = self.value, self.mask, self.negated
        return [lambda p, c: ((p.mark & m) == v) != n]


class ConntrackMatch(Extension):
    """conntrack --ctstate (and the older state --state)."""

    OPTIONS = {"--ctstate": 1}

    def __init__(self, name="conntrack"):
        self.name = name
        self.option = "--ctstate" if name == "conntrack" else "--state"
        self.OPTIONS = {self.option: 1}
        self.states: frozenset | None = None
        self.negated = False

    def add(self, opt, args, negated):
        states = frozenset(s.strip().upper() for s in args[0].split(","))
        allowed = CT_STATES if self.name == "conntrack" else CT_STATES[:5]
        bad = states - set(allowed)
        if bad:
            raise RuleSyntax(f"{self.option}: unknown state {sorted(bad)[0]} "
                             f"(use {','.join(allowed)})")
        self.states, self.negated = states, negated

    def finish(self):
        if self.states is None:
            raise RuleSyntax(f"-m {self.name} needs {self.option} STATES "
                             "(other conntrack options are not supported)")

    def render(self):
        order = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
        text = ",".join(s for s in order if s in self.states)
        return f"-m {self.name} {neg(self.negated)}{self.option} {text}"

    def compile(self):
        states, n = self.states, self.negated
        return [lambda p, c: bool(c.ct_states() & states) != n]


class AddrtypeMatch(Extension):
    name = "addrtype"
    OPTIONS = {"--src-type": 1, "--dst-type": 1}

    def __init__(self):
        self.src = self.dst = None
        self.src_neg = self.dst_neg = False

    def add(self, opt, args, negated):
        types = frozenset(args[0].split(","))
        bad = types - set(ADDR_TYPES)
        if bad:
            raise RuleSyntax(f"{opt}: unknown address type {sorted(bad)[0]} "
                             f"(use {', '.join(ADDR_TYPES)})")
        if opt == "--src-type":
            self.src, self.src_neg = types, negated
        else:
            self.dst, self.dst_neg = types, negated

    def finish(self):
        if self.src is None and self.dst is None:
            raise RuleSyntax("-m addrtype needs --src-type or --dst-type")

    def render(self):
        parts = ["-m addrtype"]
        if self.src is not None:
            parts.append(f"{neg(self.src_neg)}--src-type {_render_types(self.src)}")
        if self.dst is not None:
            parts.append(f"{neg(self.dst_neg)}--dst-type {_render_types(self.dst)}")
        return " ".join(parts)

    def compile(self):
        checks = []
        if self.src is not None:
            st, sn = self.src, self.src_neg
            checks.append(lambda p, c: (c.addr_type(p.src) in st) != sn)
        if self.dst is not None:
            dt, dn = self.dst, self.dst_neg
            checks.append(lambda p, c: (c.addr_type(p.dst) in dt) != dn)
        return checks


def _render_types(types: frozenset) -> str:
    return ",".join(t for t in ADDR_TYPES if t in types)


class MultiportMatch(Extension):
    name = "multiport"
    OPTIONS = {"--sports": 1, "--dports": 1, "--ports": 1}
    ALIASES = {"--source-ports": "--sports", "--destination-ports": "--dports"}

    def __init__(self):
        self.which = None
        self.ranges: tuple = ()
        self.negated = False

    def add(self, opt, args, negated):
        opt = self.canonical(opt)
        if self.which:
            raise RuleSyntax("multiport takes one of --sports, --dports, --ports")
        ranges = tuple(parse_port_range(x, opt) for x in args[0].split(","))
        if sum(1 if a == b else 2 for a, b in ranges) > 15:
            raise RuleSyntax(f"{opt}: too many ports (multiport takes at most 15)")
        self.which, self.ranges, self.negated = opt, ranges, negated

    def finish(self):
        if not self.which:
            raise RuleSyntax("-m multiport needs --sports, --dports or --ports")

    def render(self):
        return (f"-m multiport {neg(self.negated)}{self.which} "
                + ",".join(render_port_range(r) for r in self.ranges))

    def compile(self):
        ranges, n, which = self.ranges, self.negated, self.which

        def inside(port):
            return any(a <= port <= b for a, b in ranges)

        if which == "--dports":
            return [lambda p, c: inside(p.dport) != n]
        if which == "--sports":
            return [lambda p, c: inside(p.sport) != n]
        return [lambda p, c: (inside(p.sport) or inside(p.dport)) != n]


class NfacctMatch(Extension):
    """nfacct --nfacct-name: always matches, counts packets under a name."""

    name = "nfacct"
    OPTIONS = {"--nfacct-name": 1}

    def __init__(self):
        self.acct = None

    def add(self, opt, args, negated):
        if negated:
            raise RuleSyntax("--nfacct-name cannot be negated")
        self.acct = args[0]

    def finish(self):
        if not self.acct:
            raise RuleSyntax("-m nfacct needs --nfacct-name NAME")

    def render(self):
        return f"-m nfacct --nfacct-name {self.acct}"

    def compile(self):
        name = self.acct

        def count(p, c):
            c.count_nfacct(name)
            return True

        return [count]


MATCHES: dict[str, Callable[[], Extension]] = {
    "tcp": lambda: PortMatch("tcp"),
    "udp": lambda: PortMatch("udp"),
    "sctp": lambda: PortMatch("sctp"),
    "comment": CommentMatch,
    "statistic": StatisticMatch,
    "recent": RecentMatch,
    "mark": MarkMatch,
    "conntrack": lambda: ConntrackMatch("conntrack"),
    "state": lambda: ConntrackMatch("state"),
    "addrtype": AddrtypeMatch,
    "multiport": MultiportMatch,
    "nfacct": NfacctMatch,
}
