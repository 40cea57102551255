#!/usr/bin/env python3
"""labkit-probe: send one kind of packet from a pod's (or the node's) network namespace; print JSON.

Runs inside labkit's probe image on a kind node (hostNetwork, hostPID,
privileged), or in a container on kind's docker network ("outside"). It is
the kind backend's counterpart of labkit/backends/netns/probes.py and prints
the same fields, one JSON object a line:

  labkit-probe syn  --dst 10.96.0.80 --dport 80 --sports 40001,40002 [--src-ip 10.244.1.2]
  labkit-probe http --dst 10.96.0.80 --dport 80 [--path /hostname] [--src-ip ...]
  labkit-probe udp  --dst 10.244.2.3 --dport 8081 [--message hostname] [--sport N] [--src-ip ...]

--src-ip names a pod by its address: the probe finds the network namespace
that holds that address (each process's /proc/PID/net/fib_trie lists its
namespace's local addresses) and joins it, so the packet leaves from the pod
exactly as the pod's own would. Standalone: Python 3.12 and scapy, no labkit.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time


def local_addresses(fib_trie: str) -> set[str]:
    """The addresses a namespace owns, from its /proc/net/fib_trie ("|-- A" then "/32 host LOCAL")."""
    out, last = set(), ""
    for line in fib_trie.splitlines():
        s = line.strip()
        if s.startswith("|-- "):
            last = s[4:]
        elif s.startswith("/32 host LOCAL") and last:
            out.add(last)
    return out


def find_netns(ip: str, proc: str = "/proc") -> str:
    """The /proc/PID/ns/net of a process whose namespace owns `ip` ("" if none does)."""
    for pid in sorted((d for d in os.listdir(proc) if d.isdigit()), key=int):
        try:
            with open(f"{proc}/{pid}/net/fib_trie") as f:
                if ip in local_addresses(f.read()):
                    return f"{proc}/{pid}/ns/net"
        except OSError:
            continue
    return ""


def enter_netns_of(ip: str) -> None:
    with open("/proc/self/net/fib_trie") as f:
        if ip in local_addresses(f.read()):
            return
    path = find_netns(ip)
    if not path:
        raise SystemExit(f"labkit-probe: no network namespace on this node holds {ip}")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.setns(fd, os.CLONE_NEWNET)
    finally:
        os.close(fd)


def source_address(dst: str) -> str:
    """The address the kernel would send from towards `dst` (a UDP connect sends nothing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((dst, 9))
        return s.getsockname()[0]
    finally:
        s.close()


def syn(src: str, dst: str, dport: int, sport: int, timeout: float) -> dict:
    from scapy.layers.inet import ICMP, IP, TCP, TCPerror

    packet = bytes(IP(src=src, dst=dst, ttl=64) / TCP(sport=sport, dport=dport, flags="S", seq=1))
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rx_tcp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rx_icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    result = {"answer": "", "reply_from": "", "detail": "no answer before the deadline",
              "client": f"{src}:{sport}"}
    try:
        tx.sendto(packet, (dst, 0))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ready, _, _ = select.select([rx_tcp, rx_icmp], [], [], max(0.0, end - time.monotonic()))
            for s in ready:
                ip = IP(s.recv(65535))
                if TCP in ip and ip[TCP].dport == sport and ip[TCP].sport == dport and ip.dst == src:
                    flags = str(ip[TCP].flags)
                    kind = "syn-ack" if "S" in flags and "A" in flags else "rst" if "R" in flags else ""
                    if kind:
                        return {**result, "answer": kind, "reply_from": f"{ip.src}:{ip[TCP].sport}",
                                "detail": f"TCP flags {flags}"}
                if ICMP in ip and ip[ICMP].type == 3 and TCPerror in ip and ip[TCPerror].sport == sport:
                    return {**result, "answer": "icmp", "reply_from": ip.src,
                            "detail": f"ICMP destination unreachable (code {ip[ICMP].code})"}
        return result
    finally:
        tx.close()
        rx_tcp.close()
        rx_icmp.close()


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


def http(dst: str, port: int, path: str, timeout: float) -> dict:
    """GET `path`, then /hostname and /clientip on the same connection (so the same backend)."""
    out = {"ok": False, "status": 0, "body": "", "hostname": "", "client_seen_as": "", "local": "",
           "peer": "", "error": ""}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect((dst, port))
        except ConnectionRefusedError:
            return {**out, "error": "refused"}
        except (socket.timeout, TimeoutError):
            return {**out, "error": "timeout"}
        except OSError as e:
            return {**out, "error": f"unreachable: {e.strerror}"}
        out["local"] = "%s:%d" % s.getsockname()
        out["peer"] = "%s:%d" % s.getpeername()
        f = s.makefile("rb")
        reqs = [path] + [p for p in ("/hostname", "/clientip") if p != path]
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
                return {**out, "error": "timeout"}
        except (ConnectionError, ValueError, IndexError) as e:
            if path not in answers:
                return {**out, "error": f"bad reply: {e}"}
        status, text = answers[path]
        hostname, clientip = answers.get("/hostname", (0, "")), answers.get("/clientip", (0, ""))
        return {**out, "ok": True, "status": status, "body": text,
                "hostname": hostname[1] if hostname[0] == 200 else "",
                "client_seen_as": clientip[1] if clientip[0] == 200 else ""}
    finally:
        s.close()


def udp(dst: str, port: int, message: str, timeout: float, sport: int) -> dict:
    """`message`, then "hostname" and "clientip" from one socket (one conntrack entry)."""
    out = {"ok": False, "body": "", "hostname": "", "client_seen_as": "", "local": "", "reply_from": "",
           "error": ""}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.bind(("0.0.0.0", sport))
        s.connect((dst, port))
        out["local"] = "%s:%d" % s.getsockname()
        replies = []
        for m in dict.fromkeys([message, "hostname", "clientip"]):
            s.send(m.encode())
            try:
                data, addr = s.recvfrom(2048)
            except (socket.timeout, TimeoutError):
                if not replies:
                    return {**out, "error": "timeout"}
                break
            except ConnectionRefusedError:
                return {**out, "error": "refused"}
            replies.append((m, data.decode(errors="replace"), "%s:%d" % addr))
        got = {m: text for m, text, _ in replies}
        return {**out, "ok": True, "body": got.get(message, ""), "hostname": got.get("hostname", ""),
                "client_seen_as": got.get("clientip", ""), "reply_from": replies[0][2]}
    finally:
        s.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="labkit-probe")
    p.add_argument("kind", choices=("syn", "http", "udp"))
    p.add_argument("--dst", required=True)
    p.add_argument("--dport", type=int, required=True)
    p.add_argument("--src-ip", default="")
    p.add_argument("--sports", default="", help="syn: comma-separated client ports, one SYN each")
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--path", default="/hostname")
    p.add_argument("--message", default="hostname")
    p.add_argument("--timeout", type=float, default=1.0)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.src_ip:
        enter_netns_of(args.src_ip)
    if args.kind == "syn":
        src = args.src_ip or source_address(args.dst)
        for sport in (int(x) for x in args.sports.split(",") if x):
            print(json.dumps(syn(src, args.dst, args.dport, sport, args.timeout)), flush=True)
    elif args.kind == "http":
        print(json.dumps(http(args.dst, args.dport, args.path, args.timeout)))
    else:
        print(json.dumps(udp(args.dst, args.dport, args.message, args.timeout, args.sport)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
