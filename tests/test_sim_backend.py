"""The simulation backend on the course's default lab: exact answers under seed 0.

The lab: kind's default shape (a control plane, two workers), the course's
web Deployment (tests/manifests/web.yaml: 3 pods behind ClusterIP
10.96.0.80) and a client pod on kind-worker. Every value below is what seed
0 gives; the same seed must give it again, in any process.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labkit.backends.base import (
    ANSWERED,
    NO_REPLY,
    REFUSED,
    UNREACHABLE,
    ConntrackEntry,
    LabNotFound,
    ProbeResult,
    TraceStep,
    Tuple4,
)
from labkit.backends.sim.lab import SimLab
from labkit.errors import LabkitError

MANIFESTS = Path(__file__).parent / "manifests"
WEB = (MANIFESTS / "web.yaml").read_text()
CLIENT = """\
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec:
  nodeName: kind-worker
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec"]
"""
EMPTY = """\
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.99
  selector: {app: nothing}
  ports: [{port: 80}]
"""
SERVICE_ONLY = WEB.split("---\n", 1)[1]

CLUSTER_IP = "10.96.0.80:80"
W1 = "default/web-7d785f9f55-6x2xw"  # kind-worker2, 10.244.2.2
W2 = "default/web-7d785f9f55-hf2lq"  # kind-worker, 10.244.1.3 (the client's node)
W3 = "default/web-7d785f9f55-9kkt5"  # kind-worker2, 10.244.2.3


@pytest.fixture
def lab():
    lab = SimLab("sim")
    lab.up(WEB + "---\n" + CLIENT, "web.yaml")
    yield lab
    lab.down()


def test_the_default_lab_places_pods_like_the_kernel_lab(lab):
    assert [(p.meta.name, p.node_name, p.pod_ip) for p in lab.pods()] == [
        ("client", "kind-worker", "10.244.1.2"),
        ("web-7d785f9f55-6x2xw", "kind-worker2", "10.244.2.2"),
        ("web-7d785f9f55-hf2lq", "kind-worker", "10.244.1.3"),
        ("web-7d785f9f55-9kkt5", "kind-worker2", "10.244.2.3"),
    ]
    assert [(s.meta.name, s.cluster_ip) for s in lab.services()] == [("web", "10.96.0.80")]
    assert [n.name for n in lab.plan.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]


def test_the_plan_becomes_the_same_namespaces_links_and_routes(lab):
    assert sorted(lab.dataplane.namespaces) == sorted(lab.plan.netns_names())
    assert lab.dataplane.ns("lksim-worker").render_routes() == (
        "172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.3\n"
        "10.244.1.1 dev lksim-0102 proto kernel scope link src 10.244.1.1\n"
        "10.244.1.1 dev lksim-0103 proto kernel scope link src 10.244.1.1\n"
        "default via 172.18.0.1 dev eth0\n"
        "10.244.0.0/24 via 172.18.0.2 dev eth0\n"
        "10.244.2.0/24 via 172.18.0.4 dev eth0\n"
        "10.244.1.2 dev lksim-0102\n"
        "10.244.1.3 dev lksim-0103\n"
    )
    assert lab.dataplane.ns("lksim-pod-default.client").render_routes() == (
        "10.244.1.2 dev eth0 proto kernel scope link src 10.244.1.2\n"
        "10.244.1.1 dev eth0 src 10.244.1.2\n"
        "10.244.1.0/24 via 10.244.1.1 dev eth0 src 10.244.1.2 onlink\n"
        "default via 10.244.1.1 dev eth0 onlink\n"
    )
    assert lab.dataplane.ns("lksim-worker").forwarding and not lab.dataplane.ns("lksim-pod-default.client").forwarding
    assert lab.dataplane.ns(f"lksim-pod-{W2.replace('/', '.')}").listeners == {("tcp", 80)}
    assert lab.dataplane.ns("lksim-pod-default.client").listeners == {("tcp", 8080), ("udp", 8081)}


def test_pod_to_cluster_ip_answers_with_one_of_the_three_pods(lab):
    answers = [r.answered_by for r in lab.probe("default/client", CLUSTER_IP, count=6)]
    assert answers == [W3, W2, W3, W2, W3, W1]
    assert lab.reachable_pods("default/client", CLUSTER_IP) == sorted([W1, W2, W3])


def test_a_syn_probe_result_and_its_conntrack_entry(lab):
    [r] = lab.probe("default/client", CLUSTER_IP)
    assert r == ProbeResult("default/client", CLUSTER_IP, "tcp", ANSWERED, answered_by=W3,
                            reply_from="10.96.0.80:80", client_seen_as="10.244.1.2:60438",
                            client_address="10.244.1.2:60438", kind="syn", detail="TCP flags SA")
    # the client's kernel answered the SYN-ACK with RST (scapy holds no socket): CLOSE
    assert lab.conntrack("kind-worker") == [ConntrackEntry(
        "tcp", Tuple4("10.244.1.2", "10.96.0.80", 60438, 80), Tuple4("10.244.2.3", "10.244.1.2", 80, 60438),
        state="CLOSE", timeout=10)]
    # the backend's node saw the translated packet: no NAT there
    assert lab.conntrack("worker2") == [ConntrackEntry(
        "tcp", Tuple4("10.244.1.2", "10.244.2.3", 60438, 80), Tuple4("10.244.2.3", "10.244.1.2", 80, 60438),
        state="CLOSE", timeout=10)]
    assert lab.conntrack("kind-control-plane") == []


def test_the_clock_moves_one_second_per_probe_and_entries_expire(lab):
    lab.probe("default/client", CLUSTER_IP)
    lab.probe("default/client", "10.244.1.3:80", count=4)
    assert [e.timeout for e in lab.conntrack("kind-worker")] == [6, 7, 8, 9, 10]
    lab.probe("default/client", "10.244.1.3:80", count=6)  # CLOSE lasts 10 s: the first is gone at 11 s
    assert [e.timeout for e in lab.conntrack("kind-worker")] == list(range(1, 11))


def test_http_is_a_whole_connection_answered_by_netexec(lab):
    r = lab.http("default/client", CLUSTER_IP, "/clientip")
    assert r == ProbeResult("default/client", CLUSTER_IP, "tcp", ANSWERED, answered_by=W3,
                            reply_from="10.96.0.80:80", client_seen_as="10.244.1.2:60438",
                            client_address="10.244.1.2:60438", kind="http", status=200,
                            body="10.244.1.2:60438")
    [e] = lab.conntrack("kind-worker")
    assert (e.state, e.flags, e.timeout) == ("TIME_WAIT", ("ASSURED",), 120)
    r = lab.http("default/client", CLUSTER_IP, "/echo?msg=hi&code=201")
    assert (r.status, r.body) == (201, "hi")
    r = lab.http("default/client", CLUSTER_IP, "/nope")  # agnhost's root handler takes every other path
    assert (r.status, r.body) == (200, "NOW: " + lab.go_now(lab.endpoint(r.answered_by).netns))


def test_scale_to_one_leaves_only_that_pod_answering(lab):
    lab.scale("deployment/web", 1)
    assert [p.meta.name for p in lab.pods()] == ["client", "web-7d785f9f55-6x2xw"]
    assert {r.answered_by for r in lab.probe("default/client", CLUSTER_IP, count=6)} == {W1}
    assert "lksim-pod-default.web-7d785f9f55-hf2lq" not in lab.dataplane.namespaces
    assert lab.rules("kind-worker").count("-j DNAT") == 1


def test_deleting_the_service_leaves_no_answer(lab):
    assert lab.delete(SERVICE_ONLY) == ["Service default/web"]
    [r] = lab.probe("default/client", CLUSTER_IP)
    assert (r.verdict, r.answered_by, r.reply_from) == (NO_REPLY, "", "")
    assert "10.96.0.80" not in lab.rules("kind-worker")
    assert lab.http("default/client", CLUSTER_IP).verdict == NO_REPLY


def test_a_service_without_endpoints_rejects_with_icmp_from_the_node(lab):
    assert lab.apply(EMPTY) == ["Service default/empty"]
    [r] = lab.probe("default/client", "10.96.0.99:80")
    assert (r.verdict, r.reply_from, r.detail) == (UNREACHABLE, "10.244.1.1", "ICMP destination unreachable (code 3)")
    assert lab.conntrack("kind-worker") == []  # the REJECT came before conntrack confirmed the flow
    assert lab.http("default/client", "10.96.0.99:80").verdict == REFUSED
    assert lab.probe("default/client", "10.96.0.99:80", protocol="udp")[0].verdict == NO_REPLY  # no UDP port


def test_nothing_listening_is_refused(lab):
    [r] = lab.probe("default/client", "10.244.2.2:81")
    assert (r.verdict, r.reply_from) == (REFUSED, "10.244.2.2:81")


def test_udp_to_the_client_pods_netexec(lab):
    [r] = lab.probe("default/web-7d785f9f55-6x2xw", "10.244.1.2:8081", protocol="udp")
    assert r == ProbeResult("default/web-7d785f9f55-6x2xw", "10.244.1.2:8081", "udp", ANSWERED,
                            answered_by="default/client", reply_from="10.244.1.2:8081",
                            client_seen_as="10.244.2.2:60438", client_address="10.244.2.2:60438",
                            kind="udp", body="client")


def test_hairpin_is_masqueraded_to_the_node_side_of_the_veth(lab):
    [r] = lab.probe(W2, CLUSTER_IP, pin=W2)
    assert (r.answered_by, r.reply_from, r.client_seen_as) == (W2, "10.96.0.80:80", "10.244.1.1:26271")
    [e] = lab.conntrack("kind-worker")
    # --random-fully: the source port is remapped even though it was free
    assert (e.orig, e.reply) == (Tuple4("10.244.1.3", "10.96.0.80", 60438, 80),
                                 Tuple4("10.244.1.3", "10.244.1.1", 80, 26271))


def test_a_node_reaches_a_cluster_ip_masqueraded_to_its_own_address(lab):
    r = lab.http("kind-control-plane", CLUSTER_IP, "/clientip", pin=W1)
    assert (r.answered_by, r.client_address, r.body.split(":")[0]) == (W1, "172.18.0.2:60438", "172.18.0.2")


def test_pins_follow_the_pod_or_refuse_a_pod_the_rules_never_reach(lab):
    for pod in (W1, W2, W3, "10.244.2.2"):
        [r] = lab.probe("default/client", CLUSTER_IP, pin=pod)
        assert r.answered_by == (W1 if pod == "10.244.2.2" else pod)
    with pytest.raises(LabkitError, match="no path of this packet .* reaches pod default/client"):
        lab.probe(W1, CLUSTER_IP, pin="default/client")
    lab.pin(W2)
    assert {r.answered_by for r in lab.probe("default/client", CLUSTER_IP, count=4)} == {W2}
    assert lab.probe(W2, "10.244.2.2:80")[0].answered_by == W1  # a lab-wide pin yields where it cannot apply
    lab.pin(None)
    with pytest.raises(LabkitError, match="cannot pin 'default/nope'"):
        lab.pin("default/nope")


def test_the_sport_can_be_given_to_replay_a_kernel_probe(lab):
    [r] = lab.probe("default/client", CLUSTER_IP, pin=W2, sport=40000)
    assert r.client_address == "10.244.1.2:40000"
    assert lab.conntrack("kind-worker")[0].reply == Tuple4("10.244.1.3", "10.244.1.2", 80, 40000)


def test_the_trace_is_the_first_nodes_chains_in_the_kernel_traces_words(lab):
    t = lab.trace("default/client", CLUSTER_IP, pin=W2)
    assert t.verdict == ANSWERED
    assert [(s.table, s.chain, s.rule_number, s.verdict) for s in t.steps] == [
        ("mangle", "PREROUTING", 0, "ACCEPT"),
        ("nat", "PREROUTING", 1, "KUBE-SERVICES"),
        ("nat", "KUBE-SERVICES", 1, "KUBE-SVC-CDGGSHYLG3RE2FKL"),
        ("nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", 2, "KUBE-SEP-BHMTFEMIGCOTLSJP"),
        ("nat", "KUBE-SEP-BHMTFEMIGCOTLSJP", 2, "DNAT"),
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
    assert t.steps[4] == TraceStep("nat", "KUBE-SEP-BHMTFEMIGCOTLSJP", 2,
                                   '-A KUBE-SEP-BHMTFEMIGCOTLSJP -p tcp -m comment --comment "default/web:http" '
                                   "-m tcp -j DNAT --to-destination 10.244.1.3:80", "DNAT")
    with pytest.raises(LabkitError, match="not a node of the lab"):
        lab.trace("outside", CLUSTER_IP)


def test_rules_are_printed_one_table_at_a_time_as_iptables_save_does(lab):
    nat = lab.rules("kind-worker", "nat")
    assert nat.startswith("*nat\n:PREROUTING ACCEPT [0:0]\n") and nat.endswith("COMMIT\n")
    assert ('-A KUBE-SERVICES -d 10.96.0.80/32 -p tcp -m comment --comment "default/web:http cluster IP" '
            "-m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL") in nat
    assert "-A KIND-MASQ-AGENT -d 10.244.0.0/16" in nat and "*filter" not in nat
    assert lab.rules("worker", "filter").startswith("*filter\n")
    assert lab.rules("worker", "raw") == ""
    with pytest.raises(LabkitError, match="no node 'kind-worker9' in lab sim"):
        lab.rules("kind-worker9")


def test_a_label_change_takes_the_pod_out_of_the_service(lab):
    # the Service's targetPort is the port named "http": a pod without it gets no endpoint port
    extra = (CLIENT.replace("name: client", "name: extra").replace("app: client", "app: web")
             + "    ports: [{name: http, containerPort: 80}]\n")
    lab.apply(extra.replace("kind-worker", "kind-worker2"))
    assert "default/extra" in lab.reachable_pods("default/client", CLUSTER_IP)
    lab.apply(extra.replace("kind-worker", "kind-worker2").replace("app: web", "app: canary"))
    assert lab.reachable_pods("default/client", CLUSTER_IP) == sorted([W1, W2, W3])


def test_the_same_seed_gives_the_same_lab_and_answers():
    def run(seed):
        lab = SimLab("sim", seed=seed)
        lab.up(WEB + "---\n" + CLIENT)
        return [(r.answered_by, r.client_address) for r in lab.probe("default/client", CLUSTER_IP, count=8)]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_down_is_idempotent_and_a_down_lab_says_so(lab):
    lab.down()
    lab.down()
    with pytest.raises(LabNotFound, match="lab 'sim' is not up"):
        lab.probe("default/client", CLUSTER_IP)
    lab.up()
    assert lab.pods() == []
    with pytest.raises(LabkitError, match="already up"):
        lab.up()


def test_unknown_sources_name_what_exists(lab):
    with pytest.raises(LabkitError, match=r"no pod default/ghost in lab sim \(pods: default/client, "):
        lab.probe("default/ghost", CLUSTER_IP)
    with pytest.raises(LabkitError, match="must be ADDRESS:PORT"):
        lab.probe("default/client", "10.96.0.80")


# --- labkit.lab(), the facade ---------------------------------------------------


# choose_backend's wording: tests/test_lab_facade.py


def test_lab_facade_runs_the_sim_and_prints_one_line(capsys):
    import labkit

    with labkit.lab(backend="sim", name="demo", manifests=[MANIFESTS / "web.yaml", CLIENT]) as lab:
        assert isinstance(lab, SimLab) and lab.lab == "demo"
        assert lab.http("default/client", CLUSTER_IP).answered_by.startswith("default/web-")
    assert capsys.readouterr().out == "labkit: running on the simulation backend (asked for)\n"
    with pytest.raises(LabNotFound):
        lab.pods()


def test_importing_labkit_stays_light():
    code = ("import sys, labkit; heavy = [m for m in ('labkit.lab', 'labkit.backends', 'labkit.dataplane', "
            "'yaml', 'scapy') if m in sys.modules]; print(heavy); print(callable(labkit.lab))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\nTrue\n"


@pytest.mark.labkit_requires(root=True, tools=("ip", "iptables-restore", "iptables-save"))
def test_lab_facade_picks_the_kernel_as_root(capsys):
    import secrets

    import labkit
    from labkit.backends.netns.lab import NetnsLab

    lab = labkit.lab(name="f" + secrets.token_hex(2), manifests=[MANIFESTS / "web.yaml", CLIENT])
    try:
        assert isinstance(lab, NetnsLab)
        assert lab.http("default/client", CLUSTER_IP).answered_by.startswith("default/web-")
    finally:
        lab.down()
    assert capsys.readouterr().out == (
        "labkit: running on the netns backend (the kernel) (running as root with the lab's tools installed)\n")
