"""The kind backend through the command-runner seam: every command it runs, replayed from recordings.

Each test replays one directory of tests/kind_recordings/ (see
make_recordings.py there): the fake runner fails on any command that was not
recorded, in that order, with that stdin, and `assert_done` fails on a
recorded command that never ran.
"""
from __future__ import annotations

import json

import pytest

from kind_support import PROBE_IMAGE, RECORDINGS, attached_lab, new_lab
from labkit.backends.base import ANSWERED, UNREACHABLE, ConntrackEntry, ProbeResult, TraceStep, Tuple4
from labkit.backends.base import LabNotFound
from labkit.backends.kind.lab import KindLab, KindState
from labkit.backends.kind.runner import KindCommandError
from labkit.errors import LabkitError, ManifestError, MissingToolError

MANIFESTS = (RECORDINGS / "manifests.yaml").read_text()
A, B = 59269, 59684  # the first two client ports of Random("0:probes"), as recorded


def test_the_recorded_ports_are_the_labs_first_two():
    import random

    rng = random.Random("0:probes")
    assert [rng.randrange(32768, 61000) for _ in range(2)] == [A, B]


# --- up and down ----------------------------------------------------------------------


def test_up_runs_every_recorded_command_in_order(tmp_path):
    shown: list[str] = []
    lab = new_lab("up", tmp_path, shown)
    lab.up(MANIFESTS, "manifests.yaml")
    lab.runner.assert_done()
    assert shown == [
        "labkit: creating kind cluster 'kind' (kind create cluster; a few minutes the first time)",
        f"labkit: building the probe image {PROBE_IMAGE} (once; pulls python:3.12-slim and scapy)",
        "labkit: 10/13 pods ready after 0 s; waiting for default/web-5d9c7b8f6d-7fjlm (ContainerCreating), "
        "default/web-5d9c7b8f6d-q8vzn (ContainerCreating), labkit/labkit-probe-wr5fz (ContainerCreating), "
        "deployment default/web 1/3",
        "labkit: 12/13 pods ready after 2 s; waiting for default/web-5d9c7b8f6d-q8vzn (ContainerCreating), "
        "deployment default/web 2/3",
        "labkit: 13/13 pods ready after 4 s",
    ]
    state = KindState.load(str(tmp_path), "lab")
    assert (state.cluster, state.phase, state.probe_image) == ("kind", "up", PROBE_IMAGE)


def test_up_refuses_a_cluster_it_did_not_make(tmp_path):
    lab = new_lab("up_cluster_exists", tmp_path, [])
    with pytest.raises(LabkitError) as e:
        lab.up()
    assert str(e.value) == (
        "a kind cluster named 'kind' already exists and labkit did not make it, so labkit leaves it alone "
        "(fix: `kind delete cluster --name kind` if you no longer need it, or give the kind config another `name:`)")
    lab.runner.assert_done()
    assert KindState.load(str(tmp_path), "lab") is None


def test_up_says_when_the_docker_engine_does_not_answer(tmp_path):
    lab = new_lab("up_no_engine", tmp_path, [])
    with pytest.raises(MissingToolError) as e:
        lab.up()
    assert str(e.value) == (
        "the kind backend cannot run here:\n"
        "  - docker is installed but its engine does not answer (docker info: Cannot connect to the Docker daemon "
        "at unix:///var/run/docker.sock. Is the docker daemon running?): start Docker (Docker Desktop, or "
        "`sudo systemctl start docker`) and try again\n"
        "(the course runs without Docker too: backend='sim' or 'netns')")


def test_a_failed_create_deletes_the_cluster_and_the_state(tmp_path):
    lab = new_lab("up_create_fails", tmp_path, [])
    with pytest.raises(KindCommandError) as e:
        lab.up()
    assert "command failed (1): kind create cluster --name kind --config -" in str(e.value)
    assert "ERROR: failed to create cluster" in str(e.value)
    lab.runner.assert_done()
    assert KindState.load(str(tmp_path), "lab") is None


def test_bad_manifests_are_reported_before_any_command(tmp_path):
    lab = new_lab("up_no_engine", tmp_path, [])
    with pytest.raises(ManifestError):
        lab.up("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 0}]}\n")
    assert lab.runner.seen == []


def test_an_unsupported_kube_proxy_mode_is_refused_first(tmp_path):
    config = ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {kubeProxyMode: ipvs}\n")
    lab = KindLab("lab", config, 0, runner=None, state_dir=str(tmp_path))
    with pytest.raises(LabkitError, match="networking.kubeProxyMode is 'ipvs'; the course's labs use iptables"):
        lab.up()


def test_down_deletes_exactly_the_labs_cluster_and_is_safe_twice(tmp_path):
    lab = attached_lab("down", tmp_path)
    lab.down()
    lab.runner.assert_done()
    assert KindState.load(str(tmp_path), "lab") is None
    lab.down()  # nothing recorded: a second call runs nothing
    assert len(lab.runner.seen) == 1


