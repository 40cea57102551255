"""A packet as the dataplane sees it: the header fields rules can match.

Immutable on purpose: every translation makes a new Packet, so a walk can
keep the packet as it was at each hop and show the learner each version.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace

PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}
PORT_PROTOS = frozenset({"tcp", "udp", "sctp"})

_ip_cache: dict[str, int] = {}


def ip_int(addr: str) -> int:
    """Dotted quad -> int (memoized: the same few addresses recur all the time)."""
    try:
        return _ip_cache[addr]
    except KeyError:
        pass
    try:
        value = struct.unpack("!I", socket.inet_aton(addr))[0]
    except OSError:
        raise ValueError(f"{addr!r} is not an IPv4 address") from None
    if addr.count(".") != 3:
        raise ValueError(f"{addr!r} is not an IPv4 address (write all four parts)")
    _ip_cache[addr] = value
    return value


def int_ip(value: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", value))


@dataclass(frozen=True, slots=True)
class Packet:
    """One IPv4 packet. `flags` are TCP flags as text ("SYN", "SYN,ACK", "ACK")."""

    proto: str
    src: str
    dst: str
    sport: int = 0
    dport: int = 0
    iifname: str = ""
    oifname: str = ""
    mark: int = 0
    flags: str = ""
    icmp_type: int = -1  # for proto icmp: 8 echo request, 0 echo reply, 3 unreachable

    def replace(self, **changes) -> "Packet":
        return replace(self, **changes)

    @property
    def tcp_flags(self) -> frozenset[str]:
        return frozenset(f for f in self.flags.split(",") if f)

    def summary(self) -> str:
        """One line, like scapy's summary(): 'tcp 10.0.0.2:40000 > 172.30.0.41:80 [SYN]'."""
        if self.proto in PORT_PROTOS:
            text = f"{self.proto} {self.src}:{self.sport} > {self.dst}:{self.dport}"
        else:
            text = f"{self.proto} {self.src} > {self.dst}"
        if self.flags:
            text += f" [{self.flags}]"
        if self.mark:
            text += f" mark=0x{self.mark:x}"
        return text


def tcp_syn(src: str, dst: str, sport: int, dport: int) -> Packet:
    return Packet("tcp", src, dst, sport, dport, flags="SYN")


def udp(src: str, dst: str, sport: int, dport: int) -> Packet:
    return Packet("udp", src, dst, sport, dport)
