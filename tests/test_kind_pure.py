"""The kind backend's pure parts: argv, parsers, progress, preflight sentences, the probe script's helpers."""
from __future__ import annotations

import json

import pytest
import yaml

from kind_support import FakeClock, RECORDINGS
from labkit.backends.kind import commands as cmd
from labkit.backends.kind.lab import render_external_notes
from labkit.backends.kind.preflight import docker_engine_sentence, missing_tool_sentences
from labkit.backends.kind.probe_image import labkit_probe
from labkit.backends.kind.probe_pods import probe_image_tag, render_probe_daemonset
from labkit.backends.kind.runner import Call, FakeCommandRunner, KindCommandError
from labkit.backends.kind.wait import Progress, pod_progress, render_progress, wait_ready
from labkit.errors import LabkitError
from labkit.lab import choose_backend, render_choice
from labkit.model.load import load_manifests


def test_kubectl_always_names_the_labs_context():
    assert cmd.kubectl_apply("kind") == ["kubectl", "--context", "kind-kind", "apply", "-f", "-", "-o", "name"]
    assert cmd.kubectl_scale("demo", "default", "web", 2) == [
        "kubectl", "--context", "kind-demo", "--namespace", "default", "scale", "deployment/web", "--replicas=2"]
    assert cmd.kind_create_cluster("kind") == ["kind", "create", "cluster", "--name", "kind", "--config", "-"]
    assert cmd.docker_exec("kind-worker", "conntrack", "-L") == ["docker", "exec", "kind-worker", "conntrack", "-L"]


def test_kind_get_clusters_output():
    assert cmd.parse_kind_clusters("kind\ndemo\n") == ["kind", "demo"]
    assert cmd.parse_kind_clusters("") == []
    assert cmd.parse_names("deployment.apps/web\nservice/web\n") == ["deployment.apps/web", "service/web"]


def test_pods_from_kubectl_json_go_through_labkits_loader():
    text = (RECORDINGS / "probe_syn" / "01-get-pods.stdout").read_text()
    pods = cmd.parse_objects(text, "kubectl get pods")
    assert [f"{p.meta.namespace}/{p.meta.name}" for p in cmd.lab_pods(pods)] == [
        "default/client", "default/web-5d9c7b8f6d-2xkqp", "default/web-5d9c7b8f6d-7fjlm",
        "default/web-5d9c7b8f6d-q8vzn"]
    assert cmd.probe_pods_by_node(pods) == {"kind-control-plane": "labkit-probe-9tq4s",
                                            "kind-worker": "labkit-probe-b7kxm", "kind-worker2": "labkit-probe-wr5fz"}
    with pytest.raises(LabkitError, match="kubectl did not print JSON"):
        cmd.parse_objects("error: You must be logged in to the server (Unauthorized)", "kubectl get pods")


def test_node_addresses():
    nodes = cmd.parse_objects((RECORDINGS / "node_probe" / "02-get-nodes.stdout").read_text(), "nodes")
    assert cmd.node_internal_ips(nodes) == {"kind-control-plane": "172.18.0.2", "kind-worker": "172.18.0.3",
                                            "kind-worker2": "172.18.0.4"}


def test_progress_of_pods_and_deployments():
    p = pod_progress((RECORDINGS / "up" / "06-poll-1.stdout").read_text())
    assert p == Progress(10, 13, ("default/web-5d9c7b8f6d-7fjlm (ContainerCreating)",
                                  "default/web-5d9c7b8f6d-q8vzn (ContainerCreating)",
                                  "labkit/labkit-probe-wr5fz (ContainerCreating)", "deployment default/web 1/3"))
    assert render_progress(p, 61) == (
        "labkit: 10/13 pods ready after 61 s; waiting for default/web-5d9c7b8f6d-7fjlm (ContainerCreating), "
        "default/web-5d9c7b8f6d-q8vzn (ContainerCreating), labkit/labkit-probe-wr5fz (ContainerCreating), "
        "deployment default/web 1/3")


def test_the_deadline_names_what_is_still_waiting():
    clock = FakeClock()
    shown = []
    stuck = Progress(1, 2, ("default/web-x (ImagePullBackOff)",))
    with pytest.raises(LabkitError) as e:
        wait_ready(lambda: stuck, 10, clock, clock.sleep, shown.append, "kind-kind", interval=4)
    assert str(e.value) == (
        "the cluster is not ready after 10 s: default/web-x (ImagePullBackOff) (fix: `kubectl --context kind-kind "
        "get pods -A` and `kubectl --context kind-kind describe pod NAME` say why; images may still be downloading: "
        "try again with a longer timeout)")
    assert clock.slept == [4, 4, 2]
    assert shown == ["labkit: 1/2 pods ready after 0 s; waiting for default/web-x (ImagePullBackOff)"]


