"""The fake kind cluster (KindFake): its output formats against real captured output, and the kind
backend on it against the simulation it runs underneath.

The conformance suite (test_conformance.py, backend "kind") runs on this fake; these tests make
sure the fake earns that: what it prints reads back, through the kind backend's own parsers, as
the real programs' output does (captured/ holds the real output), and it refuses what a real
cluster would refuse.
"""
from __future__ import annotations

import re

import pytest

from kind_support import RECORDINGS
from labkit.backends.base import ANSWERED, Trace
from labkit.backends.kind import commands as cmd
from labkit.backends.kind.api_json import render_api_list
from labkit.backends.kind.fake_cluster import (
    KindFake,
    conntrack_footer,
    fake_find,
    probe_pod_name,
    render_conntrack,
    render_iptables_save,
    render_xtables_trace,
)
from labkit.backends.kind.lab import KindLab
from labkit.backends.netns.conntrack_text import parse_conntrack
from labkit.backends.netns.trace_text import parse_xtables_trace, rule_positions
from labkit.backends.sim.lab import SimLab
from labkit.model.load import load_manifests

CAPTURED = RECORDINGS / "captured"
MANIFESTS = (RECORDINGS / "manifests.yaml").read_text()
MORE = (RECORDINGS.parent / "manifests" / "nodeport.yaml").read_text()


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


# --- the formats, against the real programs' output --------------------------------------------


@pytest.mark.parametrize("name", ["worker-syn.conntrack", "control-plane-syn.conntrack"])
def test_conntrack_lines_are_printed_as_conntrack_prints_them(name):
    text = captured(name)
    assert render_conntrack(parse_conntrack(text)) == text


def test_the_conntrack_footer_is_conntracks():
    assert conntrack_footer(2) == captured("worker-syn.conntrack.stderr")
    assert conntrack_footer(0) == captured("empty.conntrack.stderr")


def test_flags_and_zones_go_where_conntrack_puts_them():
    line = ("tcp      6 117 SYN_SENT src=10.244.1.2 dst=10.96.0.80 sport=40000 dport=80 [UNREPLIED] "
            "src=10.244.2.3 dst=10.244.1.2 sport=80 dport=40000 mark=0 zone=3 use=1\n"
            "udp      17 118 src=10.244.1.2 dst=10.244.2.3 sport=40001 dport=8081 src=10.244.2.3 dst=10.244.1.2 "
            "sport=8081 dport=40001 [ASSURED] mark=0 use=1\n")
    assert render_conntrack(parse_conntrack(line)) == line


def test_iptables_save_has_its_header_and_footer_lines():
    text = captured("node-kind-worker.iptables-save")
    stamp = text.splitlines()[0].split(" on ", 1)[1]
    blocks = re.findall(r"^(\*\w+\n.*?^COMMIT\n)", text, re.M | re.S)
    assert [b.splitlines()[0] for b in blocks] == ["*mangle", "*filter", "*nat"]
    assert render_iptables_save(blocks, stamp) == text


def _normal(text: str, packet_id: str) -> list[str]:
    """One packet's lines, without what only the kernel knows (rule handles, interfaces, MACs, TTL)."""
    out = []
    for line in text.splitlines():
        if f" {packet_id} " not in line:
            continue
        if line.startswith("PACKET:"):
            kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
            out.append(f"PACKET {kv['SRC']}:{kv['SPORT']} > {kv['DST']}:{kv['DPORT']}")
        else:
            out.append(re.sub(r":rule:0x[0-9a-f]+:", ":rule:H:", line.replace(packet_id, "ID")))
    return out


def test_a_rendered_trace_is_the_kernels_but_for_handles_and_interfaces():
    """The kernel's own trace of a SYN, re-rendered from its parsed steps, reads back the same and
    prints the same lines (the kernel's rule handles and link-layer fields aside)."""
    kernel = captured("worker-trace.xtables-monitor")
    save = captured("worker-trace.iptables-save")
    positions = {t: rule_positions(save, t) for t in ("raw", "mangle", "nat", "filter")}
    steps = parse_xtables_trace(kernel, positions)
    first_id = kernel.split()[2]
    trace = Trace("default/client", "10.96.0.80:80", "tcp", tuple(s for s in steps if s.table != "raw"), ANSWERED)
    rule = "-A PREROUTING -p tcp -m tcp --sport 59269 --dport 80 -j TRACE"
    ours = render_xtables_trace(trace, "10.244.1.2", "PREROUTING", rule, 59269, packet_id=first_id)
    assert parse_xtables_trace(ours, positions) == steps
    assert _normal(ours, first_id) == _normal(kernel, first_id)


def test_objects_survive_the_api_round_trip():
    sim = SimLab("rt")
    sim.up(MANIFESTS + "---\n" + MORE)
    st = sim.state
    objs = list(st.nodes) + list(st.deployments) + list(st.pods) + list(st.services) + list(st.endpoint_slices)
    assert {o.kind for o in objs} == {"Node", "Deployment", "Pod", "Service", "EndpointSlice"}
    assert any(s.type == "NodePort" for s in st.services)
    assert load_manifests(render_api_list(objs), "round trip") == objs


