"""NetworkPolicy enforced in the lab: the upstream e2e scenarios probed with packets, sim and kernel.

One lab per backend holds the upstream 9-pod cluster (tests/netpol_e2e/cluster.yaml)
for the whole module; each scenario step is reached from the previous one by
deleting the policies it no longer has and applying what changed (policies,
namespace and pod labels), each change one re-sync of every node's rules. Then
`lab.netpol_matrix(port, protocol, probe=True)` sends a real packet for each
of the 72 ordered pairs of pods (TCP SYN or UDP datagram, all at once), and
the probed matrix must be the upstream table cell for cell and the
evaluator's prediction too (loopback cells are not probed: a pod's packets to
itself never meet a node's rules). A denied cell must be a real drop: the
probe's verdict is no-reply, never a reset.

SCTP too: this kernel has no SCTP (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)
fails with EPROTONOSUPPORT), so no pod serves it; the probe is an SCTP INIT on
a raw socket, which the nodes' rules and conntrack see as any SCTP packet and
which the destination pod's kernel, reached, answers with ICMP protocol
unreachable: an allowed SCTP cell is "refused", a denied one "no-reply".

The kernel cases need root (or working user namespaces) and skip with the
reason otherwise.
"""
from __future__ import annotations

import secrets
import time

import pytest
import yaml

from conftest import labkit_requires
from labkit.backends.base import ANSWERED, NO_REPLY, REFUSED
from labkit.backends.netns.rules import EMPTY_FILTER, merge_policy_first, render_lab_rules
from labkit.backends.sim.lab import SimLab
from labkit.controllers.netpol.matrix import parse_truth_table
from labkit.controllers.netpol.probed import render_probed_matrix
from labkit.errors import LabkitError
from labkit.model.load import load_manifests
from labkit.model.objects import Namespace, NetworkPolicy, Pod
from netpol_e2e_support import CLUSTER_FILE, all_probes, load_scenario, scenario_files, step_objects

SCENARIOS = [load_scenario(p) for p in scenario_files()]
LAB_PROBES = list(all_probes(SCENARIOS))
BACKENDS = ["sim", "netns"]
CASES = [(b, item) for b in BACKENDS for item in LAB_PROBES]
KERNEL_TOOLS = ("ip", "iptables-restore", "iptables-save")
CLUSTER_DOCS = [d for d in yaml.safe_load_all(CLUSTER_FILE.read_text()) if d]
TIMINGS: dict[str, list[float]] = {b: [] for b in BACKENDS}


def test_every_upstream_probe_is_run_in_the_labs():
    assert len(LAB_PROBES) == 65
    assert sorted({p.protocol for _, _, p in LAB_PROBES}) == ["SCTP", "TCP", "UDP"]


# --- labs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_lab():
    lab = SimLab("np")
    lab.up(CLUSTER_FILE.read_text(), "netpol e2e cluster")
    yield lab
    lab.down()


def kernel_lab_class():
    """NetnsLab as root; as another user, the same lab held in a user namespace."""
    import os

    if os.geteuid() != 0:
        from labkit.backends.netns.rootless import RootlessLab, check_user_namespaces

        if check_user_namespaces()[0]:
            labkit_requires(tools=KERNEL_TOOLS + ("unshare",))
            return RootlessLab
    labkit_requires(root=True, tools=KERNEL_TOOLS)
    from labkit.backends.netns.lab import NetnsLab

    return NetnsLab


@pytest.fixture(scope="module")
def netns_lab():
    lab = kernel_lab_class()("p" + secrets.token_hex(2))
    try:
        lab.up(CLUSTER_FILE.read_text(), "netpol e2e cluster")
        yield lab
    finally:
        lab.down()
        if TIMINGS["netns"]:
            print(f"\nkernel lab: {len(TIMINGS['netns'])} matrices probed in {sum(TIMINGS['netns']):.1f} s")


# --- bringing a lab to a scenario's step ------------------------------------------------


def _key(o) -> tuple:
    return (o.kind, o.meta.namespace, o.meta.name)


