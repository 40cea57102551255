"""A real nginx on loopback, configured by labkit, in front of tiny named backends.

Each backend is a Python HTTP server on 127.0.0.1 that answers with its own
name and what it was sent (path, Host, X-Forwarded-*), so a test can see who
answered. nginx runs in the foreground from a temporary directory; every
process and file is removed in close(). Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping, Optional, Sequence

from labkit.controllers.ingress.nginx_conf import NginxRuntime, render_nginx_conf_from_table
from labkit.controllers.ingress.routing import RoutingTable

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class _Echo(BaseHTTPRequestHandler):
    """Answers every method with JSON: who I am and what I saw."""

    name = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({
            # the raw request target: http.server rewrites a leading "//" in self.path
            "backend": self.name, "method": self.command, "path": self.requestline.split(" ")[1],
            "host": self.headers.get("Host"),
            "x_forwarded_for": self.headers.get("X-Forwarded-For"),
            "x_real_ip": self.headers.get("X-Real-IP"),
            "x_forwarded_host": self.headers.get("X-Forwarded-Host"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@dataclass
class Reply:
    status: int
    body: dict
    headers: Mapping[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, deadline_s: float = 10.0) -> None:
    """Until something accepts on 127.0.0.1:port, or fail with nginx's stderr."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port} within {deadline_s}s")


class NginxLab:
    """Backends for every Backend of a routing table, and nginx in front of them."""

    def __init__(self, table: RoutingTable, missing: Sequence[str] = ()):
        self.table = table
        self.servers: list[ThreadingHTTPServer] = []
        self.proc: Optional[subprocess.Popen] = None
        self.dir = tempfile.mkdtemp(prefix="lktest-nginx-")
        try:
            endpoints = {}
            for b in table.backends():
                if b.key in missing:
                    continue
                handler = type("Echo", (_Echo,), {"name": str(b)})
                srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
                srv.daemon_threads = True
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                self.servers.append(srv)
                endpoints[b.key] = (f"127.0.0.1:{srv.server_address[1]}",)
            self.port = free_port()
            runtime = NginxRuntime(listen=f"127.0.0.1:{self.port}", error_log="stderr warn")
            self.conf = render_nginx_conf_from_table(table, endpoints, runtime)
            with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
                f.write(self.conf)
            os.mkdir(os.path.join(self.dir, "tmp"))
            check = subprocess.run([NGINX, "-t", "-q", "-p", self.dir, "-c", "nginx.conf", "-e", "stderr"],
                                   capture_output=True, text=True, timeout=30)
            if check.returncode != 0:
                raise RuntimeError(f"nginx -t refused the rendered config:\n{check.stderr}\n{self.conf}")
            self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", "nginx.conf", "-e", "stderr"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_listening(self.port, self.proc)
        except BaseException:
            self.close()
            raise

    def request(self, method: str, host: Optional[str], target: str) -> Reply:
        """One request to nginx; no host means the client names only the address."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if host else f"127.0.0.1:{self.port}")
            conn.putheader("Content-Length", "0")
            conn.endheaders()
            resp = conn.getresponse()
            raw = resp.read()
            try:
                body = json.loads(raw) if resp.getheader("Content-Type") == "application/json" else {}
            except ValueError:
                body = {}
            return Reply(resp.status, body, {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def close(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            if self.proc is not None and self.proc.stderr:
                self.proc.stderr.close()
        finally:
            for srv in self.servers:
                srv.shutdown()
                srv.server_close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "NginxLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