def test_preflight_sentences():
    assert missing_tool_sentences(lambda t: None if t != "docker" else "/usr/bin/docker") == [
        "kind is not installed: install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        "kubectl is not installed: install kubectl: https://kubernetes.io/docs/tasks/tools/"]
    assert docker_engine_sentence(0, "") == ""
    assert docker_engine_sentence(1, "permission denied while trying to connect to the Docker daemon socket at "
                                     "unix:///var/run/docker.sock").endswith(
        "add yourself to the docker group (`sudo usermod -aG docker $USER`), then log out and in again")


def test_kind_is_chosen_only_when_asked_for():
    assert choose_backend("kind", False, ["ip is not installed"]) == ("kind", "asked for")
    assert choose_backend("auto", False, ["ip is not installed"])[0] == "sim"
    assert render_choice("kind", "asked for") == ("labkit: running on the kind backend (a real Kubernetes cluster) "
                                                  "(asked for)")


def test_external_notes_for_load_balancers_and_ingress():
    objs = load_manifests("""\
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
""", "t")
    svc = [o for o in objs if o.kind == "Service"]
    ing = [o for o in objs if o.kind == "Ingress"]
    assert render_external_notes(svc, [], True) == [
        "Service default/lb is type LoadBalancer and has no external address yet: is cloud-provider-kind running? "
        "(fix: run `cloud-provider-kind` in another terminal)"]
    assert render_external_notes([], ing, False) == [
        "Ingress default/web needs an ingress controller, which kind does not install (fix: run cloud-provider-kind "
        "v0.7 or later, or install ingress-nginx: https://kind.sigs.k8s.io/docs/user/ingress/)"]


def test_the_probe_daemonset_and_image_tag():
    docs = list(yaml.safe_load_all(render_probe_daemonset("labkit-probe:abc")))
    assert [d["kind"] for d in docs] == ["Namespace", "DaemonSet"]
    spec = docs[1]["spec"]["template"]["spec"]
    assert (spec["hostNetwork"], spec["hostPID"], spec["containers"][0]["securityContext"]) == (
        True, True, {"privileged": True})
    assert probe_image_tag({"a": b"1"}) == probe_image_tag({"a": b"1"}) != probe_image_tag({"a": b"2"})
    assert probe_image_tag({"a": b"1"}).startswith("labkit-probe:")


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.244.1.0/24 2 0 2
        |-- 10.244.1.0
           /24 link UNICAST
        |-- 10.244.1.2
           /32 host LOCAL
        |-- 10.244.1.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 127.0.0.1
        /32 host LOCAL
"""


def test_the_probe_finds_a_pods_namespace_by_its_address(tmp_path):
    assert labkit_probe.local_addresses(FIB_TRIE) == {"10.244.1.2", "127.0.0.1"}
    for pid, text in (("1", FIB_TRIE.replace("10.244.1.2", "172.18.0.3")), ("4242", FIB_TRIE)):
        (tmp_path / pid / "net").mkdir(parents=True)
        (tmp_path / pid / "net" / "fib_trie").write_text(text)
    (tmp_path / "self").mkdir()
    assert labkit_probe.find_netns("10.244.1.2", str(tmp_path)) == f"{tmp_path}/4242/ns/net"
    assert labkit_probe.find_netns("10.244.9.9", str(tmp_path)) == ""


def test_the_probe_prints_the_fields_the_backend_reads(monkeypatch, capsys):
    monkeypatch.setattr(labkit_probe, "http", lambda dst, port, path, timeout: {"ok": False, "error": "refused"})
    assert labkit_probe.main(["http", "--dst", "10.96.0.80", "--dport", "80"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": False, "error": "refused"}


def test_the_fake_runner_fails_on_any_surprise():
    r = FakeCommandRunner([Call(("kind", "get", "clusters"), stdout="kind\n"), Call(("x",), returncode=3,
                                                                                    stderr="boom")])
    with pytest.raises(AssertionError, match="unexpected command"):
        r.run(["kind", "get", "nodes"])
    r = FakeCommandRunner([Call(("kubectl",), stdin="a\n")])
    with pytest.raises(AssertionError, match="stdin differs"):
        r.run(["kubectl"], stdin="b\n")
    r = FakeCommandRunner([Call(("x",), returncode=3, stderr="boom\n")])
    with pytest.raises(KindCommandError) as e:
        r.run(["x"])
    assert str(e.value) == "command failed (3): x\n    boom"
    r = FakeCommandRunner([Call(("x",))])
    with pytest.raises(AssertionError, match="1 recorded command"):
        r.assert_done()


def test_labkit_up_backend_kind_goes_to_the_kind_hook(monkeypatch, tmp_path):
    import labkit.cli.kind_cmds as kind_cmds
    from labkit.cli import main as cli

    (tmp_path / "web.yaml").write_text("a: 1\n")
    got = []
    monkeypatch.setattr(kind_cmds, "up_kind", lambda *a: got.append(a) or 0)
    assert cli.main(["up", "--backend", "kind", "-f", str(tmp_path / "web.yaml"), "--name", "demo"]) == 0
    assert got == [("demo", "", "a: 1\n", str(tmp_path / "web.yaml"), 0)]


def test_labkit_down_deletes_a_kind_labs_cluster_first(monkeypatch, capsys):
    import labkit.cli.kind_cmds as kind_cmds
    from labkit.cli import main as cli

    monkeypatch.setattr(kind_cmds, "down_kind", lambda name: f"lab {name}: deleted kind cluster 'kind'")
    assert cli.main(["down", "--name", "demo"]) == 0
    assert capsys.readouterr().out == "lab demo: deleted kind cluster 'kind'\n"
