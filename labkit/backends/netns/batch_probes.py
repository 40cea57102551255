"""Many probes at once, from many lab namespaces: a NetworkPolicy matrix in one deadline.

A matrix of 9 pods is 72 probes; sent one after another, each dropped SYN
would cost a whole deadline. Here every probe's socket is made inside its
source namespace (a short-lived thread that joined it, runner.in_netns: a
socket belongs to the namespace it was made in, whoever uses it later), then
one selector loop in the calling thread watches them all:

- TCP: a non-blocking connect(): writable with no error is a SYN-ACK
  (answered), ECONNREFUSED an RST (refused), EHOSTUNREACH/ENETUNREACH an ICMP
  error (unreachable); still pending at the deadline, the SYN was dropped
  (no-reply);
- UDP: a connected socket sends "hostname" (agnhost netexec answers with the
  pod's name); a reply is answered, ECONNREFUSED an ICMP port unreachable
  (refused), silence until the deadline no-reply;
- SCTP: this kernel has no SCTP (socket(..., IPPROTO_SCTP) fails), so no pod
  can serve it; but an SCTP INIT, written by hand on a raw socket, still
  crosses the nodes' rules (`-p sctp -m sctp --dport`, conntrack's SCTP
  tracker) and, if they let it through, the destination pod's kernel answers
  ICMP protocol unreachable (refused: the packet reached the pod); dropped,
  nothing comes back (no-reply). Only ICMP is listened for: a raw socket of
  protocol 132 open in a pod would take the INITs sent to that pod, and its
  kernel would then answer nothing.

Each probe is bound to the client port it is given, so the caller can keep
ports from repeating (a repeated 4-tuple would meet an old conntrack entry,
ESTABLISHED, and pass whatever the policy says now).
"""
from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from dataclasses import dataclass

from labkit.backends.netns.runner import in_netns

UNREACHABLE_ERRORS = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM)


@dataclass(frozen=True)
class BatchProbe:
    netns: str
    dst: str
    port: int
    protocol: str  # "tcp" or "udp"
    sport: int


@dataclass(frozen=True)
class BatchOutcome:
    answer: str  # "answered", "refused", "unreachable", "no-reply"
    local: str = ""  # "address:port" the client used
    reply_from: str = ""  # "address:port" the answer came from
    body: str = ""  # the UDP reply's text
    detail: str = ""


SCTP = 132  # IPPROTO_SCTP


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), SCTP's checksum (RFC 9260 appendix A)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sctp_init(sport: int, dport: int, tag: int) -> bytes:
    """An SCTP packet holding one INIT chunk (common header, checksum filled in)."""
    chunk = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 1, 1, tag)  # INIT: tag, a_rwnd, streams, TSN
    header = struct.pack("!HHII", sport, dport, 0, 0)
    checksum = crc32c(header + chunk)
    return header[:8] + struct.pack("<I", checksum) + chunk


def _parse_sctp_answer(data: bytes):
    """A raw IPv4 packet (ICMP) -> (key, verdict, detail) for the SCTP probe it answers, or None.
    key: (peer address, probe's client port, probe's destination port)."""
    if len(data) < 20:
        return None
    ihl = (data[0] & 0x0F) * 4
    proto, src = data[9], socket.inet_ntoa(data[12:16])
    body = data[ihl:]
    if proto != socket.IPPROTO_ICMP or len(body) < 8 + 20 or body[0] != 3:
        return None
    inner = body[8:]
    inner_ihl = (inner[0] & 0x0F) * 4
    if inner[9] != SCTP or len(inner) < inner_ihl + 4:
        return None
    dst = socket.inet_ntoa(inner[16:20])
    sport, dport = struct.unpack("!HH", inner[inner_ihl:inner_ihl + 4])
    code = body[1]
    if code == 2 and src == dst:
        return (dst, sport, dport), "refused", (f"ICMP protocol unreachable from {dst}: the INIT reached the "
                                                "pod, whose kernel has no SCTP")
    return (dst, sport, dport), "unreachable", f"ICMP destination unreachable (code {code}) from {src}"


