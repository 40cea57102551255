"""Does the kernel accept our kube-proxy rules? Load .full_text into a fresh netns.

Needs root and iptables-restore; skips with the reason otherwise. The
namespace is named lktest-kp-<random> and deleted in a finally.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections import Counter

import pytest

from kube_proxy_fixtures import (
    TEST_LOCAL_ADDRESSES,
    TEST_NODE_IP,
    TEST_NODE_IPV6,
    TEST_NODE_NAME,
    ep,
    eport,
    lb,
    make_service,
    make_slice,
    port,
)
from labkit.controllers.kube_proxy.config import HostFeatures, KubeProxyConfig
from labkit.controllers.kube_proxy.iptables import render_iptables


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install iptables iproute2)")


def rich_cluster():
    """Every kind of service kube-proxy handles."""
    services = [
        make_service("default", "web", cluster_ip="10.96.0.10", ports=[port("http", 80)],
                     session_affinity="ClientIP"),
        make_service("default", "dns", cluster_ip="10.96.0.53",
                     ports=[port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP"),
                            port("sctp", 9999, "SCTP")]),
        make_service("default", "np", type="NodePort", cluster_ip="10.96.1.1",
                     ports=[port("http", 80, node_port=30080)], external_ips=("192.0.2.10",)),
        make_service("default", "lb-local", type="LoadBalancer", cluster_ip="10.96.1.2",
                     ports=[port("http", 80, node_port=30081)], external_traffic_policy="Local",
                     health_check_node_port=32000, load_balancer_ingress=lb("203.0.113.5"),
                     load_balancer_source_ranges=("198.51.100.0/24", "172.18.0.0/16")),
        make_service("default", "lb-none", type="LoadBalancer", cluster_ip="10.96.1.3",
                     ports=[port("http", 80, node_port=30082)], external_traffic_policy="Local",
                     health_check_node_port=32001, load_balancer_ingress=lb("203.0.113.6")),
        make_service("default", "itp", cluster_ip="10.96.1.4", ports=[port("http", 80)],
                     internal_traffic_policy="Local"),
        make_service("default", "empty", cluster_ip="10.96.1.5", ports=[port("http", 80)],
                     external_ips=("192.0.2.11",)),
    ]
    slices = [
        make_slice("default", "web", 1, [ep("10.244.1.2", TEST_NODE_NAME), ep("10.244.2.2", "n2")],
                   [eport("http", 8080)]),
        make_slice("default", "dns", 1, [ep("10.244.1.3", TEST_NODE_NAME)],
                   [eport("dns", 53, "UDP"), eport("dns-tcp", 53, "TCP"), eport("sctp", 9999, "SCTP")]),
        make_slice("default", "np", 1, [ep("10.244.2.4", "n2")], [eport("http", 80)]),
        make_slice("default", "lb-local", 1, [ep("10.244.1.5", TEST_NODE_NAME),
                                              ep("10.244.2.5", "n2", False, True, True)],
                   [eport("http", 80)]),
        make_slice("default", "lb-none", 1, [ep("10.244.2.6", "n2")], [eport("http", 80)]),
        make_slice("default", "itp", 1, [ep("10.244.2.7", "n2")], [eport("http", 80)]),
    ]
    return services, slices


def _chain_rule_counts(text: str) -> dict[tuple[str, str], int]:
    counts: Counter = Counter()
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            counts[(table, line[1:].split()[0])] += 0
        elif line.startswith("-A "):
            counts[(table, line.split()[1])] += 1
    return dict(counts)


def test_kernel_accepts_full_text_and_keeps_every_rule():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    _need("ip")
    _need("iptables-restore")
    _need("iptables-save")
    services, slices = rich_cluster()
    result = render_iptables(
        services, slices, node_name=TEST_NODE_NAME, node_ips=(TEST_NODE_IP, TEST_NODE_IPV6),
        local_addresses=TEST_LOCAL_ADDRESSES,
        config=KubeProxyConfig(cluster_cidr="10.244.0.0/16"), host=HostFeatures())
    ns = f"lktest-kp-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        load = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"],
                              input=result.full_text, text=True, capture_output=True)
        assert load.returncode == 0, load.stderr
        saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], text=True,
                               capture_output=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
    assert _chain_rule_counts(saved) == _chain_rule_counts(result.full_text)
    # Spot-check that the kernel kept what matters, in its own spelling.
    assert "-j DNAT --to-destination 10.244.1.2:8080" in saved
    assert "--probability 0.50000000000" in saved
    assert "-j MASQUERADE --random-fully" in saved
