"""The cloud around the cluster, as iptables-restore text: a 1:1 NAT gateway and an L4 load balancer.

Pure: the plan (which must have been built with cloud=True) and the cluster
state in, one restore text per namespace out. Both backends load the same
text (the kernel with iptables-restore, the simulation with its interpreter).

NAT gateway ("<prefix>-natgw"), like a cloud's public-IP NAT: every node's
private address has one public address (172.18.0.3 <-> 198.51.100.3); a
packet leaving for the internet from a node gets its public source address
(SNAT), one arriving for a public address goes to its node (DNAT); anything
else leaving for the internet is dropped -- a pod's own address (10.244.x.y)
means nothing to the cloud, which is why the node must masquerade it first.

Load balancer ("<prefix>-lb"), like a classic L4 cloud load balancer in
front of NodePorts: for each LoadBalancer Service port with an ingress
address, connections to ADDRESS:PORT are spread over node:nodePort with
`-m statistic` (one DNAT per healthy node, the same arithmetic kube-proxy
uses for endpoints). The client's address is kept (DNAT only). The cloud
enforces loadBalancerSourceRanges at the load balancer (its firewall, as
cloud providers turn the field into security rules); kube-proxy enforces
the same ranges on the nodes for traffic addressed to the ingress IP
(KUBE-FW-* and KUBE-PROXY-FIREWALL), e.g. from pods.
"""
from __future__ import annotations

from hashlib import sha256

from labkit.controllers.loadbalancer import load_balancer_targets
from labkit.errors import LabkitError
from labkit.topology.plan import LabPlan

LB_CHAIN_PREFIX = "CLOUD-LB-"
FW_CHAIN_PREFIX = "CLOUD-FW-"


def _require_cloud(plan: LabPlan):
    if plan.cloud is None:
        raise LabkitError("this lab plan has no cloud (a labkit bug: build the plan with cloud=True)")
    return plan.cloud


def render_nat_gateway_rules(plan: LabPlan) -> str:
    """The NAT gateway's nat and filter tables."""
    cloud = _require_cloud(plan)
    out_dev = cloud.natgw_internet_dev
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    filt = ["*filter", ":FORWARD ACCEPT [0:0]",
            "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    for node, private, public in cloud.public:
        nat.append(f"-A PREROUTING -d {public}/32 -i {out_dev} -m comment --comment "
                   f'"cloud NAT: public address of node {node}" -j DNAT --to-destination {private}')
    for node, private, public in cloud.public:
        nat.append(f"-A POSTROUTING -s {private}/32 -o {out_dev} -m comment --comment "
                   f'"cloud NAT: node {node} leaves as {public}" -j SNAT --to-source {public}')
        filt.append(f"-A FORWARD -s {private}/32 -o {out_dev} -j ACCEPT")
    filt.append(f"-A FORWARD -o {out_dev} -m comment --comment "
                '"cloud NAT: the source is not a node address, so it has no public address" -j DROP')
    return "\n".join(nat + ["COMMIT"] + filt + ["COMMIT"]) + "\n"


def lb_chain_name(namespace: str, name: str, port_name: str, protocol: str) -> str:
    digest = sha256(f"{namespace}/{name}:{port_name}{protocol.lower()}".encode()).hexdigest().upper()
    return LB_CHAIN_PREFIX + digest[:16]


def render_load_balancer_rules(plan: LabPlan, state) -> str:
    """The load balancer's mangle (source ranges) and nat (spreading) tables."""
    _require_cloud(plan)
    nodes = [(n.name, n.ip) for n in plan.nodes]
    mangle_chains = [":PREROUTING ACCEPT [0:0]"]
    mangle: list[str] = []
    nat_chains = [":PREROUTING ACCEPT [0:0]"]
    nat_rules: list[str] = []
    for svc in sorted(state.services, key=lambda s: (s.meta.namespace, s.meta.name)):
        if svc.type != "LoadBalancer" or not svc.load_balancer_ingress:
            continue
        targets = load_balancer_targets(state, svc, nodes)
        for sp in svc.ports:
            if not sp.node_port:
                continue
            proto = sp.protocol.lower()
            label = f"{svc.meta.namespace}/{svc.meta.name}" + (f":{sp.name}" if sp.name else "")
            chain = lb_chain_name(svc.meta.namespace, svc.meta.name, sp.name, proto)
            fw_chain = FW_CHAIN_PREFIX + chain[len(LB_CHAIN_PREFIX):]
            if svc.load_balancer_source_ranges:
                mangle_chains.append(f":{fw_chain} - [0:0]")
            for ing in svc.load_balancer_ingress:
                if not ing.ip:
                    continue
                match = f"-d {ing.ip}/32 -p {proto} -m {proto} --dport {sp.port}"
                if svc.load_balancer_source_ranges:
                    mangle.append(f"-A PREROUTING {match} -m comment --comment "
                                  f'"{label} loadBalancerSourceRanges" -j {fw_chain}')
                if not targets:
                    mangle.append(f"-A PREROUTING {match} -m comment --comment "
                                  f'"{label} has no healthy node" -j DROP')
                    continue
                nat_rules.append(f"-A PREROUTING {match} -m comment --comment "
                                 f'"{label} load balancer" -j {chain}')
            if svc.load_balancer_source_ranges:
                for cidr in svc.load_balancer_source_ranges:
                    mangle.append(f"-A {fw_chain} -s {cidr} -m comment --comment "
                                  f'"{label} allowed by loadBalancerSourceRanges" -j RETURN')
                mangle.append(f"-A {fw_chain} -m comment --comment "
                              f'"{label} source not in loadBalancerSourceRanges" -j DROP')
            if not targets:
                continue
            nat_chains.append(f":{chain} - [0:0]")
            n = len(targets)
            for i, (node, ip) in enumerate(targets):
                spread = "" if i == n - 1 else f" -m statistic --mode random --probability {1.0 / (n - i):0.10f}"
                nat_rules.append(f'-A {chain} -p {proto} -m comment --comment "{label} -> {node}"{spread}'
                                 f" -j DNAT --to-destination {ip}:{sp.node_port}")
    return "\n".join(["*mangle"] + mangle_chains + mangle + ["COMMIT", "*nat"] + nat_chains + nat_rules
                     + ["COMMIT"]) + "\n"
