"""The kernel lab, live (root only): pods talk across nodes, Services reach backends, down leaves nothing.

Every lab here has its own random name (tests may run beside other labs) and
is removed in a fixture's finally. Root-only tests skip with the reason.
"""
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import labkit_requires

FIXTURE = Path(__file__).parent / "netns_fixtures" / "default_lab.yaml"
TOOLS = ("ip", "iptables-restore", "iptables-save", "conntrack")

pytestmark = pytest.mark.labkit_requires(root=True, tools=TOOLS)


def _name() -> str:
    return "q" + secrets.token_hex(2)  # unique per test, and never "test"


def _leftovers(lab: str) -> list[str]:
    """Everything of lab `lab` still on the machine, as sentences (empty: clean)."""
    from labkit.backends.netns.cleanup import is_lab_server, lab_of_netns
    from labkit.backends.netns.runner import list_netns

    left = [f"namespace {n}" for n in list_netns() if lab_of_netns(n) == lab]
    host_links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    left += [f"host link {m}" for m in re.findall(rf"^\d+: (lk{lab}-[^:@]+)", host_links, re.M)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if is_lab_server(argv, lab):
            left.append(f"process {pid}")
    if os.path.exists(f"/run/labkit/{lab}"):
        left.append(f"state /run/labkit/{lab}")
    return left


@pytest.fixture(scope="module")
def lab():
    labkit_requires(root=True, tools=TOOLS)
    from labkit.backends.netns.lab import NetnsLab

    name = _name()
    lab = NetnsLab(name)
    try:
        lab.up(FIXTURE.read_text(), str(FIXTURE))
        yield lab
    finally:
        lab.down()
    assert _leftovers(name) == []


def _svc(lab, name):
    return next(s for s in lab.services() if s.meta.name == name)


def _pods(lab, app):
    return sorted((p for p in lab.pods() if p.meta.labels.get("app") == app), key=lambda p: p.meta.name)


def test_the_default_lab_has_three_nodes_and_six_pods(lab):
    assert [n.name for n in lab.plan.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert len(lab.pods()) == 6 and len(lab.services()) == 3
    out = subprocess.run(["ip", "-n", lab.plan.node("kind-worker").netns, "route"], capture_output=True, text=True).stdout
    assert "10.244.2.0/24 via 172.18.0.4 dev eth0" in out


def test_a_pod_reaches_a_pod_on_another_node_and_is_seen_as_itself(lab):
    client = next(p for p in lab.pods() if p.meta.name == "client")
    other = next(p for p in lab.pods() if p.node_name != client.node_name and p.meta.labels.get("app") == "web")
    r = lab.http("default/client", f"{other.pod_ip}:8080", "/hostname")
    assert (r.verdict, r.status, r.body) == ("answered", 200, other.meta.name)
    assert r.answered_by == f"default/{other.meta.name}"
    r = lab.http("default/client", f"{other.pod_ip}:8080", "/clientip")
    assert r.body.split(":")[0] == client.pod_ip  # pod to pod: no NAT
    assert r.client_seen_as == r.client_address


def test_a_cluster_ip_reaches_a_backend(lab):
    web = _svc(lab, "web")
    backends = {f"default/{p.meta.name}" for p in _pods(lab, "web")}
    seen = set()
    for _ in range(12):
        r = lab.http("default/client", f"{web.cluster_ip}:80")
        assert r.verdict == "answered" and r.answered_by in backends
        assert r.reply_from == f"{web.cluster_ip}:80"
        seen.add(r.answered_by)
    assert len(seen) >= 2  # kube-proxy's random choice spreads 12 requests over the 3 backends


def test_a_syn_probe_names_the_backend_from_conntrack(lab):
    web = _svc(lab, "web")
    [r] = lab.probe("default/client", f"{web.cluster_ip}:80")
    assert r.verdict == "answered" and r.kind == "syn"
    assert r.answered_by in {f"default/{p.meta.name}" for p in _pods(lab, "web")}
    assert r.reply_from == f"{web.cluster_ip}:80" and r.client_seen_as == r.client_address


def test_udp_through_a_cluster_ip(lab):
    web = _svc(lab, "web")
    [r] = lab.probe("default/client", f"{web.cluster_ip}:81", protocol="udp")
    assert r.verdict == "answered" and r.body == r.answered_by.split("/")[1]


def test_a_service_without_endpoints_is_rejected(lab):
    empty = _svc(lab, "empty")
    [r] = lab.probe("default/client", f"{empty.cluster_ip}:80", timeout=1.0)
    assert r.verdict == "unreachable"
    assert lab.http("default/client", f"{empty.cluster_ip}:80").verdict in ("unreachable", "refused")


def test_a_node_port_from_outside_is_masqueraded_to_the_node(lab):
    api = _svc(lab, "api")
    node = lab.plan.node("kind-worker")
    r = lab.http("outside", f"{node.ip}:{api.ports[0].node_port}")
    assert r.verdict == "answered" and r.answered_by.startswith("default/api-")
    assert r.client_address.startswith("192.0.2.10:")
    # externalTrafficPolicy Cluster: MASQUERADE to the address of the link towards the pod,
    # the node's eth0 for a pod on another node, the pod veth's gateway address for a local one
    backend = lab.plan.pod(*r.answered_by.split("/"))
    expected = node.pod_gateway if backend.node == node.name else node.ip
    assert r.client_seen_as.split(":")[0] == expected


def test_conntrack_shows_the_dnat(lab):
    web = _svc(lab, "web")
    r = lab.http("default/client", f"{web.cluster_ip}:80")
    port = int(r.client_address.split(":")[1])
    [e] = [e for e in lab.conntrack("kind-worker") if e.orig.sport == port and e.proto == "tcp"]
    assert (e.orig.dst, e.orig.dport, e.reply.sport) == (web.cluster_ip, 80, 8080)
    assert lab.plan.owner_of(e.reply.src) == f"pod {r.answered_by}"


def test_rules_are_kube_proxys(lab):
    nat = lab.rules("kind-worker", "nat")
    assert "-A KUBE-SERVICES -d %s/32 -p tcp" % _svc(lab, "web").cluster_ip in nat
    assert "-j KIND-MASQ-AGENT" in nat


def test_the_host_is_not_touched(lab):
    from labkit.backends.netns.cleanup import lab_of_netns

    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"lk{lab.lab}-" not in host_links
    assert all(lab_of_netns(n) == lab.lab for n in lab.plan.netns_names())


def test_scale_down_resyncs_rules_and_removes_pods(lab):
    web = _svc(lab, "web")
    before = {p.meta.name for p in _pods(lab, "web")}
    lab.scale("deployment/web", 1)
    try:
        [left] = _pods(lab, "web")
        assert left.meta.name in before
        answers = {lab.http("default/client", f"{web.cluster_ip}:80").answered_by for _ in range(5)}
        assert answers == {f"default/{left.meta.name}"}
        from labkit.backends.netns.runner import list_netns

        names = set(list_netns())
        assert {f"lk{lab.lab}-pod-default.{n}" for n in before - {left.meta.name}} & names == set()
    finally:
        lab.scale("deployment/web", 3)
    assert len(_pods(lab, "web")) == 3
    assert lab.http("default/client", f"{web.cluster_ip}:80").verdict == "answered"


def test_another_process_continues_the_lab(lab):
    from labkit.backends.netns.lab import NetnsLab

    again = NetnsLab.attach(lab.lab)
    assert sorted(p.meta.name for p in again.pods()) == sorted(p.meta.name for p in lab.pods())
    assert [s.cluster_ip for s in again.services()] == [s.cluster_ip for s in lab.services()]


# --- the host, before and after ------------------------------------------------

def _host_snapshot() -> dict[str, str]:
    def run(*argv):
        return subprocess.run(list(argv), capture_output=True, text=True).stdout

    rules = "\n".join(line for line in run("iptables-save").splitlines() if not line.startswith("#"))
    rules = re.sub(r"\[\d+:\d+\]", "[_]", rules)  # packet counters move with the host's own traffic
    return {
        "ip addr": run("ip", "addr"), "ip route": run("ip", "route"), "ip rule": run("ip", "rule"),
        "iptables-save": rules, "nft list ruleset": run("nft", "list", "ruleset"),
        "sysctl ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }


@pytest.mark.labkit_requires(root=True, tools=TOOLS + ("nft",))
def test_a_lab_up_down_cycle_leaves_the_host_unchanged_and_nothing_behind():
    from labkit.backends.netns.lab import NetnsLab

    before = _host_snapshot()
    name = _name()
    lab = NetnsLab(name)
    try:
        lab.up(FIXTURE.read_text())
        assert lab.http("default/client", f"{_svc(lab, 'web').cluster_ip}:80").verdict == "answered"
    finally:
        lab.down()
    assert _leftovers(name) == []
    after = _host_snapshot()
    assert {k: v for k, v in after.items() if before[k] != v} == {}
    lab.down()  # idempotent
    assert _leftovers(name) == []


def _cli(*args):
    return [sys.executable, "-m", "labkit.cli.lab_cmds", *args]


def test_residue_loop_sigkill_during_up_then_down_leaves_nothing():
    """`labkit up` killed at a random moment (seeded), then `labkit down`: nothing left, 10 times."""
    rng = random.Random(4)
    stages = []
    for i in range(10):
        name = _name()
        p = subprocess.Popen(_cli("up", "--name", name, "-f", str(FIXTURE)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(rng.uniform(0.15, 0.9))  # python's start takes ~0.15 s; up ~0.4 s more
            p.send_signal(signal.SIGKILL)
            p.wait()
            stages.append(len(_leftovers(name)))
        finally:
            p.kill()
            p.wait()
            down = subprocess.run(_cli("down", "--name", name), capture_output=True, text=True)
        assert down.returncode == 0, down.stderr
        assert _leftovers(name) == [], f"round {i}"
    # the kills really did land at different moments: some rounds left things to clean
    assert any(stages), stages


def test_down_all_finds_a_lab_whose_state_was_lost():
    from labkit.backends.netns import cleanup
    from labkit.backends.netns.lab import NetnsLab

    name = _name()
    lab = NetnsLab(name)
    try:
        lab.up()
        subprocess.run(["rm", "-rf", f"/run/labkit/{name}"], check=True)  # as if it was lost mid-write
        assert name in cleanup.find_labs()
        report = cleanup.down_lab(name)
        assert len(report.namespaces) == 6 and report.processes == []
    finally:
        lab.down()
    assert _leftovers(name) == []


def test_the_node_network_bridge_keeps_its_address_when_ports_join(lab):
    """A bridge without an address of its own takes its ports' lowest MAC and changes it when the
    cloud's namespaces join; nodes that cached the gateway's MAC then lose replies for seconds."""
    from labkit.backends.netns.commands import bridge_mac

    def mac():
        out = lab.runner.run(["ip", "-n", lab.plan.network_netns, "-o", "link", "show",
                              lab.plan.bridge_name]).stdout
        return out.split("link/ether ", 1)[1].split()[0]

    assert mac() == bridge_mac(lab.plan.bridge_name)
    lab.enable_cloud()  # adds the NAT gateway's and the load balancer's ports to the bridge
    assert mac() == bridge_mac(lab.plan.bridge_name)