def test_attach_needs_a_lab_that_is_up(tmp_path):
    with pytest.raises(LabNotFound, match="no kind lab named 'lab' is up"):
        KindLab.attach("lab", state_dir=str(tmp_path))


# --- probes -----------------------------------------------------------------------------


def test_syn_probes_from_a_pod_name_the_pods_that_answered(tmp_path):
    lab = attached_lab("probe_syn", tmp_path)
    results = lab.probe("default/client", "10.96.0.80:80", count=2)
    lab.runner.assert_done()
    assert results == [
        ProbeResult("default/client", "10.96.0.80:80", "tcp", ANSWERED, answered_by="default/web-5d9c7b8f6d-q8vzn",
                    reply_from="10.96.0.80:80", client_seen_as=f"10.244.1.2:{A}", client_address=f"10.244.1.2:{A}",
                    kind="syn", detail="TCP flags SA"),
        ProbeResult("default/client", "10.96.0.80:80", "tcp", ANSWERED, answered_by="default/web-5d9c7b8f6d-2xkqp",
                    reply_from="10.96.0.80:80", client_seen_as=f"10.244.1.2:{B}", client_address=f"10.244.1.2:{B}",
                    kind="syn", detail="TCP flags SA"),
    ]


def test_a_service_without_endpoints_is_unreachable_and_conntrack_is_not_read(tmp_path):
    lab = attached_lab("probe_no_endpoints", tmp_path)
    [r] = lab.probe("default/client", "10.96.0.99:80")
    lab.runner.assert_done()
    assert (r.verdict, r.reply_from, r.answered_by, r.detail) == (
        UNREACHABLE, "10.244.1.1", "", "ICMP destination unreachable (code 3)")


def test_http_names_the_pod_by_its_hostname(tmp_path):
    lab = attached_lab("http", tmp_path)
    r = lab.http("default/client", "10.96.0.80:80")
    lab.runner.assert_done()
    assert r == ProbeResult("default/client", "10.96.0.80:80", "tcp", ANSWERED,
                            answered_by="default/web-5d9c7b8f6d-7fjlm", reply_from="10.96.0.80:80",
                            client_seen_as="10.244.1.2:41236", client_address="10.244.1.2:41236", kind="http",
                            status=200, body="web-5d9c7b8f6d-7fjlm")


def test_udp_runs_in_the_probe_pod_of_the_senders_node(tmp_path):
    lab = attached_lab("udp", tmp_path)
    [r] = lab.probe("default/web-5d9c7b8f6d-7fjlm", "10.244.1.2:8081", protocol="udp")
    lab.runner.assert_done()
    assert (r.verdict, r.answered_by, r.body, r.reply_from, r.client_seen_as) == (
        ANSWERED, "default/client", "client", "10.244.1.2:8081", f"10.244.2.2:{A}")


def test_a_node_sends_from_its_own_address(tmp_path):
    lab = attached_lab("node_probe", tmp_path)
    [r] = lab.probe("control-plane", "10.96.0.80:80")
    lab.runner.assert_done()
    assert (r.source, r.answered_by, r.client_address, r.client_seen_as) == (
        "kind-control-plane", "default/web-5d9c7b8f6d-2xkqp", f"172.18.0.2:{A}", "172.18.0.2:49462")


def test_outside_is_a_container_on_kinds_docker_network(tmp_path):
    lab = attached_lab("outside", tmp_path)
    [r] = lab.probe("outside", "172.18.0.2:6443")
    lab.runner.assert_done()
    assert (r.verdict, r.answered_by, r.client_address, r.client_seen_as) == (
        ANSWERED, "kind-control-plane", f"172.18.0.5:{A}", f"172.18.0.5:{A}")


def test_sources_a_kind_cluster_does_not_have_are_explained(tmp_path):
    lab = attached_lab("probe_syn", tmp_path)
    with pytest.raises(LabkitError, match="a kind cluster has no 'internet' host"):
        lab.probe("internet", "10.96.0.80:80")
    with pytest.raises(LabkitError, match=r"no pod default/nope in lab lab \(pods: default/client, default/web-"):
        lab.probe("default/nope", "10.96.0.80:80")


# --- rules, conntrack, traces ---------------------------------------------------------------


def test_rules_and_conntrack_come_from_the_node_container(tmp_path):
    lab = attached_lab("rules_conntrack", tmp_path)
    nat = lab.rules("worker")
    assert nat.startswith("# Generated by iptables-save v1.8.9 (nf_tables)") and "*nat\n" in nat
    assert lab.conntrack("kind-worker2") == []
    with pytest.raises(KindCommandError, match="you must be root or get CAP_NET_ADMIN capability"):
        lab.conntrack("kind-worker2")
    lab.runner.assert_done()


