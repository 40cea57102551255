"""Capture real iptables-save, conntrack and xtables-monitor output from the kernel lab (run as root).

    sudo python tests/kind_recordings/capture_from_kernel_lab.py

The kind backend reads these programs' output from node containers; no kind
cluster runs on the project's machines, so its parser tests use the same
programs' output captured here, from labkit's kernel lab (the netns backend:
real namespaces, real iptables nf_tables, real conntrack), with the course
workload of manifests.yaml. Each capture runs the same program a kind node
would run, in the namespace that plays the node:

  node-kind-worker.iptables-save   iptables-save                     (kind-worker)
  node-kind-worker-nat.iptables-save  iptables-save -t nat           (kind-worker)
  worker-syn.conntrack             conntrack -L, after two SYNs from default/client to 10.96.0.80:80
  worker-syn.conntrack-extended    conntrack -L -o extended, the same moment
  control-plane-syn.conntrack      conntrack -L, after one SYN from the node kind-control-plane itself
  worker-trace.xtables-monitor     xtables-monitor --trace of one SYN, with the kind backend's TRACE rule
  worker-trace.iptables-save       iptables-save while that TRACE rule is out again
  empty.conntrack                  conntrack -L on a node that has seen nothing (kind-worker2)
  unprivileged.conntrack           conntrack -L there as user nobody (what a node says without CAP_NET_ADMIN)
(`.stderr` files hold what the program printed there.)

The client ports are the kind recordings' (Random("0:probes")), and the kernel's
random endpoint choice is retried (deleting the entry with `conntrack -D`) until it
is the one the recordings name, so re-capturing gives the same connections.
versions.txt records the kernel and tool versions and the date.
"""
from __future__ import annotations

import datetime
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "captured"
LAB = "kcap"
TRIES = 40


def sports(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(f"{seed}:probes")
    return [rng.randrange(32768, 61000) for _ in range(n)]


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {ns} failed: {p.stderr}")
    return p


def save(name: str, p: subprocess.CompletedProcess) -> None:
    (OUT / name).write_text(p.stdout)
    if p.stderr:
        (OUT / f"{name}.stderr").write_text(p.stderr)


def reply_src(ns: str, sport: int) -> str:
    """The endpoint the node's conntrack entry for client port `sport` was DNATed to."""
    out = in_ns(ns, "conntrack", "-L", "-p", "tcp", "--orig-port-src", str(sport), check=False).stdout
    for line in out.splitlines():
        srcs = [w[4:] for w in line.split() if w.startswith("src=")]
        if len(srcs) == 2:
            return srcs[1]
    return ""


def syn_to(node_ns: str, src_ns: str, src_ip: str, sport: int, want: str) -> None:
    """One SYN to the ClusterIP from `src_ip`:`sport`, retried until the kernel picks `want`."""
    from labkit.backends.netns.probes import syn_probe

    for _ in range(TRIES):
        o = syn_probe(src_ns, src_ip, "10.96.0.80", 80, sport, 1.0)
        if o.answer == "syn-ack" and reply_src(node_ns, sport) == want:
            return
        in_ns(node_ns, "conntrack", "-D", "-p", "tcp", "--orig-port-src", str(sport), check=False)
    raise SystemExit(f"the kernel never sent client port {sport} to {want}")


def trace(node_ns: str, src_ns: str, src_ip: str, sport: int, want: str) -> tuple[str, str, str]:
    """xtables-monitor --trace of one SYN, with exactly the rule the kind backend inserts."""
    from labkit.backends.netns.probes import syn_probe

    match = ["-p", "tcp", "--sport", str(sport), "--dport", "80", "-j", "TRACE"]
    for _ in range(TRIES):
        mon = subprocess.Popen(["ip", "netns", "exec", node_ns, "xtables-monitor", "--trace"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            in_ns(node_ns, "iptables", "-t", "raw", "-I", "PREROUTING", "1", *match)
            time.sleep(0.3)
            syn_probe(src_ns, src_ip, "10.96.0.80", 80, sport, 1.0)
            time.sleep(0.3)
        finally:
            in_ns(node_ns, "iptables", "-t", "raw", "-D", "PREROUTING", *match, check=False)
            mon.terminate()
            out, err = mon.communicate(timeout=5)
        got = reply_src(node_ns, sport)
        in_ns(node_ns, "conntrack", "-D", "-p", "tcp", "--orig-port-src", str(sport), check=False)
        if got == want:
            return out, err, in_ns(node_ns, "iptables-save").stdout
    raise SystemExit(f"the kernel never sent client port {sport} to {want}")


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the kernel lab makes network namespaces")
    sys.path.insert(0, str(HERE.parent.parent))
    from labkit.backends.netns.lab import NetnsLab

    OUT.mkdir(exist_ok=True)
    a, b = sports(2)
    lab = NetnsLab(LAB)
    lab.up((HERE / "manifests.yaml").read_text(), "manifests.yaml")
    try:
        ns = {n.name: n.netns for n in lab.plan.nodes}
        client = lab.endpoint("default/client")
        worker, cp = ns["kind-worker"], ns["kind-control-plane"]
        save("node-kind-worker.iptables-save", in_ns(worker, "iptables-save"))
        save("node-kind-worker-nat.iptables-save", in_ns(worker, "iptables-save", "-t", "nat"))
        save("empty.conntrack", in_ns(ns["kind-worker2"], "conntrack", "-L", check=False))
        p = in_ns(ns["kind-worker2"], "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "conntrack", "-L", check=False)
        save("unprivileged.conntrack", p)
        (OUT / "unprivileged.conntrack.returncode").write_text(f"{p.returncode}\n")
        # the probe_syn recording: A to web on kind-worker2 (10.244.2.3), B to web on kind-worker (10.244.1.3)
        for n in ns.values():
            in_ns(n, "conntrack", "-F", check=False)
        syn_to(worker, client.netns, client.ip, a, "10.244.2.3")
        syn_to(worker, client.netns, client.ip, b, "10.244.1.3")
        save("worker-syn.conntrack", in_ns(worker, "conntrack", "-L", check=False))
        save("worker-syn.conntrack-extended", in_ns(worker, "conntrack", "-L", "-o", "extended", check=False))
        # the node_probe recording: the node itself sends (kube-proxy masquerades it)
        node = lab.endpoint("kind-control-plane")
        syn_to(cp, node.netns, node.ip, a, "10.244.1.3")
        save("control-plane-syn.conntrack", in_ns(cp, "conntrack", "-L", check=False))
        # the trace recording: one SYN from the client, port A, DNATed to 10.244.2.3
        in_ns(worker, "conntrack", "-F", check=False)
        out, err, after = trace(worker, client.netns, client.ip, a, "10.244.2.3")
        (OUT / "worker-trace.xtables-monitor").write_text(out)
        if err:
            (OUT / "worker-trace.xtables-monitor.stderr").write_text(err)
        (OUT / "worker-trace.iptables-save").write_text(after)
        def version(*argv: str) -> str:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip()

        versions = [
            f"captured: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"kernel: {platform.release()}",
            f"iptables: {version('iptables', '--version')}",
            f"conntrack: {version('conntrack', '--version')}",
            f"xtables-monitor: {version('xtables-monitor', '--version')}",
            f"client ports: {a}, {b}",
        ]
        (OUT / "versions.txt").write_text("\n".join(versions) + "\n")
    finally:
        lab.down()
    print(f"captured into {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
