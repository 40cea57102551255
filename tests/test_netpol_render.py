"""The NetworkPolicy filter rules: golden text, the simulation, and the real kernel.

- golden: one node's rules for a policy set that uses every kind of peer and port;
- simulation: for every upstream e2e probe (tests/netpol_e2e), each of the 72
  pod-to-pod pairs (loopback never reaches a node's rules) is run as a new
  packet through the parsed rules of the source's node, then the destination's
  node, and the verdict must be the evaluator's;
- kernel: iptables-restore accepts every rendered text inside a scratch
  network namespace (root only; skipped with the reason otherwise).
"""
from __future__ import annotations

import secrets
import subprocess

import pytest

from labkit.controllers.netpol import build_cluster
from labkit.controllers.netpol.matrix import compute_matrix
from labkit.controllers.netpol.render import block_cidrs, pod_chain_name, render_netpol_iptables
from labkit.model.load import load_manifests
from labkit.model.objects import IPBlock
from netpol_e2e_support import ALL_PODS, E2E_DIR, all_probes, load_scenario, scenario_files, step_objects
from test_netpol_evaluate import CLUSTER, policy

GOLDEN = E2E_DIR / "golden-render-kind-worker.txt"
NODES = ("kind-worker", "kind-worker2")

GOLDEN_POLICIES = "".join([
    policy("web-ingress", """
podSelector: {matchLabels: {app: web}}
ingress:
- from:
  - namespaceSelector: {matchLabels: {team: ops}}
  - podSelector: {matchLabels: {tier: backend}}
  - ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.0/26]}
  ports: [{port: http}, {port: 30000, endPort: 30010, protocol: UDP}]
- ports: [{protocol: SCTP}]
"""),
    policy("default-deny-egress", "podSelector: {}\npolicyTypes: [Egress]"),
    policy("allow-dns", """
podSelector: {}
policyTypes: [Egress]
egress:
- to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
  ports: [{port: 53, protocol: UDP}, {port: dns-tcp}]
"""),
])


def test_chain_names_are_stable_hashes_within_iptables_limits():
    assert pod_chain_name("Ingress", "x", "a") == "LABKIT-NP-I-" + pod_chain_name("Egress", "x", "a")[12:]
    assert pod_chain_name("Egress", "shop", "web") == "LABKIT-NP-E-S43VMRVR32Z5FVOE"
    assert len(pod_chain_name("Egress", "a" * 63, "b" * 253)) == 28


def test_except_becomes_the_cidrs_left_over():
    assert block_cidrs(IPBlock("203.0.113.0/24", ("203.0.113.0/26",))) == [
        "203.0.113.64/26", "203.0.113.128/25"]
    assert block_cidrs(IPBlock("10.0.0.0/8", ("10.0.0.0/8",))) == []
    assert block_cidrs(IPBlock("10.1.2.3/8")) == ["10.0.0.0/8"]  # host bits dropped, as the API does


def test_golden_rules_for_one_node():
    cluster = build_cluster(load_manifests(CLUSTER + GOLDEN_POLICIES))
    text = render_netpol_iptables(cluster, "kind-worker")
    if not GOLDEN.exists():  # pragma: no cover - first run writes it, review it by eye
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_a_node_without_isolated_pods_has_only_the_frame():
    cluster = build_cluster(load_manifests(CLUSTER))
    assert render_netpol_iptables(cluster, "kind-worker") == "\n".join(
        GOLDEN.read_text().splitlines()[:7] + [":LABKIT-NP-INGRESS - [0:0]"]
        + GOLDEN.read_text().splitlines()[11:18] + ["COMMIT", ""])


# --- the simulation runs the rendered text ------------------------------------------

iptables_parse = pytest.importorskip("labkit.dataplane.iptables_parse")
netfilter = pytest.importorskip("labkit.dataplane.netfilter")
packet = pytest.importorskip("labkit.dataplane.packet")


class _NewConnection:
    """The little a filter-table traversal asks of its context: this is a new connection."""

    ns = "node"
    trace: list = []
    traced = False

    def tracing(self) -> bool:
        return False

    def ct_states(self) -> frozenset:
        return frozenset({"NEW"})


