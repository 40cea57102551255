"""Each lab namespace's complete iptables-restore input (pure: plan + cluster state -> text).

A node gets its NetworkPolicy filter rules (when the cluster has policies;
ahead of everything else in filter, see merge_policy_first), then
kube-proxy's rules for that node (from the renderer, unchanged), then
kindnet's masquerade rules; the net namespace gets the docker
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
        out[n.netns] = merge_policy_first(render_network_policy_rules(state, n.name),
                                          merge_restore_texts(*texts))
    if plan.cloud is None:
        out[plan.network_netns] = render_network_masquerade(plan.node_network, plan.bridge_name)
    else:
        out[plan.network_netns] = EMPTY_NAT
        out[plan.cloud.natgw_netns] = render_nat_gateway_rules(plan)
        out[plan.cloud.lb_netns] = render_load_balancer_rules(plan, state)
    return out


# --- NetworkPolicy: the policy agent's filter rules, ahead of kube-proxy's ------------------


EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def render_network_policy_rules(state, node: str) -> str:
    """The node's NetworkPolicy filter table (labkit.controllers.netpol.render), or "" when the
    cluster has no NetworkPolicy at all (the node's filter table is then kube-proxy's alone)."""
    from labkit.controllers.netpol import build_cluster
    from labkit.controllers.netpol.render import render_netpol_iptables

    if not state.network_policies:
        return ""
    return render_netpol_iptables(build_cluster(state.objects()), node)


def merge_policy_first(policy_text: str, lab_text: str) -> str:
    """`lab_text` with the policy text's filter chains and rules put in front of its own filter rules.

    The policy's jumps must come first in INPUT and FORWARD, as Calico and kube-router insert
    theirs at the top: kube-proxy's KUBE-FORWARD accepts masquerade-marked packets (a NodePort
    connection), which would otherwise never meet the policy. The other tables keep their order.
    Without policies the filter table is still named (empty if kube-proxy has none), so loading
    the text removes the rules of a policy just deleted.
    """
    if not policy_text:
        return lab_text if "*filter" in lab_text.splitlines() else merge_restore_texts(EMPTY_FILTER, lab_text)
    if "*filter" not in lab_text.splitlines():
        return merge_restore_texts(lab_text, policy_text)
    policy_lines = [ln for ln in policy_text.splitlines() if ln and ln not in ("*filter", "COMMIT")]
    decls = [ln for ln in policy_lines if ln.startswith(":")]
    rules = [ln for ln in policy_lines if not ln.startswith(":")]
    out: list[str] = []
    table = None
    for line in lab_text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            out.append(line)
            continue
        if table == "filter" and decls is not None and not line.startswith(":"):
            have = {ln[1:].split()[0] for ln in out if ln.startswith(":")}
            out += [d for d in decls if d[1:].split()[0] not in have]
            out += rules
            decls = None
        out.append(line)
    return "\n".join(out) + "\n"
