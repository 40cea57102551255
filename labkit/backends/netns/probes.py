"""Packets from inside a lab namespace: a scapy TCP SYN, a real HTTP exchange, a UDP datagram.

Each runs in a thread that has joined the source namespace (runner.in_netns),
so sockets are the namespace's own and no process is started. The SYN is
built with scapy and sent on a raw socket with its source address set
explicitly (scapy's own routing reads the host's tables, not the
namespace's); replies are read from raw sockets and parsed with scapy.
"""
from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass

from labkit.backends.netns.runner import in_netns


@dataclass(frozen=True)
class SynOutcome:
    answer: str  # "syn-ack", "rst", "icmp", "" (nothing)
    reply_from: str  # "address:port" (address only for icmp)
    detail: str = ""


def syn_probe(netns: str, src: str, dst: str, dport: int, sport: int, timeout: float = 1.0) -> SynOutcome:
    """Send one TCP SYN from `src`:`sport` and report the first matching answer."""
    from scapy.layers.inet import ICMP, IP, TCP, TCPerror

    packet = bytes(IP(src=src, dst=dst, ttl=64) / TCP(sport=sport, dport=dport, flags="S", seq=1))

    def body() -> SynOutcome:
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        rx_tcp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        rx_icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            tx.sendto(packet, (dst, 0))
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return SynOutcome("", "", "no answer before the deadline")
                ready, _, _ = select.select([rx_tcp, rx_icmp], [], [], left)
                for s in ready:
                    ip = IP(s.recv(65535))
                    if TCP in ip and ip[TCP].dport == sport and ip[TCP].sport == dport and ip.dst == src:
                        flags = str(ip[TCP].flags)
                        kind = "syn-ack" if "S" in flags and "A" in flags else "rst" if "R" in flags else ""
                        if kind:
                            return SynOutcome(kind, f"{ip.src}:{ip[TCP].sport}", f"TCP flags {flags}")
                    if ICMP in ip and ip[ICMP].type == 3 and TCPerror in ip and ip[TCPerror].sport == sport:
                        return SynOutcome("icmp", ip.src,
                                          f"ICMP destination unreachable (code {ip[ICMP].code})")
        finally:
            tx.close()
            rx_tcp.close()
            rx_icmp.close()

    return in_netns(netns, body)


@dataclass(frozen=True)
class HttpOutcome:
    ok: bool
    status: int = 0
    body: str = ""
    hostname: str = ""  # from /hostname on the same connection
    client_seen_as: str = ""  # from /clientip on the same connection
    local: str = ""  # "address:port" the client used
    peer: str = ""  # "address:port" the client was connected to
    error: str = ""  # "refused", "timeout", "unreachable: ..."


def _read_response(f) -> tuple[int, str, bool]:
    status_line = f.readline().decode(errors="replace")
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while True:
        line = f.readline().decode(errors="replace").strip()
        if not line:
            break
        k, _, v = line.partition(":")
        if k.lower() == "content-length":
            length = int(v)
        if k.lower() == "connection" and v.strip().lower() == "close":
            keep = False
    return status, f.read(length).decode(errors="replace"), keep


def http_probe(netns: str, dst: str, port: int, path: str = "/hostname", timeout: float = 2.0,
               sport: int = 0) -> HttpOutcome:
    """GET `path`, then /hostname and /clientip on the same connection (so the same backend).

    Asking on one connection is how the probe names the pod that answered and
    the address it saw, with nothing but agnhost netexec's own endpoints.
    """

    def body() -> HttpOutcome:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", sport))
            try:
                s.connect((dst, port))
            except ConnectionRefusedError:
                return HttpOutcome(False, error="refused")
            except (socket.timeout, TimeoutError):
                return HttpOutcome(False, error="timeout")
            except OSError as e:
                return HttpOutcome(False, error=f"unreachable: {e.strerror}")
            local = "%s:%d" % s.getsockname()
            peer = "%s:%d" % s.getpeername()
            f = s.makefile("rb")
            extra = [p for p in ("/hostname", "/clientip") if p != path]
            reqs = [path] + extra
            s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: {dst}:{port}\r\n\r\n".encode() for p in reqs))
            answers = {}
            try:
                for p in reqs:
                    status, text, keep = _read_response(f)
                    answers[p] = (status, text)
                    if not keep:
                        break
            except (socket.timeout, TimeoutError):
                if path not in answers:
                    return HttpOutcome(False, local=local, peer=peer, error="timeout")
            except (ConnectionError, ValueError, IndexError) as e:
                if path not in answers:
                    return HttpOutcome(False, local=local, peer=peer, error=f"bad reply: {e}")
            status, text = answers[path]
            hostname = answers.get("/hostname", (0, ""))
            clientip = answers.get("/clientip", (0, ""))
            return HttpOutcome(True, status, text, hostname[1] if hostname[0] == 200 else "",
                               clientip[1] if clientip[0] == 200 else "", local, peer)
        finally:
            s.close()

    return in_netns(netns, body)


@dataclass(frozen=True)
class UdpOutcome:
    ok: bool
    body: str = ""
    hostname: str = ""
    client_seen_as: str = ""
    local: str = ""
    reply_from: str = ""
    error: str = ""


def udp_probe(netns: str, dst: str, port: int, message: str = "hostname", timeout: float = 1.0,
              sport: int = 0) -> UdpOutcome:
    """Send `message`, then "hostname" and "clientip" from the same socket (the same conntrack entry)."""

    def body() -> UdpOutcome:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.bind(("0.0.0.0", sport))
            s.connect((dst, port))
            local = "%s:%d" % s.getsockname()
            replies = []
            for m in dict.fromkeys([message, "hostname", "clientip"]):
                s.send(m.encode())
                try:
                    data, addr = s.recvfrom(2048)
                except (socket.timeout, TimeoutError):
                    if not replies:
                        return UdpOutcome(False, local=local, error="timeout")
                    break
                except ConnectionRefusedError:
                    return UdpOutcome(False, local=local, error="refused")
                replies.append((m, data.decode(errors="replace"), "%s:%d" % addr))
            got = {m: text for m, text, _ in replies}
            return UdpOutcome(True, got.get(message, ""), got.get("hostname", ""), got.get("clientip", ""),
                              local, replies[0][2])
        finally:
            s.close()

    return in_netns(netns, body)
