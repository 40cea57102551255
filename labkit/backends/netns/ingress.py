"""The ingress controller pod in the kernel lab: real nginx, configured by labkit, and requests to it.

The controller pod (labkit.controllers.ingress.controller) runs Debian's
/usr/sbin/nginx in its network namespace, in the foreground, with its own
prefix directory under the lab's state directory (<state>/ingress/<netns>/:
nginx.conf, nginx.pid, error.log, temp directories), which `labkit down`
removes with the rest of the state; its PID is in the registry, and being in
the pod's namespace it is found and killed by `down` like every pod process.

A change that alters the rendered configuration (apply, delete, scale, a
label) is a reload as ingress-nginx does it: the new text is checked with
`nginx -t`, put in place, and `nginx -s reload` signals the master; the lab
then waits until the controller's status server (127.0.0.1:10246, inside the
pod) reports the new configuration's generation and the old workers are gone,
so the next request meets the new routing.

A request to the controller is one HTTP/1.1 GET with the learner's Host and
headers, and an X-Request-ID the lab draws from its seeded rng (nginx keys
split_clients on it, so the simulation can split the same way). While it
runs, a packet socket in the controller pod watches its interface: the
request as it arrived (the client as nginx saw it) and the request nginx sent
upstream (which pod, and the X-Forwarded-For / X-Real-IP it carried).
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from labkit.backends.netns.registry import ProcessRecord, Registry
from labkit.backends.netns.runner import in_netns
from labkit.controllers.ingress.controller import GENERATION_PATH, HTTP_PORT, STATUS_LISTEN
from labkit.errors import LabkitError
from labkit.tools import require_tool

READY_DEADLINE = 5.0  # seconds for nginx to start, or to finish a reload
ETH_P_ALL = 0x0003


def controller_dir(registry: Registry, netns: str) -> str:
    return os.path.join(registry.dir, "ingress", netns)


def _check_conf(nginx: str, d: str, name: str) -> None:
    out = subprocess.run([nginx, "-t", "-q", "-p", d, "-c", name, "-e", "stderr"], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        raise LabkitError(f"nginx refused the configuration labkit rendered ({os.path.join(d, name)}):\n"
                          f"{out.stderr.strip()}\n(a labkit bug: please report it with the file)")


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def start_nginx(lab: str, pod_key: str, netns: str, text: str, generation: str,
                registry: Registry) -> ProcessRecord:
    """Write the configuration, start nginx in the pod's namespace, wait until it serves it."""
    nginx = require_tool("nginx")
    d = controller_dir(registry, netns)
    os.makedirs(os.path.join(d, "tmp"), mode=0o755, exist_ok=True)
    os.chmod(registry.dir, 0o711)  # nginx's workers (user nobody) reach their temp directories
    os.chmod(os.path.join(registry.dir, "ingress"), 0o711)
    _write(os.path.join(d, "nginx.conf"), text)
    _check_conf(nginx, d, "nginx.conf")
    argv = ["ip", "netns", "exec", netns, nginx, "-p", d, "-c", "nginx.conf", "-e", "stderr"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    rec = ProcessRecord(proc.pid, netns, pod_key, d)  # nginx's title keeps "-p DIR"
    registry.record_process(rec)
    end = time.monotonic() + READY_DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise LabkitError(f"pod {pod_key}: nginx did not start: {err or 'it exited'}")
        if serving_generation(netns) == generation:
            if proc.stderr:
                proc.stderr.close()
            return rec
        time.sleep(0.01)
    raise LabkitError(f"pod {pod_key}: nginx was not serving after {READY_DEADLINE:.0f} s")


def _workers(master: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                out.add(int(entry))
    return out


def reload_nginx(pod_key: str, netns: str, text: str, generation: str, registry: Registry, master: int) -> None:
    """nginx -t on the new text, put it in place, nginx -s reload; return once the new
    workers serve it and the old ones have left."""
    nginx = require_tool("nginx")
    d = controller_dir(registry, netns)
    _write(os.path.join(d, "nginx.conf.next"), text)
    _check_conf(nginx, d, "nginx.conf.next")
    os.replace(os.path.join(d, "nginx.conf.next"), os.path.join(d, "nginx.conf"))
    old = _workers(master)
    out = subprocess.run([nginx, "-p", d, "-c", "nginx.conf", "-e", "stderr", "-s", "reload"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise LabkitError(f"pod {pod_key}: nginx -s reload failed: {out.stderr.strip()}")
    end = time.monotonic() + READY_DEADLINE
    while time.monotonic() < end:
        if serving_generation(netns) == generation and not (old & _workers(master)):
            return
        time.sleep(0.01)
    raise LabkitError(f"pod {pod_key}: nginx did not take the new configuration within "
                      f"{READY_DEADLINE:.0f} s (see {os.path.join(d, 'error.log')})")


def serving_generation(netns: str) -> str:
    """What the controller's status server says its workers run ("" if it does not answer)."""
    host, port = STATUS_LISTEN.rsplit(":", 1)

    def body() -> str:
        try:
            with socket.create_connection((host, int(port)), timeout=0.2) as s:
                s.sendall(f"GET {GENERATION_PATH} HTTP/1.0\r\nHost: status\r\n\r\n".encode())
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return ""
        head, _, text = data.partition(b"\r\n\r\n")
        return text.decode(errors="replace") if head.startswith(b"HTTP/1.1 200") else ""

    return in_netns(netns, body)


# --- one request through the controller --------------------------------------------------


@dataclass(frozen=True)
class IngressOutcome:
    ok: bool
    status: int = 0
    body: str = ""
    local: str = ""  # "address:port" the client used
    peer: str = ""  # "address:port" it was connected to
    seen_as: str = ""  # the client as nginx saw it (from the request arriving in the pod)
    upstream: str = ""  # "IP:port" nginx proxied to ("" if it answered itself)
    upstream_headers: tuple[tuple[str, str], ...] = ()
    error: str = ""


def _packet_socket(netns: str) -> socket.socket:
    def body() -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.setblocking(False)
        return s

    return in_netns(netns, body)


def parse_tcp_payload(frame: bytes) -> Optional[tuple[str, int, str, int, bytes]]:
    """(src, sport, dst, dport, payload) of an Ethernet+IPv4+TCP frame, else None."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6 or len(ip) < ihl + 20:
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    off = (tcp[12] >> 4) * 4
    sport, dport = struct.unpack("!HH", tcp[:4])
    return socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport, bytes(tcp[off:])


def _headers_of(payload: bytes) -> tuple[tuple[str, str], ...]:
    head = payload.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]
    out = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in head) if k.strip()]
    return tuple(sorted(out, key=lambda kv: kv[0].lower()))


def _read_response(s: socket.socket) -> tuple[int, str]:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body.decode(errors="replace")


class Watchers:
    """Packet sockets in the controller pods, kept open between requests: closing one costs
    the kernel an RCU grace period (~16 ms here), more than the request itself."""

    def __init__(self) -> None:
        self.sockets: dict[str, socket.socket] = {}

    def for_netns(self, names: Sequence[str]) -> list[socket.socket]:
        for ns in [n for n in self.sockets if n not in names]:
            self.sockets.pop(ns).close()
        for ns in names:
            if ns not in self.sockets:
                self.sockets[ns] = _packet_socket(ns)
        for sock in self.sockets.values():  # forget what earlier requests left
            while True:
                try:
                    sock.recv(65536)
                except BlockingIOError:
                    break
        return [self.sockets[ns] for ns in names]

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets = {}


def ingress_request(src_netns: str, dst: str, port: int, path: str, host_header: str,
                    headers: Mapping[str, str], request_id: str, sniffers: Sequence[socket.socket],
                    timeout: float = 2.0) -> IngressOutcome:
    """One GET through the controller, watched by packet sockets inside the controller pod(s)
    (Watchers.for_netns)."""
    def body() -> IngressOutcome:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            try:
                s.connect((dst, port))
            except ConnectionRefusedError:
                return IngressOutcome(False, error="refused")
            except (socket.timeout, TimeoutError):
                return IngressOutcome(False, error="timeout")
            except OSError as e:
                return IngressOutcome(False, error=f"unreachable: {e.strerror}")
            local, peer = "%s:%d" % s.getsockname(), "%s:%d" % s.getpeername()
            lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}", f"X-Request-ID: {request_id}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines.append("Connection: close")
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            try:
                status, text = _read_response(s)
            except (socket.timeout, TimeoutError):
                return IngressOutcome(False, local=local, peer=peer, error="timeout")
            except (ConnectionError, ValueError, IndexError) as e:
                return IngressOutcome(False, local=local, peer=peer, error=f"bad reply: {e}")
            return IngressOutcome(True, status, text, local, peer)
        finally:
            s.close()

    out = in_netns(src_netns, body)
    if not out.ok:
        return out
    # Everything to see was captured before the response came back (nginx sent the request
    # upstream, then answered): drain what the packet sockets hold.
    marker = f"X-Request-ID: {request_id}\r\n".encode()
    seen_as, upstream, up_headers = "", "", ()
    for sock in sniffers:
        while True:
            try:
                frame, addr = sock.recvfrom(65536)
            except BlockingIOError:
                break
            got = parse_tcp_payload(frame)
            if got is None or marker not in got[4]:
                continue
            src, sport, dst_ip, dport, payload = got
            if addr[2] != socket.PACKET_OUTGOING and dport == HTTP_PORT and not seen_as:
                seen_as = f"{src}:{sport}"
            elif addr[2] == socket.PACKET_OUTGOING and not upstream:
                upstream, up_headers = f"{dst_ip}:{dport}", _headers_of(payload)
    return IngressOutcome(True, out.status, out.body, out.local, out.peer, seen_as, upstream, up_headers)


# --- keeping the controller pods' nginx in step with the cluster ---------------------------


def sync_controllers(lab: str, plan, state, fresh: set, running: dict, registry: Registry) -> dict:
    """Start nginx in new controller pods, reload it where the configuration changed.

    running: controller pod netns -> the generation its nginx serves; returns the new map.
    """
    from labkit.controllers.ingress.controller import controller_pods, render_controller_conf

    keys = {f"{p.meta.namespace}/{p.meta.name}" for p in controller_pods(state)}
    wanted = {p.netns: p for p in plan.pods if p.key in keys}
    if not wanted:
        return {}
    conf = render_controller_conf(state)
    now = {}
    for ns, p in sorted(wanted.items()):
        if ns in fresh or ns not in running:
            start_nginx(lab, p.key, ns, conf.text, conf.generation, registry)
        elif running[ns] != conf.generation:
            d = controller_dir(registry, ns)
            master = next((r.pid for r in registry.processes if r.netns == ns and r.marker == d), 0)
            if not master:
                raise LabkitError(f"pod {p.key}: its nginx is not in the lab's registry "
                                  f"(fix: `labkit down --name {lab}` and make the lab again)")
            reload_nginx(p.key, ns, conf.text, conf.generation, registry, master)
        now[ns] = conf.generation
    return now