def test_probe_pods_are_named_as_the_apiserver_names_them():
    names = [probe_pod_name(n) for n in ("kind-control-plane", "kind-worker", "kind-worker2")]
    assert all(re.fullmatch(r"labkit-probe-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names)
    assert len(set(names)) == 3 and probe_pod_name("kind-worker") == names[1]


# --- the fake refuses what a cluster would refuse -----------------------------------------------


def test_a_command_the_fake_does_not_know_fails_the_test():
    fake = KindFake()
    with pytest.raises(AssertionError, match="does not know this command"):
        fake.run(["kubectl", "--context", "kind-kind", "get", "secrets", "-o", "json"])
    with pytest.raises(AssertionError, match="kind cluster 'kind', which does not exist"):
        fake.run(cmd.kubectl_get_pods("kind"))
    assert fake.run(cmd.kind_get_clusters()).stderr == "No kind clusters found.\n"
    r = fake.run(cmd.docker_image_inspect("labkit-probe:x"), check=False)
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: No such image: labkit-probe:x\n")


def test_the_probe_image_must_be_loaded_before_its_daemonset(tmp_path):
    from labkit.backends.kind.lab import DEFAULT_KIND_CONFIG
    from labkit.backends.kind.probe_pods import render_probe_daemonset

    fake = KindFake()
    fake.run(cmd.kind_create_cluster("kind"), stdin=DEFAULT_KIND_CONFIG)
    with pytest.raises(AssertionError, match="was never `kind load`ed"):
        fake.run(cmd.kubectl_apply("kind"), stdin=render_probe_daemonset("labkit-probe:abc"))


# --- the kind backend on the fake agrees with the simulation ------------------------------------


@pytest.fixture()
def both(tmp_path):
    """The kind lab on a fake cluster, and a sim lab given the same operations (same seed)."""
    lab = KindLab("lab", "", 0, KindFake(), str(tmp_path), sleep=lambda s: None, show=lambda s: None,
                  find=fake_find)
    lab.up(MANIFESTS, "manifests.yaml")
    sim = SimLab("kind")
    sim.up()
    sim.apply(MANIFESTS, "<stdin>")
    yield lab, sim
    lab.down()


def _view(r):
    return (r.verdict, r.answered_by, r.reply_from, r.client_seen_as, r.client_address, r.status, r.body)


def test_probes_give_the_sims_results(both):
    lab, sim = both
    syns = lab.probe("default/client", "10.96.0.80:80", count=20)
    for r in syns:
        sim.now = 0.0
        [s] = sim.probe("default/client", "10.96.0.80:80", sport=int(r.client_address.rsplit(":", 1)[1]))
        assert _view(r) == _view(s)
    assert {r.answered_by for r in syns} == {f"default/{p.meta.name}" for p in sim.pods()
                                            if p.meta.labels.get("app") == "web"}
    [u] = lab.probe("kind-worker2", "10.244.1.2:8081", protocol="udp")
    [su] = sim.probe("kind-worker2", "10.244.1.2:8081", protocol="udp", sport=int(u.client_address.split(":")[1]))
    assert _view(u) == _view(su) and u.body == "client"


def test_a_node_probe_sees_the_masquerade(both):
    lab, sim = both
    [r] = lab.probe("kind-control-plane", "10.96.0.80:80")
    assert r.verdict == ANSWERED and r.client_address.startswith("172.18.0.2:")
    assert r.client_seen_as.startswith("172.18.0.2:") and r.client_seen_as != r.client_address


def test_the_trace_is_the_sims_after_the_trace_rule(both):
    lab, sim = both
    t = lab.trace("default/client", "10.96.0.80:80")
    sport = int(t.steps[0].packet.split(" > ")[0].rsplit(":", 1)[1])
    s = sim.trace("default/client", "10.96.0.80:80", sport=sport)
    assert [(x.table, x.chain, x.rule_number, x.rule, x.verdict) for x in t.steps] == (
        [("raw", "PREROUTING", 0, "", "ACCEPT")]
        + [(x.table, x.chain, x.rule_number, x.rule, x.verdict) for x in s.steps])
    assert lab.runner.traces == {}  # the TRACE rule is out again


def test_compare_rules_on_the_fake_finds_no_difference(both):
    lab, _ = both
    c = lab.compare_rules("kind-worker")
    assert c.same and c.not_compared == ("nat KIND-MASQ-AGENT (kindnet's ip-masq-agent): 2 rules",)


def test_changes_reach_the_dataplane(both):
    lab, sim = both
    lab.scale("deployment/web", 1)
    [web] = [p for p in lab.pods() if p.meta.labels.get("app") == "web"]
    rs = lab.probe("default/client", "10.96.0.80:80", count=4)
    assert {r.answered_by for r in rs} == {f"default/{web.meta.name}"}
    assert lab.delete(MANIFESTS.split("---\n")[1], "svc") == ["Service default/web"]
    [r] = lab.probe("default/client", "10.96.0.80:80")
    assert r.verdict != ANSWERED
