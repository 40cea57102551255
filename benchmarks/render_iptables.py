"""How fast is the kube-proxy iptables renderer? 1k, 10k, 30k services x 10 endpoints.

Run: python benchmarks/render_iptables.py [sizes...]
Prints, per size: build-free render time, rules written and rules per second.
Goal: 10k services under 0.5 s on one core.
"""
from __future__ import annotations

import sys
import time

from labkit.controllers.kube_proxy.config import HostFeatures, KubeProxyConfig
from labkit.controllers.kube_proxy.iptables import render_iptables
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    Service,
    ServicePort,
)

ENDPOINTS_PER_SERVICE = 10


def make_cluster(n: int):
    services, slices = [], []
    for i in range(n):
        ns, name = f"ns{i % 50}", f"svc{i}"
        services.append(Service(
            meta=ObjectMeta(name=name, namespace=ns),
            ports=(ServicePort(port=80, name="http", target_port=8080),),
            cluster_ip=f"10.96.{i // 256 % 256}.{i % 256}"))
        base = i * ENDPOINTS_PER_SERVICE
        slices.append(EndpointSlice(
            meta=ObjectMeta(name=f"{name}-1", namespace=ns, labels={SERVICE_NAME_LABEL: name}),
            address_type="IPv4",
            endpoints=tuple(
                Endpoint(addresses=(f"10.{(base + k) // 65536 % 256}.{(base + k) // 256 % 256}."
                                    f"{(base + k) % 256}",),
                         node_name=f"node{k}")
                for k in range(ENDPOINTS_PER_SERVICE)),
            ports=(EndpointPort(port=8080, name="http"),)))
    return services, slices


def main(sizes: list[int]) -> None:
    config = KubeProxyConfig(cluster_cidr="10.0.0.0/8")
    print(f"{'services':>9} {'seconds':>8} {'rules':>9} {'rules/s':>10}")
    for n in sizes:
        services, slices = make_cluster(n)
        best = None
        for _ in range(3 if n <= 10000 else 1):
            start = time.perf_counter()
            result = render_iptables(services, slices, node_name="node0",
                                     config=config, host=HostFeatures())
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        rules = result.restore_text.count("\n-A ") + result.restore_text.startswith("-A ")
        print(f"{n:>9} {best:>8.3f} {rules:>9} {rules / best:>10.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000, 30000])