def _verdict_of_error(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in UNREACHABLE_ERRORS:
        return "unreachable"
    return "no-reply"


def _open(probes: list[tuple[int, BatchProbe]]) -> list[tuple[int, socket.socket, str]]:
    """Inside the source namespace: one socket per probe, bound to its port, SYN or datagram sent.
    A socket that fails at once comes back with its verdict instead of a socket."""
    out = []
    if any(p.protocol == "sctp" for _, p in probes):  # the answers' listeners, then the INITs
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        rx.setblocking(False)
        out.append((-1, rx, ""))
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP)
        try:
            for i, p in probes:
                if p.protocol == "sctp":
                    tx.sendto(sctp_init(p.sport, p.port, 0x6C6B0000 | (p.sport & 0xFFFF)), (p.dst, 0))
        finally:
            tx.close()
    for i, p in probes:
        if p.protocol == "sctp":
            continue
        kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, kind)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", p.sport))
            if p.protocol == "tcp":
                code = s.connect_ex((p.dst, p.port))
                if code not in (0, errno.EINPROGRESS):
                    out.append((i, s, _verdict_of_error(code)))
                    continue
            else:
                s.connect((p.dst, p.port))
                s.send(b"hostname")
        except OSError as e:
            out.append((i, s, _verdict_of_error(e.errno or 0)))
            continue
        out.append((i, s, ""))
    return out


def run_batch(probes: list[BatchProbe], timeout: float = 0.5) -> list[BatchOutcome]:
    """Every probe at once; an outcome per probe, in order. `timeout` is the one deadline,
    counted from the moment the last packet was sent."""
    by_ns: dict[str, list[tuple[int, BatchProbe]]] = {}
    for i, p in enumerate(probes):
        by_ns.setdefault(p.netns, []).append((i, p))
    outcomes: dict[int, BatchOutcome] = {}
    sockets: dict[int, socket.socket] = {}
    listeners: list[socket.socket] = []
    sctp_waiting: dict[tuple, int] = {}  # (netns, dst, sport, dport) -> probe
    for ns, items in by_ns.items():
        for i, p in items:
            if p.protocol == "sctp":
                sctp_waiting[(ns, p.dst, p.sport, p.port)] = i
    sel = selectors.DefaultSelector()
    try:
        for ns, items in by_ns.items():
            for i, s, early in in_netns(ns, lambda items=items: _open(items)):
                if i < 0:  # the raw ICMP listener for SCTP answers in this namespace
                    listeners.append(s)
                    sel.register(s, selectors.EVENT_READ, (ns, None))
                    continue
                sockets[i] = s
                if early:
                    outcomes[i] = BatchOutcome(early, detail="failed at once")
                else:
                    event = selectors.EVENT_WRITE if probes[i].protocol == "tcp" else selectors.EVENT_READ
                    sel.register(s, event, i)
        end = time.monotonic() + timeout
        while len(outcomes) < len(probes):
            left = end - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                if isinstance(key.data, tuple):  # raw: an ICMP error
                    ns = key.data[0]
                    try:
                        got = _parse_sctp_answer(key.fileobj.recv(65535))
                    except BlockingIOError:
                        continue
                    if got is not None:
                        (peer, sport, dport), verdict, detail = got
                        i = sctp_waiting.pop((ns, peer, sport, dport), None)
                        if i is not None:
                            outcomes[i] = BatchOutcome(verdict, "", peer if verdict == "unreachable"
                                                       else f"{peer}:{dport}", detail=detail)
                    continue
                i, s = key.data, key.fileobj
                outcomes[i] = _finish(probes[i], s)
                sel.unregister(s)
        for i, p in enumerate(probes):
            if i not in outcomes:
                outcomes[i] = BatchOutcome("no-reply", _local(sockets.get(i)),
                                           detail=f"no answer within {timeout:g} s")
    finally:
        sel.close()
        for s in [*sockets.values(), *listeners]:
            s.close()
    return [outcomes[i] for i in range(len(probes))]


def _local(s) -> str:
    try:
        return "%s:%d" % s.getsockname() if s is not None else ""
    except OSError:
        return ""


def _finish(p: BatchProbe, s: socket.socket) -> BatchOutcome:
    local = "%s:%d" % s.getsockname()
    if p.protocol == "tcp":
        code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            return BatchOutcome("answered", local, "%s:%d" % s.getpeername(), detail="TCP flags SA")
        return BatchOutcome(_verdict_of_error(code), local, detail=errno.errorcode.get(code, str(code)))
    try:
        data, addr = s.recvfrom(2048)
    except OSError as e:
        return BatchOutcome(_verdict_of_error(e.errno or 0), local, detail=errno.errorcode.get(e.errno, ""))
    return BatchOutcome("answered", local, "%s:%d" % addr, data.decode(errors="replace"))
