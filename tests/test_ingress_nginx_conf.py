"""nginx_conf.py: the rendered nginx.conf, its golden text, and what real nginx makes of it."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from labkit.controllers.ingress.nginx_conf import (
    NginxRuntime, endpoint_address, quote_path, render_nginx_conf, render_nginx_conf_from_table,
    resolve_endpoints, server_name, upstream_name,
)
from labkit.controllers.ingress.routing import Backend, compile_ingresses, route_request
from labkit.model.load import load_manifests
from labkit.model.objects import (
    HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressServiceBackend, ObjectMeta,
)

HERE = Path(__file__).parent
SHOP = HERE / "ingress_conformance" / "nginx_golden_shop.yaml"
GOLDEN = HERE / "golden" / "ingress_nginx_shop.conf"


def shop_objects():
    objs = load_manifests(SHOP.read_text(), str(SHOP))
    kinds = lambda k: [o for o in objs if o.kind == k]  # noqa: E731
    return kinds("Ingress"), kinds("Service"), kinds("EndpointSlice")


def test_resolve_endpoints_follows_port_names_and_readiness():
    ings, services, slices = shop_objects()
    table = compile_ingresses(ings)
    assert resolve_endpoints(table, services, slices) == {
        "default/api:http": ("10.244.1.5:8080", "10.244.2.7:8080"),  # 10.244.2.9 is not ready
        "default/fallback:80": ("10.244.3.3:8080",),
        "default/legacy:8080": (),  # no such Service
        "default/web:80": ("10.244.1.9:80",),
    }


def test_golden_nginx_conf():
    ings, services, slices = shop_objects()
    table = compile_ingresses(ings)
    text = render_nginx_conf_from_table(table, resolve_endpoints(table, services, slices),
                                        title="Ingress default/shop")
    assert text == GOLDEN.read_text()


def test_render_nginx_conf_names_its_ingresses():
    ings, _, _ = shop_objects()
    first = render_nginx_conf(ings, {}).splitlines()[0]
    assert first == "# nginx.conf of the lab's ingress controller, rendered by labkit from Ingress default/shop"
    assert render_nginx_conf([], {}).splitlines()[0].endswith("from no Ingress")


@pytest.mark.parametrize("path,want", [
    ("/api", "/api"), ("/a-b_c.d~e/", "/a-b_c.d~e/"), ("/a{b}", '"/a{b}"'), ("/a;b", '"/a;b"'),
    ('/q"x\\', '"/q\\"x\\\\"'),
])
def test_quote_path(path, want):
    assert quote_path(path) == want


def test_names():
    assert server_name("foo.bar.com") == "foo.bar.com"
    assert server_name("*.my-shop.example.com") == r"~^(?<subdomain>[\w-]+)\.my-shop\.example\.com$"
    assert upstream_name(Backend("team-a", "web", "http")) == "team-a-web-http"
    assert endpoint_address("10.244.1.5", 80) == "10.244.1.5:80"
    assert endpoint_address("fd00:10:244::5", 80) == "[fd00:10:244::5]:80"


def test_upstream_names_never_collide():
    rules = (IngressRule("h", (
        HTTPIngressPath("Prefix", IngressBackend(IngressServiceBackend("b-c", port_number=80)), "/1"),)),)
    a = Ingress(ObjectMeta("x", "a"), rules=rules)
    rules2 = (IngressRule("h2", (
        HTTPIngressPath("Prefix", IngressBackend(IngressServiceBackend("c", port_number=80)), "/2"),)),)
    b = Ingress(ObjectMeta("y", "a-b"), rules=rules2)
    conf = render_nginx_conf([a, b], {"a/b-c:80": ("10.0.0.1:80",), "a-b/c:80": ("10.0.0.2:80",)})
    assert "upstream a-b-c-80 {" in conf and "upstream a-b-c-80-2 {" in conf


@pytest.mark.requires_tool("nginx")
def test_nginx_accepts_the_golden_conf():
    prefix = tempfile.mkdtemp(prefix="lktest-nginx-")
    try:
        shutil.copy(GOLDEN, os.path.join(prefix, "nginx.conf"))
        os.mkdir(os.path.join(prefix, "tmp"))
        run = subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-t", "-p", prefix,
                              "-c", "nginx.conf", "-e", "stderr"], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        assert "syntax is ok" in run.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.requires_tool("nginx")
def test_real_nginx_quoted_paths_missing_endpoints_and_client_address():
    from ingress_nginx_harness import NginxLab

    def path(p, t, name):
        return HTTPIngressPath(t, IngressBackend(IngressServiceBackend(name, port_number=80)), p)

    ing = Ingress(ObjectMeta("odd", "default"), rules=(IngressRule("odd.test", (
        path("/a{b}", "Exact", "braces"), path("/semi;colon", "Prefix", "semi"),
        path("/gone", "Prefix", "gone"))),))
    table = compile_ingresses([ing])
    with NginxLab(table, missing=("default/gone:80",)) as lab:
        for target, status, backend in (("/a%7Bb%7D", 200, "braces:80"), ("/semi;colon/x", 200, "semi:80"),
                                        ("/gone/1", 503, None), ("/a{b}x", 404, None)):
            reply = lab.request("GET", "odd.test", target)
            model = route_request(table, "odd.test", target)
            assert reply.status == status, (target, reply)
            assert reply.body.get("backend") == backend
            if status == 503:  # the model routes; nginx finds no endpoint
                assert str(model.backend) == "gone:80"
            else:
                assert model.status == status and (str(model.backend) if model.backend else None) == backend
        seen = lab.request("GET", "odd.test", "/semi;colon").body
        assert (seen["x_forwarded_for"], seen["x_real_ip"], seen["host"]) == ("127.0.0.1", "127.0.0.1", "odd.test")


def test_runtime_settings_reach_the_file():
    conf = render_nginx_conf([], {}, NginxRuntime(listen="127.0.0.1:8081", pid="/run/x.pid", temp_dir="/var/t"))
    assert "        listen 127.0.0.1:8081 default_server;" in conf.splitlines()
    assert "pid /run/x.pid;" in conf.splitlines()
    assert "    proxy_temp_path /var/t/proxy;" in conf.splitlines()
