"""Benchmark: trace one packet through the kube-proxy rules of 10k services.

Renders the rules with labkit's kube-proxy renderer (10,000 ClusterIP
services, 1-3 endpoints each, about 50k rules), walks new TCP packets to
random services in a one-namespace node (PREROUTING, routing, FORWARD,
POSTROUTING with conntrack and the full trace), and prints the median time
per packet with the chain index, without it (a plain linear interpreter),
and the ratio.

    python benchmarks/trace_packet.py [--services N] [--packets N]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from labkit.controllers.kube_proxy.config import KubeProxyConfig
from labkit.controllers.kube_proxy.iptables import render_iptables
from labkit.dataplane.iptables_parse import parse_iptables_restore
from labkit.dataplane.netfilter import CompiledRuleset
from labkit.dataplane.packet import int_ip, ip_int, tcp_syn
from labkit.dataplane.topology import LabState, Topology
from labkit.dataplane.walk import walk_packet
from labkit.model.objects import (SERVICE_NAME_LABEL, Endpoint, EndpointPort, EndpointSlice,
                                  ObjectMeta, Service, ServicePort)

SERVICE_BASE = ip_int("10.96.0.0") + 10
POD_BASE = ip_int("10.244.0.0") + 2


def make_cluster(n: int, rng: random.Random):
    services, slices, targets = [], [], []
    pod = POD_BASE
    for i in range(n):
        ip = int_ip(SERVICE_BASE + i)
        name = f"svc-{i}"
        services.append(Service(meta=ObjectMeta(name=name, namespace="bench"),
                                ports=(ServicePort(port=80, name="http", target_port=8080),),
                                cluster_ip=ip))
        k = rng.choice((1, 1, 1, 2, 3))
        eps = []
        for _ in range(k):
            eps.append(Endpoint(addresses=(int_ip(pod),), node_name="node-1"))
            pod += 1
        slices.append(EndpointSlice(
            meta=ObjectMeta(name=f"{name}-1", namespace="bench",
                            labels={SERVICE_NAME_LABEL: name}),
            address_type="IPv4", endpoints=tuple(eps),
            ports=(EndpointPort(port=8080, name="http"),)))
        targets.append(ip)
    return services, slices, targets


def node(crs: CompiledRuleset) -> Topology:
    t = Topology()
    t.add_namespace("node", forwarding=True, rules=crs)
    t.add_external("node", "eth0")
    t.add_address("node", "eth0", "172.18.0.2/16")
    t.add_route("node", "default", dev="eth0")
    return t


def measure(topo: Topology, targets: list[str], packets: int, seed: int) -> tuple[float, list]:
    rng = random.Random(seed)
    times, verdicts = [], []
    for i in range(packets):
        dst = targets[rng.randrange(len(targets))]
        pkt = tcp_syn("10.244.200.7", dst, 20000 + i % 40000, 80)
        t0 = time.perf_counter()
        w = walk_packet(topo, LabState(), "node", pkt, ingress="eth0", rng=rng)
        times.append(time.perf_counter() - t0)
        verdicts.append((w.verdict, w.packet.dst))
    return statistics.median(times), verdicts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--packets", type=int, default=2000)
    ap.add_argument("--linear-packets", type=int, default=200)
    args = ap.parse_args(argv)

    rng = random.Random(1)
    t0 = time.perf_counter()
    services, slices, targets = make_cluster(args.services, rng)
    text = render_iptables(services, slices, node_name="node-1", node_ips=("172.18.0.2",),
                           config=KubeProxyConfig(cluster_cidr="10.244.0.0/16")).full_text
    t1 = time.perf_counter()
    ruleset = parse_iptables_restore(text)
    t2 = time.perf_counter()
    print(f"{args.services} services: {ruleset.rule_count()} rules "
          f"(render {t1 - t0:.2f} s, parse+compile {t2 - t1:.2f} s)")

    indexed = node(CompiledRuleset(ruleset, use_index=True))
    linear = node(CompiledRuleset(ruleset, use_index=False))
    measure(indexed, targets, 50, 99)  # build indexes, warm caches
    fast, v_fast = measure(indexed, targets, args.packets, 7)
    slow, v_slow = measure(linear, targets, args.linear_packets, 7)
    assert v_fast[:args.linear_packets] == v_slow, "index and linear scan disagree"
    delivered = sum(1 for v, dst in v_fast if v == "left the lab" and dst.startswith("10.244."))
    print(f"indexed: median {fast * 1e3:.3f} ms per packet over {args.packets} packets "
          f"({delivered} DNATed to an endpoint)")
    print(f"linear:  median {slow * 1e3:.3f} ms per packet over {args.linear_packets} packets")
    print(f"ratio linear/indexed: {slow / fast:.1f}x; goal < 1 ms: "
          f"{'met' if fast < 1e-3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
