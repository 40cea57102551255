"""A LabPlan as a dataplane Topology: the same namespaces, links, addresses and routes.

Both backends start from one LabPlan (labkit.topology.plan.build_plan): the
netns backend turns it into `ip` commands, this module into the simulation's
namespaces. Nothing is decided here that the plan has not decided, so the
two labs cannot drift apart. Pure: plan, rules and listeners in, Topology out.
"""
from __future__ import annotations

from typing import Mapping

from labkit.dataplane.routing import Address as DpAddress
from labkit.dataplane.topology import Topology
from labkit.topology.plan import LabPlan

FORWARDING_SYSCTL = "net.ipv4.ip_forward"


def build_topology(plan: LabPlan, rules: Mapping[str, str],
                   listeners: Mapping[str, set]) -> Topology:
    """The simulated lab for `plan`.

    rules:     {netns: iptables-restore text} (what the netns backend loads)
    listeners: {netns: {(proto, port)}} for pods; every other namespace
               listens on nothing, like a node or host with no server.
    """
    topo = Topology()
    for ns in plan.namespaces:
        forwarding = dict(ns.sysctls).get(FORWARDING_SYSCTL) == "1"
        topo.add_namespace(ns.name, forwarding=forwarding,
                           listeners=set(listeners.get(ns.name, ())))
    for b in plan.bridges:
        topo.add_bridge(b.netns, b.name)
    for v in plan.veths:
        topo.add_veth(v.netns, v.name, v.peer_netns, v.peer_name)
        if v.master:
            topo.set_master(v.netns, v.name, v.master)
    for a in plan.addresses:
        cidr = a.cidr
        if a.noprefixroute:
            # The dataplane makes a connected route for every address; an address
            # without its prefix route behaves, for routing, like the /32 alone.
            cidr = a.cidr.split("/")[0] + "/32"
        topo.add_address(a.netns, a.dev, cidr)
    for r in plan.routes:
        ns = topo.ns(r.netns)
        onlink = bool(r.via) and not any(
            addr.contains(r.via) for addr in ns.interfaces[r.dev].addresses)
        # a gateway reached through a `scope link` route (the ptp pod's case) is
        # accepted by the kernel; the dataplane spells that "onlink"
        topo.add_route(r.netns, r.dst, dev=r.dev, via=r.via or None, src=r.src or None,
                       onlink=onlink)
    for ns, text in rules.items():
        if text.strip():
            topo.set_rules(ns, text)
    return topo


def host_address(cidr: str) -> DpAddress:
    return DpAddress.parse(cidr)