def _policy_docs(objs) -> dict:
    """{key: (model object, YAML)} for the step's policies."""
    out = {}
    for o in objs:
        if isinstance(o, NetworkPolicy):
            out[_key(o)] = o
    return out


def _labelled_doc(obj) -> str:
    """The cluster.yaml document of a Namespace or Pod, with `obj`'s labels."""
    for d in CLUSTER_DOCS:
        md = d["metadata"]
        if d["kind"] == obj.kind and md["name"] == obj.meta.name and md.get("namespace", "") == obj.meta.namespace:
            return yaml.safe_dump({**d, "metadata": {**md, "labels": dict(obj.meta.labels)}}, sort_keys=False)
    raise AssertionError(f"{obj.kind} {obj.meta.name} is not in cluster.yaml")


def converge(lab, scenario, step: int) -> int:
    """Make the lab's policies and labels those of the scenario's step; the number of re-syncs."""
    want = step_objects(scenario, step)
    have = {_key(o): o for o in lab.netpol_objects()}
    syncs = 0
    stale = [o for k, o in have.items() if isinstance(o, NetworkPolicy) and k not in _policy_docs(want)]
    if stale:
        lab.delete("---\n".join(yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                                "metadata": {"name": o.meta.name, "namespace": o.meta.namespace}})
                                for o in stale), "stale policies")
        syncs += 1
    changed = []
    for o in want:
        old = have.get(_key(o))
        if isinstance(o, (Namespace, Pod)) and dict(old.meta.labels) != dict(o.meta.labels):
            changed.append(_labelled_doc(o))
    for doc in yaml.safe_load_all(scenario.steps[step].policies_yaml or ""):
        if doc:
            text = yaml.safe_dump(doc, sort_keys=False)
            [obj] = load_manifests(text)
            if have.get(_key(obj)) != obj:
                changed.append(text)
    if changed:
        lab.apply("---\n".join(changed), f"{scenario.id} step {step}")
        syncs += 1
    return syncs


# --- the scenarios ---------------------------------------------------------------------


@pytest.mark.parametrize("backend,item", CASES,
                         ids=[f"{b}-{sc.id}[step{i}-{p.protocol}/{p.port}]" for b, (sc, i, p) in CASES])
def test_upstream_scenario_probed_with_packets(request, backend, item):
    sc, step, probe = item
    lab = request.getfixturevalue(f"{backend}_lab")
    converge(lab, sc, step)
    started = time.monotonic()
    pm = lab.netpol_matrix(probe.port, probe.protocol, probe=True)
    TIMINGS[backend].append(time.monotonic() - started)
    _, expected = parse_truth_table(probe.table)
    upstream = {k: v for k, v in expected.items() if k[0] != k[1]}
    shown = f"{sc.name}, step {step}, {probe.protocol}/{probe.port}\n{render_probed_matrix(pm)}"
    assert pm.observed_truth() == upstream, shown
    assert pm.differences() == [], shown
    assert {v for k, v in pm.verdicts.items() if not upstream[k]} <= {NO_REPLY}, shown
    reached = REFUSED if probe.protocol == "SCTP" else ANSWERED  # no SCTP stack in the pods
    assert {v for k, v in pm.verdicts.items() if upstream[k]} <= {reached}, shown


def test_a_protocol_no_policy_knows_is_refused(sim_lab):
    with pytest.raises(LabkitError) as e:
        sim_lab.netpol_matrix(80, "ICMP", probe=True)
    assert str(e.value) == "protocol 'ICMP' is not one NetworkPolicy knows (fix: use one of TCP, UDP, SCTP)"


# --- where the policy's rules go ------------------------------------------------------

DENY_X = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
NODEPORT_X_A = """apiVersion: v1
kind: Service
metadata: {name: xa, namespace: x}
spec:
  type: NodePort
  selector: {pod: a}
  ports: [{port: 80, nodePort: 30080}]
"""


