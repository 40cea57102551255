"""Each lab namespace's complete iptables-restore input (pure: plan + cluster state -> text).

A node gets kube-proxy's rules for that node (from the renderer, unchanged)
followed by kindnet's masquerade rules; the net namespace gets the docker
host's MASQUERADE. Each text is loaded with ONE `iptables-restore` (without
--noflush: the tables named are replaced whole, so a re-sync never leaves a
stale rule behind).
"""
from __future__ import annotations

from labkit.errors import LabkitError
from labkit.topology.cloud import render_load_balancer_rules, render_nat_gateway_rules
from labkit.topology.masquerade import (
    MasqueradeSettings,
    merge_restore_texts,
    render_kindnet_masquerade,
    render_network_masquerade,
)
from labkit.topology.plan import LabPlan


def render_kube_proxy_rules(plan: LabPlan, state, node: str) -> str:
    """kube-proxy's iptables rules for `node`, as the renderer makes them."""
    from labkit.controllers.kube_proxy.config import KubeProxyConfig
    from labkit.controllers.kube_proxy.iptables import render_iptables

    mode = plan.topology.kube_proxy_mode
    if mode == "none":
        return ""
    if mode != "iptables":
        raise LabkitError(f"the kernel lab loads kube-proxy's iptables rules; kubeProxyMode {mode!r} "
                          "is not supported yet (fix: set networking.kubeProxyMode: iptables)")
    n = plan.node(node)
    ruleset = render_iptables(
        state.services,
        state.endpoint_slices,
        node_name=node,
        node_ips=[n.ip],
        config=KubeProxyConfig(cluster_cidr=plan.topology.pod_subnet),
    )
    return ruleset.full_text


EMPTY_NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"


def render_lab_rules(plan: LabPlan, state, masquerade: MasqueradeSettings = MasqueradeSettings()) -> dict[str, str]:
    """{netns: iptables-restore text} for every node and the net namespace (and the cloud's, if any).

    With a cloud, the net namespace only routes (its docker-style MASQUERADE
    would hide the very thing the NAT gateway story shows), so it gets an
    empty nat table: loading it replaces whatever was there.
    """
    out = {}
    for n in plan.nodes:
        texts = [render_kube_proxy_rules(plan, state, n.name)]
        if masquerade.enabled:
            texts.append(render_kindnet_masquerade(plan.topology.pod_subnet, masquerade.non_masquerade_cidrs))
        out[n.netns] = merge_restore_texts(*texts)
    if plan.cloud is None:
        out[plan.network_netns] = render_network_masquerade(plan.node_network, plan.bridge_name)
    else:
        out[plan.network_netns] = EMPTY_NAT
        out[plan.cloud.natgw_netns] = render_nat_gateway_rules(plan)
        out[plan.cloud.lb_netns] = render_load_balancer_rules(plan, state)
    return out
