"""The pod server answers like agnhost netexec: /hostname, /clientip, /echo, "NOW: ..." for any
other path, UDP hostname/echo/clientip; its responses are written the way Go's net/http writes them."""
import os
import re
import socket
import subprocess
import sys

import pytest

from labkit.model.objects import Container, ContainerPort, ObjectMeta, Pod
from labkit.workloads import netexec
from labkit.workloads.netexec import (
    answer_http,
    answer_udp,
    pod_server_ports,
    render_go_time,
    render_http_date,
    render_http_response,
    status_text,
)

NOW = "2026-01-01 00:00:03 +0000 UTC m=+3.000000000"
GO_NOW = netexec.NOW_PATTERN


def test_http_answers():
    assert answer_http("/hostname", "web-0", "10.244.1.2:40000") == (200, "web-0")
    assert answer_http("/hostName", "web-0", "x") == (200, "web-0")
    assert answer_http("/clientip", "web-0", "10.244.1.2:40000") == (200, "10.244.1.2:40000")
    assert answer_http("/echo?msg=hello%20there", "w", "x") == (200, "hello there")
    assert answer_http("/echo?msg=teapot&code=418", "w", "x") == (418, "teapot")
    assert answer_http("/echo?msg=m&code=%2B201", "w", "x") == (201, "m")  # strconv.Atoi takes a sign
    assert answer_http("/echo?msg=m&code=x", "w", "x") == (200, "argument 'code' must be an integer or empty, got \"x\"\n")
    assert answer_http("/echo?code=4%C2%B2", "w", "x") == (200, "argument 'code' must be an integer or empty, got \"4\u00b2\"\n")
    assert answer_http("/healthz", "w", "x") == (200, "")


def test_every_other_path_is_agnhosts_root_handler():
    """ServeMux gives "/" every path no other pattern takes: agnhost answers them all 200 "NOW: ..."."""
    for path in ("/", "/nope", "/hostname/", "/api/hostname", "/index.html?x=1", "/echo/"):
        assert answer_http(path, "w", "x", now=NOW) == (200, "NOW: " + NOW), path


def test_agnhosts_other_handlers_say_they_are_left_out():
    status, body = answer_http("/shell?cmd=id", "w", "x", now=NOW)
    assert (status, body) == (501, "labkit's netexec does not implement /shell (agnhost's /dial, /exit, /redirect, "
                                   "/shell, /shutdown, /upload run commands, exit, dial out or write files; the "
                                   "lab's pods do none of that)\n")
    assert [answer_http(p, "w", "x")[0] for p in ("/dial", "/exit", "/redirect", "/shutdown", "/upload")] == [501] * 5


def test_go_time_string():
    """time.Time.String(): the fraction without trailing zeros (none on a whole second), the zone, and
    the monotonic reading as seconds with nine decimals."""
    epoch = 1767225600 * 10**9  # 2026-01-01 00:00:00 UTC
    assert render_go_time(epoch + 3 * 10**9, 3 * 10**9) == NOW
    assert render_go_time(epoch + 975_123_456 + 7 * 86400 * 10**9, 1_500_000_000) == \
        "2026-01-08 00:00:00.975123456 +0000 UTC m=+1.500000000"
    assert render_go_time(epoch + 120_000_000, 42) == "2026-01-01 00:00:00.12 +0000 UTC m=+0.000000042"
    assert render_go_time(epoch, -2 * 10**9) == "2026-01-01 00:00:00 +0000 UTC m=-2.000000000"
    assert render_go_time(epoch, 1_000_000_007 * 10**9 + 5) == "2026-01-01 00:00:00 +0000 UTC m=+1000000007.000000005"
    assert render_go_time(epoch) == "2026-01-01 00:00:00 +0000 UTC"  # no monotonic reading
    assert re.fullmatch(GO_NOW, "NOW: " + NOW)
    assert re.fullmatch(GO_NOW, "NOW: 2026-01-01 00:00:00.12 +0000 UTC m=+12.000000042")
    for wrong in ("NOW: 2026-01-01 00:00:00.120 +0000 UTC m=+1.000000000",  # a trailing zero
                  "NOW: 2026-01-01 00:00:00 +0000 UTC m=+1.00000000",  # eight decimals
                  "NOW: 2026-01-01 00:00:00"):
        assert not re.fullmatch(GO_NOW, wrong), wrong
    assert render_http_date(epoch + 10**9 - 1) == "Thu, 01 Jan 2026 00:00:00 GMT"