def _ready_cluster() -> str:
    """cluster.yaml with every pod Ready, so a Service in front of one has an endpoint."""
    docs = [{**d, "status": {**d["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
            if d["kind"] == "Pod" else d for d in CLUSTER_DOCS]
    return yaml.safe_dump_all(docs, sort_keys=False)


def _sim(extra: str = "") -> SimLab:
    lab = SimLab("npr")
    lab.up(CLUSTER_FILE.read_text() + ("---\n" + extra if extra else ""))
    return lab


def test_policy_jumps_come_first_in_input_and_forward():
    lab = _sim(DENY_X)
    text = render_lab_rules(lab.plan, lab.state)[lab.plan.node("kind-worker").netns]
    def jumps(chain):
        return [line.split(" -j ")[-1] for line in text.splitlines() if line.startswith(f"-A {chain} ")]

    assert jumps("INPUT") == ["LABKIT-NP-INPUT", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS",
                              "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL"]
    assert jumps("FORWARD") == ["LABKIT-NP-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES",
                                "KUBE-EXTERNAL-SERVICES"]
    assert [line for line in text.splitlines() if line.startswith("*")] == ["*mangle", "*filter", "*nat"]


def test_without_policies_the_node_has_no_policy_rules():
    lab = _sim()
    assert all("LABKIT-NP" not in t for t in render_lab_rules(lab.plan, lab.state).values())


def test_merge_policy_first_names_the_filter_table_even_without_policies():
    nat = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
    assert merge_policy_first("", nat) == EMPTY_FILTER + nat  # loading it flushes a deleted policy's rules
    policy = "*filter\n:FORWARD ACCEPT [0:0]\n:LABKIT-NP-FORWARD - [0:0]\n-A FORWARD -j LABKIT-NP-FORWARD\nCOMMIT\n"
    assert merge_policy_first(policy, nat) == nat + policy
    lab_text = "*filter\n:FORWARD ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n" + nat
    assert merge_policy_first(policy, lab_text) == (
        "*filter\n:FORWARD ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n:LABKIT-NP-FORWARD - [0:0]\n"
        "-A FORWARD -j LABKIT-NP-FORWARD\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n" + nat)


@pytest.fixture(params=BACKENDS)
def small_lab(request):
    """A fresh lab with the 9 pods and a NodePort Service in front of x/a."""
    if request.param == "sim":
        lab = SimLab("nps")
    else:
        lab = kernel_lab_class()("q" + secrets.token_hex(2))
    try:
        lab.up(_ready_cluster() + "---\n" + NODEPORT_X_A, "netpol e2e cluster, ready")
        yield lab
    finally:
        lab.down()


def test_nodeport_traffic_meets_the_policy(small_lab):
    """kube-proxy marks NodePort traffic for masquerade and its KUBE-FORWARD accepts marked
    packets: only because the policy's jump comes first is such a connection denied."""
    node_ip = next(n.ip for n in small_lab.plan.nodes if n.name == "kind-worker2")
    [before] = small_lab.probe("outside", f"{node_ip}:30080")
    assert (before.verdict, before.answered_by) == (ANSWERED, "x/a")
    small_lab.apply(DENY_X)
    [after] = small_lab.probe("outside", f"{node_ip}:30080", timeout=0.5)
    assert after.verdict == NO_REPLY
    small_lab.delete(DENY_X)  # the rules go with the policy: answered again
    [again] = small_lab.probe("outside", f"{node_ip}:30080")
    assert again.verdict == ANSWERED
    assert "LABKIT-NP" not in small_lab.rules("kind-worker", "filter")


def test_check_with_a_probe_names_the_rule_and_sees_the_drop(small_lab):
    small_lab.apply(DENY_X)
    verdict, result = small_lab.netpol_check("y/b", "x/a", 80, probe=True)
    assert not verdict.allowed
    assert verdict.reason == ("denied: y/b -> x/a TCP/80. Egress from y/b: not isolated (no NetworkPolicy "
                              "selects it for Egress). Ingress to x/a: isolated by x/deny-ingress; no ingress "
                              "rule of them allows it.")
    assert (result.source, result.destination, result.verdict) == ("y/b", "10.244.1.10:80", NO_REPLY)
    verdict, result = small_lab.netpol_check("x/a", "y/b", 81, "UDP", probe=True)
    assert verdict.allowed and (result.verdict, result.answered_by, result.body) == (ANSWERED, "y/b", "b")
