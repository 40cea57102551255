"""`labkit ingress route` and `labkit ingress nginx-conf` (main_ingress)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labkit.cli.ingress_cmd import main_ingress
from labkit.errors import LabkitError, ManifestError

TABLES = Path(__file__).parent / "ingress_conformance"


@pytest.fixture
def manifests(tmp_path):
    """The conformance manifests as files, the way a learner has them."""
    out = {}
    for name in ("path_rules", "host_rules", "default_backend", "lab_rules"):
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_load((TABLES / f"{name}.yaml").read_text())["manifest"])
        out[name] = str(f)
    return out


def run_json(capsys, *argv) -> dict:
    assert main_ingress(["route", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_answers(capsys, manifests):
    hr, db, pr = manifests["host_rules"], manifests["default_backend"], manifests["path_rules"]
    assert run_json(capsys, "-f", hr, "--host", "foo.bar.com", "--path", "/") == \
        {"backend": "foo-bar-com:http", "via": "rule", "status": 200}
    assert run_json(capsys, "-f", hr, "--host", "bar.foo.com", "--path", "/x") == \
        {"backend": "wildcard-foo-com:8080", "via": "rule", "status": 200}
    assert run_json(capsys, "-f", hr, "--host", "baz.bar.foo.com", "--path", "/") == \
        {"backend": None, "via": "none", "status": 404}
    assert run_json(capsys, "-f", db, "--path", "/resource") == \
        {"backend": "echo-service:8080", "via": "defaultBackend", "status": 200}
    assert run_json(capsys, "-f", pr, "--host", "mixed-path-rules", "--path", "/foo?x=1") == \
        {"backend": "foo-exact:8080", "via": "rule", "status": 200}


def test_several_files_merge_in_order(capsys, manifests):
    # default_backend's Ingress comes first: its defaultBackend catches unknown hosts
    both = ["-f", manifests["default_backend"], "-f", manifests["host_rules"]]
    assert run_json(capsys, *both, "--host", "unknown.test", "--path", "/") == \
        {"backend": "echo-service:8080", "via": "defaultBackend", "status": 200}
    assert run_json(capsys, *both, "--host", "foo.bar.com", "--path", "/") == \
        {"backend": "foo-bar-com:http", "via": "rule", "status": 200}


def test_human_answer(capsys, manifests):
    assert main_ingress(["route", "-f", manifests["lab_rules"], "--host", "shop.example.com",
                         "--path", "/cart/items?x=1"]) == 0
    assert capsys.readouterr().out == (
        "request  http://shop.example.com/cart/items?x=1\n"
        "server   shop.example.com\n"
        "location /cart/   (path as nginx matches it: /cart/items)\n"
        "backend  cart:http   (namespace default, via rule)\n"
        "from     Ingress default/shop, spec.rules[0].http.paths[0]\n")


def test_human_answer_for_a_miss(capsys, manifests):
    assert main_ingress(["route", "-f", manifests["path_rules"], "--path", "/foo"]) == 0
    assert capsys.readouterr().out == (
        "request  http:///foo\n"
        "server   _   (catch-all: no rule names host (no host))\n"
        "location /   (path as nginx matches it: /foo)\n"
        "answer   404 Not Found   (no rule matched and there is no default backend)\n")


def test_errors_name_the_fix(tmp_path, manifests):
    with pytest.raises(LabkitError) as e:
        main_ingress(["route", "-f", manifests["path_rules"], "--path", "foo"])
    assert str(e.value) == "--path 'foo' must begin with / (fix: --path /foo)"
    svc = tmp_path / "svc.yaml"
    svc.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
    with pytest.raises(LabkitError) as e:
        main_ingress(["route", "-f", str(svc), "--path", "/"])
    assert str(e.value) == f"no Ingress in {svc} (fix: pass the manifest that holds your kind: Ingress objects)"
    with pytest.raises(LabkitError) as e:
        main_ingress(["route", "-f", str(tmp_path / "nope.yaml"), "--path", "/"])
    assert str(e.value) == f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory (fix: check the file name)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: x}\n"
                   "spec: {rules: [{http: {paths: [{path: foo, pathType: Prefix, "
                   "backend: {service: {name: web, port: {number: 80}}}}]}}]}\n")
    with pytest.raises(ManifestError) as e:
        main_ingress(["route", "-f", str(bad), "--path", "/"])
    assert e.value.problems[0].field == "spec.rules[0].http.paths[0].path"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main_ingress(["route", "--path", "/"])
    assert e.value.code == 2
    assert "-f/--file" in capsys.readouterr().err


def test_nginx_conf_command(capsys):
    assert main_ingress(["nginx-conf", "-f", str(TABLES / "nginx_golden_shop.yaml")]) == 0
    assert capsys.readouterr().out == (Path(__file__).parent / "golden" / "ingress_nginx_shop.conf").read_text()


# --- a running lab: labkit ingress enable, labkit http --host ------------------------------

WEB_AND_INGRESS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: agnhost, image: agnhost, args: [netexec, --http-port=8080]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: default}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""


def test_enable_then_http_with_a_host_on_a_sim_lab(tmp_path, monkeypatch, capsys):
    from labkit.cli import lab_cmds

    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    f = tmp_path / "shop.yaml"
    f.write_text(WEB_AND_INGRESS)
    assert lab_cmds.main_lab("up", ["--backend", "sim", "--name", "ic", "-f", str(f)]) == 0
    try:
        capsys.readouterr()
        assert main_ingress(["enable", "--name", "ic"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == ("the controller answers at 198.51.100.242:80 (e.g. labkit http --name ic --from "
                           "outside --to 198.51.100.242:80 --host HOST --path /PATH)")
        argv = ["--name", "ic", "--from", "outside", "--to", "198.51.100.242:80", "--path", "/hostname"]
        assert lab_cmds.main_lab("http", argv + ["--host", "shop.example.com", "-H", "X-Lab: yes",
                                                 "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert (r["status"], r["answered_by"].split("-")[0], r["body"].split("-")[0]) == (200, "default/web", "web")
        assert dict(r["headers"])["X-Lab"] == "yes" and dict(r["headers"])["X-Real-IP"] == "192.0.2.10"
        assert lab_cmds.main_lab("http", argv) == 0  # no host: the catch-all server's 404
        assert "HTTP 404: <html>" in capsys.readouterr().out
        with pytest.raises(LabkitError, match="must be NAME: VALUE"):
            lab_cmds.main_lab("http", argv + ["-H", "nocolon"])
        assert main_ingress(["conf", "--name", "ic"]) == 0
        assert "server_name shop.example.com;" in capsys.readouterr().out
    finally:
        lab_cmds.main_lab("down", ["--name", "ic"])
