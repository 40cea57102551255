"""Explorers for traffic that crosses the cluster's edge: egress (05.00) and NodePorts (06.00).

    masquerade_switch(lab)                  masquerade on/off and nonMasqueradeCIDRs; see who sees whom
    policy_switch(lab, service)             flip a Service's externalTrafficPolicy; see every node answer (or not)

As in labkit.viz.widgets, the render_* functions hold everything but the
widgets (they probe the lab and return text), so they are tested without a
browser, and results show in an HTML <pre>.
"""
from __future__ import annotations

from typing import Optional, Sequence

from labkit.checks import facts
from labkit.viz.widgets import _pre

CLIENT = "default/client"


def _other_node_pod(lab, client: str = CLIENT):
    me = facts.pod(lab, client)
    for p in sorted(lab.pods(), key=lambda p: p.meta.name):
        if p.node_name != me.node_name and p.pod_ip and not p.host_network and p.meta.namespace == "default":
            return p
    return None


def render_egress(lab, client: str = CLIENT) -> str:
    """What the internet host and a pod on another node see of `client`, and the node's masquerade rules."""
    internet = dict(facts.outside_hosts(lab))["internet"]
    me = facts.pod(lab, client)
    lines = [f"{client} is {me.pod_ip} on {me.node_name}", ""]
    r = lab.http(client, f"{internet}:80", "/clientip")
    lines.append(f"to the internet host {internet}:80   "
                 + (f"answered; it saw the client as {r.body}" if r.ok else f"{r.verdict}"))
    other = _other_node_pod(lab, client)
    if other is not None:
        port = other.containers[0].ports[0].container_port if other.containers[0].ports else 8080
        r = lab.http(client, f"{other.pod_ip}:{port}", "/clientip")
        lines.append(f"to pod {other.meta.name} on {other.node_name}   "
                     + (f"answered; it saw the client as {r.body}" if r.ok else f"{r.verdict}"))
    masq = [l for l in lab.rules(me.node_name).splitlines() if "KIND-MASQ-AGENT" in l and l.startswith("-A")]
    lines += ["", f"{me.node_name}'s masquerade rules:"] + (masq or ["  (none)"])
    return "\n".join(lines)


def masquerade_switch(lab, client: str = CLIENT):
    """A checkbox for kindnet's masquerade and a text box for its non-masquerade CIDRs."""
    import ipywidgets as w

    on = w.Checkbox(value=lab.network.masquerade.enabled, description="masquerade")
    cidrs = lab.network.masquerade.non_masquerade_cidrs
    box = w.Text(value=", ".join(cidrs) if cidrs else "10.244.0.0/16", description="no masq. to")
    button = w.Button(description="apply")
    out = w.HTML()

    def apply(_=None):
        try:
            wanted = [c.strip() for c in box.value.split(",") if c.strip()]
            lab.set_masquerade(on.value, wanted)
            out.value = _pre(render_egress(lab, client))
        except Exception as e:  # a typo in a CIDR: say so, keep the widget alive
            out.value = _pre(f"could not apply: {e}")

    button.on_click(apply)
    out.value = _pre(render_egress(lab, client))
    return w.VBox([w.HBox([on, box, button]), out])


def render_nodeports(lab, services: Sequence[str], source: str = "outside",
                     nodes: Optional[Sequence[str]] = None) -> str:
    """One line per node and Service: what `source` gets from NODE_IP:NODEPORT, and who answered
    seeing which client address."""
    rows = []
    node_list = [(n, ip) for n, ip in facts.nodes(lab) if nodes is None or n in nodes]
    for key in services:
        svc = facts.service(lab, key)
        port = svc.ports[0].node_port
        rows.append(f"Service {key}: NodePort {port}, externalTrafficPolicy {svc.external_traffic_policy}")
        for name, ip in node_list:
            r = lab.http(source, f"{ip}:{port}")
            if r.ok:
                rows.append(f"  {name:20} {ip}:{port:<6} answered by {r.answered_by.split('/')[-1]:10} "
                            f"client seen as {r.client_seen_as.rsplit(':', 1)[0]}")
            else:
                rows.append(f"  {name:20} {ip}:{port:<6} {r.verdict}")
    return "\n".join(rows)


def policy_switch(lab, service: str, source: str = "outside"):
    """Buttons for a Service's externalTrafficPolicy; below, every node's answer to its NodePort."""
    import ipywidgets as w

    choice = w.ToggleButtons(options=["Cluster", "Local"], value=facts.service(lab, service).external_traffic_policy,
                             description="policy")
    out = w.HTML()

    def apply(change=None):
        from labkit.checks.sandbox import service_manifest

        try:
            text = service_manifest(facts.service(lab, service), externalTrafficPolicy=choice.value)
            lab.apply(text, f"policy switch: {service}")
            out.value = _pre(render_nodeports(lab, [service], source))
        except Exception as e:  # keep the widget alive, say what went wrong
            out.value = _pre(f"could not apply: {e}")

    choice.observe(apply, names="value")
    out.value = _pre(render_nodeports(lab, [service], source))
    return w.VBox([choice, out])
