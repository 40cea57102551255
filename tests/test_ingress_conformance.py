"""The ingress-controller-conformance scenarios, on the model and through real nginx.

Every row of tests/ingress_conformance/*.yaml is asked twice: of routing.py
(the simulation) and of a real nginx running the nginx.conf labkit renders,
with a named echo server behind every backend. Both must give the row's
answer, so they agree with each other on the whole table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import pytest
import yaml

from labkit.controllers.ingress.routing import (
    compile_ingresses, normalize_host, route_request,
)
from labkit.model.load import load_manifests

TABLES = Path(__file__).parent / "ingress_conformance"
FEATURES = ("path_rules", "host_rules", "default_backend", "lab_rules")


def load_table(feature: str) -> dict:
    return yaml.safe_load((TABLES / f"{feature}.yaml").read_text())


def split_url(url: str) -> tuple[Optional[str], str]:
    """'http://my-host/sub-path?q' -> ('my-host', '/sub-path?q'); no host -> None."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (parts.netloc or None), target


def rows() -> list:
    out = []
    for feature in FEATURES:
        for i, row in enumerate(load_table(feature)["scenarios"]):
            out.append(pytest.param(feature, row, id=f"{feature}[{i}]"))
    return out


ROWS = rows()


def table_for(feature: str):
    return compile_ingresses(load_manifests(load_table(feature)["manifest"], f"{feature}.yaml"))


def test_the_transcription_is_complete():
    """The counts of the features' scenarios (the Outline counts its Examples)."""
    counts = {f: len(load_table(f)["scenarios"]) for f in FEATURES}
    assert counts == {"path_rules": 16, "host_rules": 6, "default_backend": 6, "lab_rules": 24}


@pytest.mark.parametrize("feature,row", ROWS)
def test_model(feature, row):
    host, target = split_url(row["url"])
    got = route_request(table_for(feature), host, target)
    assert got.status == row["status"], got
    assert (str(got.backend) if got.backend else None) == row.get("backend"), got
    if "via" in row:
        assert got.via == row["via"]
    elif row["status"] == 200:
        assert got.via == "rule"


@pytest.fixture(scope="module")
def nginx_labs():
    """One nginx per feature, started on first use, all stopped at the end."""
    from ingress_nginx_harness import NginxLab

    labs: dict = {}

    def get(feature: str):
        if feature not in labs:
            labs[feature] = NginxLab(table_for(feature))
        return labs[feature]

    try:
        yield get
    finally:
        for lab in labs.values():
            lab.close()


@pytest.mark.requires_tool("nginx")
@pytest.mark.parametrize("feature,row", ROWS)
def test_real_nginx(nginx_labs, feature, row):
    lab = nginx_labs(feature)
    host, target = split_url(row["url"])
    reply = lab.request(row.get("method", "GET"), host, target)
    model = route_request(lab.table, host, target)
    assert reply.status == row["status"] == model.status, (reply, model)
    if row["status"] == 200:
        seen = reply.body
        assert seen["backend"] == row["backend"] == str(model.backend)
        assert seen["method"] == row.get("method", "GET")
        assert seen["path"] == target  # nginx passes the request's path on unchanged
        if host:
            assert seen["host"] == normalize_host(host)
            assert seen["x_forwarded_host"] == normalize_host(host)
        assert seen["x_forwarded_for"] == "127.0.0.1"
        assert seen["x_real_ip"] == "127.0.0.1"
    elif row["status"] == 301:
        assert reply.headers["location"].endswith(model.redirect_to)


SEGMENTS = ("api", "cart", "docs", "static", "staticfiles", "x", "foo", "foo", "FOO", "aaa", "aaa", "bbb",
            "bbb", "ccc", "healthz", "", ".", "..", "%63art", "fo%6F", "a%20b")
HOSTS = {
    "lab_rules": (None, "shop.example.com", "SHOP.example.com:80", "blog.example.com", "other.example.com",
                  "unknown.example.com", "a.b.example.com", "unknown.test"),
    "path_rules": (None, "exact-path-rules", "prefix-path-rules", "mixed-path-rules",
                   "trailing-slash-path-rules"),
}


def random_requests(seed: int, n: int, hosts: tuple) -> list:
    """Requests built from the tables' own words, with slashes, dots and escapes mixed in."""
    rng = __import__("random").Random(seed)
    out = []
    for _ in range(n):
        target = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.2:
            target += "/"
        if rng.random() < 0.2:
            target += "?q=/api"
        out.append((rng.choice(hosts), target))
    return out


@pytest.mark.requires_tool("nginx")
@pytest.mark.parametrize("feature", ["path_rules", "lab_rules"])
def test_model_and_nginx_agree_on_random_requests(nginx_labs, feature):
    """400 seeded requests per table: same status, same backend, model and real nginx."""
    lab = nginx_labs(feature)
    disagree = []
    for host, target in random_requests(seed=7, n=400, hosts=HOSTS[feature]):
        reply = lab.request("GET", host, target)
        model = route_request(lab.table, host, target)
        want = (model.status, str(model.backend) if model.backend else None)
        got = (reply.status, reply.body.get("backend"))
        if got != want:
            disagree.append((host, target, "nginx", got, "model", want))
    assert disagree == []