def test_response_text():
    """Go's order (headers sorted by name), no Content-Type on an empty body, Connection only to close."""
    assert render_http_response(200, "web-0", True, "Thu, 01 Jan 2026 00:00:00 GMT") == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\nweb-0")
    assert render_http_response(200, "", False) == b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert [status_text(c) for c in (200, 412, 414, 418, 501, 599)] == [
        "OK", "Precondition Failed", "Request URI Too Long", "I'm a teapot", "Not Implemented", "status code 599"]


def _pod(*containers):
    return Pod(ObjectMeta("p", "default"), containers=containers)


def test_ports_from_agnhost_flags_declared_ports_or_defaults():
    assert pod_server_ports(_pod(Container("c", args=("netexec", "--http-port=9376", "--udp-port=9377")))) == ((9376,), (9377,))
    assert pod_server_ports(_pod(Container("c", ports=(ContainerPort(80), ContainerPort(53, protocol="UDP"))))) == ((80,), (53,))
    assert pod_server_ports(_pod(Container("c"))) == ((8080,), (8081,))
    assert pod_server_ports(_pod(Container("c", args=("--udp-port=-1",), ports=(ContainerPort(8080),)))) == ((8080,), ())


def _free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def server():
    """A real server process on 127.0.0.1 (no namespace: no root needed)."""
    tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-I", "-S", netexec.__file__, "--hostname", "web-0",
                          "--http-port", str(tcp), "--udp-port", str(udp), "--ready-fd", str(w)], pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 100) == b"ok\n"
        yield tcp, udp
    finally:
        os.close(r)
        p.kill()
        p.wait()




def test_keep_alive_answers_several_requests_on_one_connection(server):
    tcp, _ = server
    s = socket.create_connection(("127.0.0.1", tcp), timeout=2)
    local = "%s:%d" % s.getsockname()
    s.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\nGET /clientip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    heads = [h.decode() for h in re.findall(rb"HTTP/1\.1 .*?\r\n\r\n", out, re.S)]
    date = r"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n"
    assert re.fullmatch(r"HTTP/1\.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        + date + r"\r\n", heads[0])
    assert re.fullmatch(r"HTTP/1\.1 200 OK\r\nConnection: close\r\nContent-Length: " + str(len(local))
                        + r"\r\nContent-Type: text/plain; charset=utf-8\r\n" + date + r"\r\n", heads[1])
    assert out == heads[0].encode() + b"web-0" + heads[1].encode() + local.encode()


def test_an_unknown_path_gets_the_time_as_go_prints_it(server):
    tcp, _ = server
    s = socket.create_connection(("127.0.0.1", tcp), timeout=2)
    s.sendall(b"GET /no/such/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert re.fullmatch(GO_NOW, body.decode()), body


def test_udp_commands(server):
    _, udp = server
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    u.connect(("127.0.0.1", udp))
    u.send(b"hostname")
    assert u.recv(100) == b"web-0"
    u.send(b"echo Hi There")
    assert u.recv(100) == b"hi there"
    u.send(b"clientip")
    assert u.recv(100) == ("%s:%d" % u.getsockname()).encode()
    u.close()


def test_a_port_in_use_is_reported_on_the_ready_pipe(server):
    tcp, _ = server
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-I", "-S", netexec.__file__, "--hostname", "x",
                          "--http-port", str(tcp), "--udp-port", str(_free_port(socket.SOCK_DGRAM)),
                          "--ready-fd", str(w)], pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 200) == b"error: [Errno 98] Address already in use\n"
        assert p.wait(5) == 1
    finally:
        os.close(r)
