"""A node's kube-proxy health check server, as a small process in the node's namespace.

For every Service with externalTrafficPolicy: Local, kube-proxy listens on
the Service's healthCheckNodePort on each node and answers any GET with 200
(the node has local ready endpoints) or 503 (it has none) and a JSON body
(pkg/proxy/healthcheck/service_health.go). The answers are computed by
labkit.controllers.loadbalancer; this process only serves them:

    python3 -I -S health_server.py --lab L --netns /run/netns/NS --ready-fd FD \\
        --answer PORT STATUS BODY [--answer ...]

Standard library only (it starts in a few tens of milliseconds); it joins
the namespace itself, reports "ok" on the ready pipe, and exits when the
namespace is gone. The lab restarts it whenever the answers change.
"""
from __future__ import annotations

import os
import selectors
import socket
import sys
import time

PROGRAM_MARKER = "labkit-health"
WATCH_INTERVAL = 0.5
_REASONS = {200: "OK", 503: "Service Unavailable"}


def render_response(status: int, body: str) -> bytes:
    """kube-proxy's response: JSON content type, nosniff, the body as written (Go's net/http headers)."""
    data = body.encode()
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            "Content-Type: application/json\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            f"Content-Length: {len(data)}\r\n"
            "\r\n")
    return head.encode() + data


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


def serve(answers: dict[int, tuple[int, str]], still_wanted) -> None:
    sel = selectors.DefaultSelector()
    for port in answers:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, ("accept", port))
    buffers: dict[socket.socket, bytes] = {}
    last_check = time.monotonic()
    while True:
        for key, _ in sel.select(WATCH_INTERVAL):
            what, port = key.data
            if what == "accept":
                conn, _ = key.fileobj.accept()
                conn.setblocking(False)
                buffers[conn] = b""
                sel.register(conn, selectors.EVENT_READ, ("conn", port))
                continue
            conn = key.fileobj
            data = conn.recv(65536)
            buf = buffers.get(conn, b"") + data
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                status, body = answers[port]
                conn.setblocking(True)
                conn.sendall(render_response(status, body))
                conn.setblocking(False)
            buffers[conn] = buf
            if not data:
                sel.unregister(conn)
                buffers.pop(conn, None)
                conn.close()
        if time.monotonic() - last_check > WATCH_INTERVAL:
            last_check = time.monotonic()
            if not still_wanted():
                return


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog=PROGRAM_MARKER, description=__doc__.splitlines()[0])
    p.add_argument("--lab", default="")
    p.add_argument("--netns", default="")
    p.add_argument("--ready-fd", type=int, default=-1)
    p.add_argument("--answer", nargs=3, action="append", default=[], metavar=("PORT", "STATUS", "BODY"))
    args = p.parse_args(argv)

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
        answers = {int(port): (int(status), body) for port, status, body in args.answer}
    except Exception as e:
        ready(f"error: {e}")
        return 1

    def still_wanted() -> bool:
        try:
            return not args.netns or os.stat(args.netns).st_ino == inode
        except OSError:
            return False

    # listening sockets are made inside serve(); report readiness once they exist
    import threading

    failure: list[BaseException] = []

    def run() -> None:
        try:
            serve(answers, still_wanted)
        except BaseException as e:  # e.g. the port is taken: say so on the ready pipe
            failure.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    # "ok" only once every port listens (a loaded machine can take seconds to get
    # here): the lab waits for this line, so a probe never races the server.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not failure and not _listening(list(answers)):
        time.sleep(0.005)
    if failure or not _listening(list(answers)):
        ready(f"error: {failure[0] if failure else 'not listening after 15 s'}")
        return 1
    ready("ok")
    t.join()
    return 1 if failure else 0


def _listening(ports: list[int]) -> bool:
    try:
        with open("/proc/net/tcp") as f:
            text = f.read()
    except OSError:
        return True
    return all(f":{port:04X} 00000000:0000 0A" in text for port in ports)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
