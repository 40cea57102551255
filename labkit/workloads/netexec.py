"""The pod server: the parts of Kubernetes' `agnhost netexec` that e2e tests use.

HTTP (keep-alive, like Go's server):
  /hostname, /hostName  the pod's name           /clientip  "address:port" of the peer
  /echo?msg=M[&code=C]  M (with status C)        /healthz   200
  /                     "NOW: <time>"            anything else: 404 "404 page not found"
UDP: "hostname", "echo <msg>", "clientip" (case-insensitive, as agnhost).

Standard library only, and nothing of labkit imported at start, so it starts
in a few tens of milliseconds: the lab runs it as `python3 -I -S netexec.py`.
It joins the pod's network namespace itself (setns), tells its parent it is
listening through --ready-fd, and exits by itself when the namespace it
serves is deleted (so nothing outlives `labkit down`, whatever killed `up`).

The pure helper `pod_server_ports(pod)` says which ports a model Pod's
server listens on.
"""
from __future__ import annotations

import os
import selectors
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

DEFAULT_HTTP_PORT = 8080  # agnhost netexec's defaults
DEFAULT_UDP_PORT = 8081
PROGRAM_MARKER = "labkit-netexec"  # in argv, so cleanup can recognise a lab's server
WATCH_INTERVAL = 0.5  # seconds between checks that the namespace still exists
_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed",
    417: "Expectation Failed", 500: "Internal Server Error", 503: "Service Unavailable",
}


def pod_server_ports(pod) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(tcp ports, udp ports) the server of model Pod `pod` listens on.

    An agnhost container's --http-port/--udp-port flags win; otherwise every
    declared containerPort (TCP -> HTTP, UDP -> UDP); otherwise agnhost's
    defaults, 8080/TCP and 8081/UDP.
    """
    tcp: list[int] = []
    udp: list[int] = []
    for c in pod.containers:
        for arg in tuple(c.command) + tuple(c.args):
            for flag, ports in (("--http-port=", tcp), ("--udp-port=", udp)):
                if arg.startswith(flag) and arg[len(flag):].lstrip("-").isdigit():
                    n = int(arg[len(flag):])
                    if n > 0:
                        ports.append(n)
        for p in c.ports:
            (udp if p.protocol == "UDP" else tcp if p.protocol == "TCP" else []).append(p.container_port)
    if not tcp and not udp:
        tcp, udp = [DEFAULT_HTTP_PORT], [DEFAULT_UDP_PORT]
    return tuple(sorted(set(tcp))), tuple(sorted(set(udp)))


def render_http_response(status: int, body: str, keep_alive: bool) -> bytes:
    """A Go-like plain-text response."""
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + data


def answer_http(target: str, hostname: str, peer: str, now: str = "") -> tuple[int, str]:
    """(status, body) for a GET of `target`, as agnhost netexec answers it."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    path = url.path
    if path in ("/hostname", "/hostName"):
        return 200, hostname
    if path == "/clientip":
        return 200, peer
    if path == "/healthz":
        return 200, ""
    if path == "/echo":
        msg = query.get("msg", [""])[0]
        code = query.get("code", [""])[0]
        if code:
            if not code.lstrip("-").isdigit():
                return 200, f"argument 'code' must be an integer or empty, got {code!r}\n"
            return int(code), msg
        return 200, msg
    if path == "/":
        return 200, f"NOW: {now}"
    return 404, "404 page not found\n"


def answer_udp(text: str, hostname: str, peer: str) -> str | None:
    """The reply to one UDP datagram (None: agnhost stays silent)."""
    t = text.strip().lower()
    if t == "hostname":
        return hostname
    if t.startswith("echo "):
        return t.split(" ", 1)[1]
    if t == "clientip":
        return peer
    return None


def _peer(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _join_netns(path: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


class Server:
    """One pod's HTTP and UDP servers on one selector loop."""

    def __init__(self, hostname: str, tcp_ports, udp_ports):
        self.hostname = hostname
        self.sel = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        for port in tcp_ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(64)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, "accept")
        for port in udp_ports:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("0.0.0.0", port))
            u.setblocking(False)
            self.sel.register(u, selectors.EVENT_READ, "udp")

    def serve(self, still_wanted=lambda: True) -> None:
        last = time.monotonic()
        while True:
            for key, _ in self.sel.select(timeout=WATCH_INTERVAL):
                try:
                    getattr(self, "_on_" + key.data)(key.fileobj)
                except OSError:
                    if key.data == "conn":
                        self._close(key.fileobj)
            now = time.monotonic()
            if now - last >= WATCH_INTERVAL:
                last = now
                if not still_wanted():
                    return

    def _on_accept(self, s: socket.socket) -> None:
        conn, _ = s.accept()
        conn.setblocking(False)
        self.buffers[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, "conn")

    def _on_udp(self, u: socket.socket) -> None:
        data, addr = u.recvfrom(2048)
        reply = answer_udp(data.decode(errors="replace"), self.hostname, _peer(addr))
        if reply is not None:
            u.sendto(reply.encode(), addr)

    def _on_conn(self, conn: socket.socket) -> None:
        data = conn.recv(65536)
        if not data:
            self._close(conn)
            return
        buf = self.buffers[conn] + data
        while b"\r\n\r\n" in buf:
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode(errors="replace").split("\r\n")
            parts = lines[0].split()
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            length = int(headers.get("content-length", "0") or 0)
            buf = buf[length:]  # a body, if any, is read and ignored
            keep = headers.get("connection", "").lower() != "close" and parts[-1:] != ["HTTP/1.0"]
            if len(parts) != 3:
                status, body, keep = 400, "400 Bad Request", False
            else:
                status, body = answer_http(parts[1], self.hostname, _peer(conn.getpeername()),
                                           time.strftime("%Y-%m-%d %H:%M:%S"))
            conn.setblocking(True)
            conn.sendall(render_http_response(status, body, keep))
            conn.setblocking(False)
            if not keep:
                self._close(conn)
                return
        if len(buf) > 65536:
            self._close(conn)
            return
        self.buffers[conn] = buf

    def _close(self, conn: socket.socket) -> None:
        self.buffers.pop(conn, None)
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=PROGRAM_MARKER, description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--netns", default="", help="path of the network namespace to join")
    parser.add_argument("--lab", default="", help="the lab's name (for cleanup)")
    parser.add_argument("--http-port", type=int, action="append", default=[])
    parser.add_argument("--udp-port", type=int, action="append", default=[])
    parser.add_argument("--ready-fd", type=int, default=-1)
    args = parser.parse_args(argv)

    def ready(message: str) -> None:
        if args.ready_fd >= 0:
            os.write(args.ready_fd, message.encode() + b"\n")
            os.close(args.ready_fd)
            args.ready_fd = -1

    try:
        inode = 0
        if args.netns:
            _join_netns(args.netns)
            inode = os.stat("/proc/thread-self/ns/net").st_ino
        tcp = args.http_port or ([] if args.udp_port else [DEFAULT_HTTP_PORT])
        server = Server(args.hostname, tcp, args.udp_port)
    except Exception as e:  # told to the parent, which reports it to the learner
        ready(f"error: {e}")
        return 1
    ready("ok")

    def still_wanted() -> bool:
        if not args.netns:
            return True
        try:
            return os.stat(args.netns).st_ino == inode
        except OSError:
            return False

    try:
        server.serve(still_wanted)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
