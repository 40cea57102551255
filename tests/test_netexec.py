"""The pod server answers like agnhost netexec: /hostname, /clientip, /echo, UDP hostname/echo/clientip."""
import os
import socket
import subprocess
import sys

import pytest

from labkit.model.objects import Container, ContainerPort, ObjectMeta, Pod
from labkit.workloads import netexec
from labkit.workloads.netexec import answer_http, answer_udp, pod_server_ports, render_http_response


def test_http_answers():
    assert answer_http("/hostname", "web-0", "10.244.1.2:40000") == (200, "web-0")
    assert answer_http("/hostName", "web-0", "x") == (200, "web-0")
    assert answer_http("/clientip", "web-0", "10.244.1.2:40000") == (200, "10.244.1.2:40000")
    assert answer_http("/echo?msg=hello%20there", "w", "x") == (200, "hello there")
    assert answer_http("/echo?msg=teapot&code=418", "w", "x") == (418, "teapot")
    assert answer_http("/echo?msg=m&code=x", "w", "x") == (200, "argument 'code' must be an integer or empty, got 'x'\n")
    assert answer_http("/healthz", "w", "x") == (200, "")
    assert answer_http("/", "w", "x", now="2024-01-01") == (200, "NOW: 2024-01-01")
    assert answer_http("/nope", "w", "x") == (404, "404 page not found\n")


def test_udp_answers_are_agnhosts_lower_cased():
    assert answer_udp("hostname\n", "web-0", "p") == "web-0"
    assert answer_udp("ECHO Hello", "web-0", "p") == "hello"
    assert answer_udp("clientip", "web-0", "10.0.0.1:5") == "10.0.0.1:5"
    assert answer_udp("what", "web-0", "p") is None


def test_response_text():
    assert render_http_response(200, "web-0", True) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
        b"Connection: keep-alive\r\n\r\nweb-0")


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
    body_len = len(local)
    assert out == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
        b"Connection: keep-alive\r\n\r\nweb-0"
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
        + str(body_len).encode() + b"\r\nConnection: close\r\n\r\n" + local.encode())


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
