"""The pod server: the parts of Kubernetes' `agnhost netexec` that e2e tests use.

HTTP (keep-alive, like Go's server), as agnhost's handlers answer:
  /hostname, /hostName  the pod's name           /clientip  "address:port" of the peer
  /echo?msg=M[&code=C]  M (with status C)        /healthz   200, empty
  / and ANY other path  "NOW: <time.Now()>"      (agnhost's rootHandler holds the pattern "/",
                        which Go's ServeMux gives every path no other handler takes)
  /dial, /exit, /redirect, /shell, /shutdown, /upload: agnhost has them, this server does not
                        (501, saying so: it neither runs commands nor exits on request)
UDP: "hostname", "echo <msg>", "clientip" (case-insensitive, as agnhost).

The time is Go's time.Time.String() of a UTC clock ("2026-01-01 00:00:03.5 +0000 UTC
m=+3.500000000", render_go_time): the real clock here, the simulation's own clock there.

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
START_NS = time.monotonic_ns()  # the process's start: Go's monotonic reading counts from it
# Go's net/http StatusText where Python's http.HTTPStatus spells a phrase differently
_GO_REASONS = {414: "Request URI Too Long", 418: "I'm a teapot"}
# the body of "/" (and of every path agnhost has no handler for): "NOW: " and Go's time.Time.String()
# of time.Now() in a UTC container (fraction without trailing zeros; the monotonic reading)
NOW_PATTERN = r"NOW: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{0,8}[1-9])? \+0000 UTC m=[+-](0|[1-9]\d*)\.\d{9}"
# agnhost's handlers this server leaves out (they run commands, exit, dial out, write files)
NOT_IMPLEMENTED = ("/dial", "/exit", "/redirect", "/shell", "/shutdown", "/upload")


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


def status_text(status: int) -> str:
    """The reason phrase Go's server writes ("status code 599" for a code it has none for)."""
    from http import HTTPStatus

    if status in _GO_REASONS:
        return _GO_REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


def render_http_response(status: int, body: str, keep_alive: bool, date: str = "") -> bytes:
    """A response as Go's net/http writes a handler's plain-text answer: headers sorted by
    name, Content-Type sniffed (none for an empty body), Connection only when closing."""
    data = body.encode()
    headers = [("Content-Length", str(len(data)))]
    if data:
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    if date:
        headers.append(("Date", date))
    if not keep_alive:
        headers.insert(0, ("Connection", "close"))
    head = f"HTTP/1.1 {status} {status_text(status)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + "\r\n").encode() + data


def render_go_time(wall_ns: int, monotonic_ns: int | None = None) -> str:
    """Go's time.Time.String() of a UTC time: "2006-01-02 15:04:05.999999999 -0700 MST"
    (trailing zeros of the fraction dropped, no fraction at all on a whole second), then
    " m=+S.NNNNNNNNN" when the time carries a monotonic reading (time.Now() does: the
    seconds since the process started). Pure: both clocks are given."""
    seconds, nanos = divmod(wall_ns, 10**9)
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    text += " +0000 UTC"
    if monotonic_ns is not None:
        sign = "-" if monotonic_ns < 0 else "+"
        whole, frac = divmod(abs(monotonic_ns), 10**9)
        giga, whole = divmod(whole, 10**9)
        text += f" m={sign}" + (f"{giga}{whole:09d}" if giga else f"{whole}") + f".{frac:09d}"
    return text


def render_http_date(wall_ns: int) -> str:
    """The Date header Go writes (http.TimeFormat)."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(wall_ns // 10**9))


def _go_atoi(text: str) -> int | None:
    """strconv.Atoi: an optional sign, then ASCII digits; None where Go returns an error."""
    import re

    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None


def answer_http(target: str, hostname: str, peer: str, now: str = "") -> tuple[int, str]:
    """(status, body) for a request of `target`, as agnhost netexec answers it; `now` is the
    server's clock as render_go_time writes it (the body of "/" and of every unknown path)."""
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
            status = _go_atoi(code)
            if status is None:
                return 200, f"argument 'code' must be an integer or empty, got {_go_quote(code)}\n"
            return status, msg
        return 200, msg
    if path in NOT_IMPLEMENTED:
        return 501, (f"labkit's netexec does not implement {path} (agnhost's {', '.join(NOT_IMPLEMENTED)} "
                     "run commands, exit, dial out or write files; the lab's pods do none of that)\n")
    return 200, f"NOW: {now}"


def _go_quote(text: str) -> str:
    """Go's %q of a printable ASCII string (double quotes, backslash escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    """setns(2) into a network namespace. Written out again in each server script on purpose:
    they run as `python -I -S` (stdlib only, fast start) and cannot import labkit."""
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
                wall = time.time_ns()
                status, body = answer_http(parts[1], self.hostname, _peer(conn.getpeername()),
                                           render_go_time(wall, time.monotonic_ns() - START_NS))
            conn.setblocking(True)
            conn.sendall(render_http_response(status, body, keep, render_http_date(time.time_ns())))
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