def test_conntrack_entries_are_parsed_by_the_kernel_labs_parser(tmp_path):
    lab = attached_lab("probe_syn", tmp_path)
    lab.runner.calls = [c for c in lab.runner.calls if c.argv[:2] == ("docker", "exec")]
    entries = lab.conntrack("kind-worker")  # conntrack -L captured in the kernel lab (captured/README.md)
    assert entries == [
        ConntrackEntry("tcp", Tuple4("10.244.1.2", "10.96.0.80", B, 80), Tuple4("10.244.1.3", "10.244.1.2", 80, B),
                       "CLOSE", 9),
        ConntrackEntry("tcp", Tuple4("10.244.1.2", "10.96.0.80", A, 80), Tuple4("10.244.2.3", "10.244.1.2", 80, A),
                       "CLOSE", 9)]
    assert [(e.dnat, e.snat) for e in entries] == [(True, False), (True, False)]


def test_a_trace_is_read_by_xtables_monitor_in_the_node(tmp_path):
    lab = attached_lab("trace", tmp_path)
    t = lab.trace("default/client", "10.96.0.80:80")
    lab.runner.assert_done()
    assert t.verdict == ANSWERED
    # xtables-monitor's own lines, captured in the kernel lab (captured/README.md)
    assert [(s.table, s.chain, s.rule_number, s.verdict) for s in t.steps] == [
        ("raw", "PREROUTING", 0, "ACCEPT"),
        ("mangle", "PREROUTING", 0, "ACCEPT"),
        ("nat", "PREROUTING", 1, "KUBE-SERVICES"),
        ("nat", "KUBE-SERVICES", 1, "KUBE-SVC-CDGGSHYLG3RE2FKL"),
        ("nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", 4, "KUBE-SEP-7MXUJOUG3G2M65AE"),
        ("nat", "KUBE-SEP-7MXUJOUG3G2M65AE", 2, "DNAT"),
        ("mangle", "FORWARD", 0, "ACCEPT"),
        ("filter", "FORWARD", 1, "KUBE-PROXY-FIREWALL"),
        ("filter", "FORWARD", 2, "KUBE-FORWARD"),
        ("filter", "FORWARD", 3, "KUBE-SERVICES"),
        ("filter", "FORWARD", 4, "KUBE-EXTERNAL-SERVICES"),
        ("filter", "FORWARD", 0, "ACCEPT"),
        ("mangle", "POSTROUTING", 0, "ACCEPT"),
        ("nat", "POSTROUTING", 1, "KUBE-POSTROUTING"),
        ("nat", "KUBE-POSTROUTING", 1, "RETURN"),
        ("nat", "POSTROUTING", 2, "KIND-MASQ-AGENT"),
        ("nat", "KIND-MASQ-AGENT", 1, "RETURN"),
        ("nat", "POSTROUTING", 0, "ACCEPT"),
    ]
    assert t.steps[5] == TraceStep(
        "nat", "KUBE-SEP-7MXUJOUG3G2M65AE", 2,
        '-A KUBE-SEP-7MXUJOUG3G2M65AE -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT '
        "--to-destination 10.244.2.3:80", "DNAT", f"10.244.1.2:{A} > 10.96.0.80:80 SYN")


# --- changes --------------------------------------------------------------------------------


def test_apply_scale_delete_wait_and_explain_load_balancers(tmp_path):
    shown: list[str] = []
    lab = attached_lab("changes", tmp_path, shown)
    more = (RECORDINGS / "changes" / "more.yaml").read_text()
    assert lab.apply(more, "more.yaml") == ["Service default/web-lb"]
    lab.scale("deployment/web", 1)
    assert lab.delete(more, "more.yaml") == ["Service default/web-lb"]
    lab.runner.assert_done()
    assert shown == [
        "labkit: 13/13 pods ready after 0 s",
        "labkit: Service default/web-lb is type LoadBalancer but nothing on a kind cluster gives it an external "
        "address; it still works as a NodePort Service (fix: install and run cloud-provider-kind: "
        "https://github.com/kubernetes-sigs/cloud-provider-kind)",
        "labkit: 11/13 pods ready after 0 s; waiting for default/web-5d9c7b8f6d-7fjlm (Terminating), "
        "default/web-5d9c7b8f6d-q8vzn (Terminating), deployment default/web 1/1",
        "labkit: 11/11 pods ready after 2 s",
        "labkit: 11/11 pods ready after 0 s",
    ]


def test_every_recording_is_replayed_by_some_test():
    used = {"up", "up_cluster_exists", "up_no_engine", "up_create_fails", "down", "probe_syn",
            "probe_no_endpoints", "http", "udp", "node_probe", "outside", "rules_conntrack", "trace", "changes",
            "compare", "compare_altered"}
    assert {p.name for p in RECORDINGS.iterdir() if (p / "calls.yaml").exists()} == used


def test_recorded_json_is_json():
    for f in RECORDINGS.glob("*/*.stdout"):
        text = f.read_text()
        if text.lstrip().startswith("{"):
            for line in ([text] if text.startswith("{\n") else text.splitlines()):
                json.loads(line)
