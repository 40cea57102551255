"""The sim against the real kernel: same rules, same packets, same trace lines.

Needs root, iproute2, iptables (nf_tables) and xtables-monitor; skips with a
reason otherwise. Namespaces are named lktest-dp-* and deleted in a finally.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from labkit.dataplane.iptables_parse import parse_iptables_restore
from labkit.dataplane.packet import tcp_syn
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.trace import parse_xtables_monitor, render_trace
from labkit.dataplane.walk import walk_packet

FIXTURES = Path(__file__).parent / "dataplane_fixtures"
TOOLS = ("ip", "iptables-restore", "iptables-save", "xtables-monitor")


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install iproute2 iptables)"
    out = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout
    if "nf_tables" not in out:
        return f"iptables is not the nf_tables variant ({out.strip()})"
    return ""


pytestmark = pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "ok")


def sh(*args: str, input: str | None = None) -> str:
    return subprocess.run(args, input=input, capture_output=True, text=True, check=True).stdout


def test_canonical_text_equals_iptables_save():
    ns = f"lktest-dp-save{os.getpid()}"
    text = (FIXTURES / "tracepacket.rules").read_text()
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "netns", "exec", ns, "iptables-restore", input=text)
        saved = sh("ip", "netns", "exec", ns, "iptables-save")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    kernel = [l for l in saved.splitlines() if l.startswith("-A ")]
    ours = [l for l in parse_iptables_restore(text).render().splitlines() if l.startswith("-A ")]
    assert sorted(ours) == sorted(kernel)


SCRIPT = """
import socket, sys
s = socket.socket(); s.settimeout(0.5); s.bind((sys.argv[1], int(sys.argv[2])))
try:
    s.connect((sys.argv[3], int(sys.argv[4])))
except OSError:
    pass
"""


def test_sim_trace_equals_kernel_trace():
    tag = str(os.getpid())[-5:]
    n, c, p = f"lktest-dp-n{tag}", f"lktest-dp-c{tag}", f"lktest-dp-p{tag}"
    rules = (FIXTURES / "kernel_compare.rules").read_text()
    monitor = None
    try:
        for x in (n, c, p):
            sh("ip", "netns", "add", x)
        sh("ip", "link", "add", f"lkn{tag}", "netns", n, "type", "veth", "peer", "name", "eth0",
           "netns", c)
        sh("ip", "link", "add", f"lkp{tag}", "netns", n, "type", "veth", "peer", "name", "eth0",
           "netns", p)
        for x, dev, addr in ((n, f"lkn{tag}", "192.168.0.1/24"), (n, f"lkp{tag}", "10.0.1.1/24"),
                             (c, "eth0", "192.168.0.5/24"), (p, "eth0", "10.0.1.2/24")):
            sh("ip", "-n", x, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", x, "link", "set", dev, "up")
            sh("ip", "-n", x, "link", "set", "lo", "up")
        sh("ip", "-n", c, "route", "add", "default", "via", "192.168.0.1")
        sh("ip", "-n", p, "route", "add", "default", "via", "10.0.1.1")
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", n, "iptables-restore", input=rules)
        monitor = subprocess.Popen(["ip", "netns", "exec", n, "xtables-monitor", "--trace"],
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        listener = subprocess.Popen(["ip", "netns", "exec", p, "python3", "-c",
                                     "import socket,time; s=socket.socket(); "
                                     "s.bind(('0.0.0.0',80)); s.listen(); time.sleep(2)"])
        time.sleep(0.3)
        sh("ip", "netns", "exec", c, "python3", "-c", SCRIPT, "192.168.0.5", "40000",
           "172.30.0.41", "80")
        sh("ip", "netns", "exec", c, "python3", "-c", SCRIPT, "192.168.0.5", "40001",
           "172.30.0.46", "80")
        time.sleep(0.5)
        listener.wait(timeout=5)
    finally:
        if monitor is not None:
            monitor.terminate()
        for x in (n, c, p):
            subprocess.run(["ip", "netns", "del", x], capture_output=True)
    kernel_out = monitor.communicate(timeout=5)[0]
    kernel = [lines for _, lines in parse_xtables_monitor(kernel_out)]

    topo = Topology()
    topo.add_namespace("client")
    topo.add_namespace("node", forwarding=True, rules=rules)
    topo.add_namespace("pod", listeners={("tcp", 80)})
    topo.add_veth("client", "eth0", "node", f"lkn{tag}")
    topo.add_veth("pod", "eth0", "node", f"lkp{tag}")
    topo.add_address("node", f"lkn{tag}", "192.168.0.1/24")
    topo.add_address("node", f"lkp{tag}", "10.0.1.1/24")
    topo.add_address("client", "eth0", "192.168.0.5/24")
    topo.add_address("pod", "eth0", "10.0.1.2/24")
    topo.add_route("client", "default", via="192.168.0.1")
    topo.add_route("pod", "default", via="10.0.1.1")
    state = LabState()
    syn = walk_packet(topo, state, "client", tcp_syn("192.168.0.5", "172.30.0.41", 40000, 80),
                      branch=[False], trace_all=False)
    rej = walk_packet(topo, state, "client", tcp_syn("192.168.0.5", "172.30.0.46", 40001, 80),
                      trace_all=False)
    sim_syn = render_trace(syn.trace).splitlines()
    sim_rej = render_trace(rej.trace).splitlines()
    assert sim_syn in kernel, f"kernel traces:\n{kernel_out}\nsim:\n" + "\n".join(sim_syn)
    assert sim_rej in kernel, f"kernel traces:\n{kernel_out}\nsim:\n" + "\n".join(sim_rej)