def _sim_verdicts(cluster, port: int, protocol: str) -> dict:
    rulesets = {n: netfilter.CompiledRuleset(iptables_parse.parse_iptables_restore(
        render_netpol_iptables(cluster, n))) for n in NODES}
    pods = {f"{p.meta.namespace}/{p.meta.name}": p for p in cluster.pods}
    out = {}
    for a in ALL_PODS:
        for b in ALL_PODS:
            if a == b:
                continue
            src, dst = pods[a], pods[b]
            pkt = packet.Packet(protocol.lower(), src.pod_ip, dst.pod_ip, 40000, port,
                                flags="SYN" if protocol == "TCP" else "")
            verdict = "ACCEPT"
            for node in dict.fromkeys((src.node_name, dst.node_name)):
                r = netfilter.traverse(rulesets[node], "filter", "FORWARD", pkt, _NewConnection())
                if r.verdict != "ACCEPT":
                    verdict = r.verdict
                    break
            out[(a, b)] = verdict == "ACCEPT"
    return out


PROBES = list(all_probes([load_scenario(p) for p in scenario_files()]))


@pytest.mark.parametrize("item", PROBES,
                         ids=[f"{sc.id}[step{i}-{p.protocol}/{p.port}]" for sc, i, p in PROBES])
def test_simulation_of_rendered_rules_agrees_with_evaluator(item):
    sc, step, probe = item
    cluster = build_cluster(step_objects(sc, step))
    expected = {k: v for k, v in compute_matrix(cluster, probe.port, probe.protocol).truth().items()
                if k[0] != k[1]}
    got = _sim_verdicts(cluster, probe.port, probe.protocol)
    assert {k: v for k, v in got.items() if v != expected[k]} == {}


def test_simulation_drops_the_golden_cases_the_evaluator_denies():
    cluster = build_cluster(load_manifests(CLUSTER + GOLDEN_POLICIES))
    rs = netfilter.CompiledRuleset(iptables_parse.parse_iptables_restore(
        render_netpol_iptables(cluster, "kind-worker")))

    def fwd(proto, src, dst, dport):
        return netfilter.traverse(rs, "filter", "FORWARD", packet.Packet(proto, src, dst, 40000, dport),
                                  _NewConnection()).verdict

    web = "10.244.1.5"
    assert fwd("tcp", "203.0.113.70", web, 8080) == "ACCEPT"   # ipBlock, outside except
    assert fwd("tcp", "203.0.113.7", web, 8080) == "DROP"      # inside except
    assert fwd("udp", "10.244.2.8", web, 30010) == "ACCEPT"    # ops namespace, endPort range
    assert fwd("udp", "10.244.2.8", web, 30011) == "DROP"
    assert fwd("sctp", "198.51.100.1", web, 7) == "ACCEPT"     # any SCTP port, any peer
    assert fwd("udp", web, "10.244.2.9", 53) == "ACCEPT"       # DNS allowed on egress
    assert fwd("tcp", web, "10.244.2.9", 53) == "ACCEPT"       # dns-tcp named port on coredns
    assert fwd("tcp", web, "203.0.113.7", 443) == "DROP"       # default-deny egress


# --- the kernel accepts it ------------------------------------------------------------


def _kernel_texts() -> list[tuple[str, str]]:
    texts = [("golden", render_netpol_iptables(build_cluster(load_manifests(CLUSTER + GOLDEN_POLICIES)),
                                               "kind-worker"))]
    seen = set()
    for sc, step, _ in PROBES:
        if (sc.id, step) in seen:
            continue
        seen.add((sc.id, step))
        cluster = build_cluster(step_objects(sc, step))
        texts += [(f"{sc.id}-step{step}-{n}", render_netpol_iptables(cluster, n)) for n in NODES]
    return texts


@pytest.mark.labkit_requires(root=True, tools=("ip", "iptables-restore"))
def test_kernel_accepts_every_rendered_ruleset():
    ns = f"lktest-np-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        failures = []
        for name, text in _kernel_texts():
            r = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=text,
                               capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"{name}: {r.stderr.strip()}")
        assert failures == []
        saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-t", "filter"],
                               capture_output=True, text=True, check=True).stdout
        assert ":LABKIT-NP-FORWARD - [0:0]" in saved
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
