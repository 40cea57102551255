"""Checks for 05.00-egress-and-snat: a pod's packet to the internet, the two SNATs, the rule behind them.

The client pod sends to the internet host (203.0.113.10). Its node
masquerades the pod's address to the node's own (kindnet's KIND-MASQ-AGENT),
then the cloud's NAT gateway maps the node's private address to its public
one. Every expected answer is read from the live lab (its plan, its
conntrack) or from a throw-away simulated copy of it (labkit.checks.sandbox)
where the exercise asks "what if".
"""
from __future__ import annotations

from labkit.checks import facts, sandbox, where
from labkit.checks.answers import as_bool, as_ip, as_ip_port
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.topology.masquerade import MasqueradeSettings

CLIENT = "default/client"
INTERNET_PORT = 80


def internet_host(lab) -> str:
    return dict(facts.outside_hosts(lab))["internet"]


def _cloud(lab):
    plan = getattr(lab, "plan", None)
    if plan is None or plan.cloud is None:
        raise AnswerError("the lab has no cloud yet: run the cell with lab.enable_cloud() first")
    return plan.cloud


def client_node(lab) -> tuple[str, str, str]:
    """(node name, private address, public address) of the client's node."""
    node = facts.node_of(lab, CLIENT)
    for name, private, public in _cloud(lab).public:
        if name == node:
            return name, private, public
    raise AnswerError(f"node {node} has no public address in the lab's cloud")


def egress_entries(lab, router: str = ""):
    """Conntrack entries on the client's node (or `router`) of client -> internet host."""
    client = facts.pod(lab, CLIENT)
    node = router or client.node_name
    host = internet_host(lab)
    src = client.pod_ip if not router else client_node(lab)[1]
    found = [e for e in lab.conntrack(node) if e.proto == "tcp" and e.orig.src == src and e.orig.dst == host]
    if not found:
        raise AnswerError(f"{node} has no conntrack entry from {src} to the internet host {host}: run the cell "
                          "that sends the client's request first")
    return found


@checker("egress.internet_sees", hints=[
    "two machines rewrite the source on the way out: the client's node, then the cloud's NAT gateway.",
    "the node swaps the pod's address for its own private address; the NAT gateway swaps that for the "
    "node's public address, from its 1:1 map.",
    lambda lab: "the map is in lab.plan.cloud.public: (node, private, public); find the client's node "
                f"({facts.node_of(lab, CLIENT)}).",
])
def internet_sees(answer, lab):
    need_lab(lab)
    ip = as_ip(answer)
    node, private, public = client_node(lab)
    client = facts.pod(lab, CLIENT)
    if ip == public:
        return Right(f"the internet sees {public}, the public address of {node}: the pod's {client.pod_ip} "
                     f"became {private} on the node (MASQUERADE), then {public} at the NAT gateway (SNAT).")
    if ip == client.pod_ip:
        return Wrong("that is the pod's own address; 10.244.0.0/16 is private to the cluster and no reply "
                     "could find its way back to it from the internet")
    if ip == private:
        return Wrong(f"{private} is what the node made of the pod's address, but it is private to the cloud "
                     "too: one more translation happens before the packet reaches the internet")
    return Wrong(f"{ip} is no address the packet carries on its way out")


@checker("egress.reply_destination", hints=[
    "look at the client node's conntrack entry: the reply tuple is the reply as it will arrive.",
    "the internet answers the address it saw; by the time the reply reaches the node, the NAT gateway has "
    "already turned it back into the node's private address.",
    "answer the reply tuple's destination, 'ADDRESS:PORT'.",
])
def reply_destination(answer, lab):
    need_lab(lab)
    ip, port = as_ip_port(answer)
    entries = egress_entries(lab)
    for e in entries:
        if (e.reply.dst, e.reply.dport) == (ip, port):
            return Right(f"the reply reaches the node addressed to {ip}:{port}, the node itself; conntrack finds "
                         f"the entry by that tuple and rewrites the destination back to the pod, "
                         f"{e.orig.src}:{e.orig.sport} (the un-SNAT).")
    e = entries[-1]
    if (ip, port) == (e.orig.src, e.orig.sport):
        return Wrong("that is where the reply ends up, after the node's un-SNAT; the question is how it "
                     "arrives at the node")
    if ip == client_node(lab)[2]:
        return Wrong("that is the public address: the NAT gateway has already translated it back "
                     "before the reply reaches the node")
    if ip == e.reply.dst:
        return Wrong("right address, wrong port: read the port from the same reply tuple")
    return Wrong(f"no entry's reply tuple goes to {ip}:{port}")


def _unmasqueraded_trace(lab):
    """A trace of the client's SYN to the internet in a copy of the lab without the masquerade."""
    copy = sandbox.sim_copy(lab, MasqueradeSettings(False))
    return copy.trace(CLIENT, f"{internet_host(lab)}:{INTERNET_PORT}")


@checker("egress.dropped_at", hints=[
    "the trace lists the rules the SYN met, in every namespace it passed; the last one decided its fate.",
    "the node forwards the pod's packet unchanged; something further on refuses a source it has no "
    "public address for.",
    "answer with the router's short name, as lab.conntrack() takes it: 'natgw' or 'lb' or a node name.",
])
def dropped_at(answer, lab):
    need_lab(lab)
    got = where.read_place(lab, answer)
    t = _unmasqueraded_trace(lab)
    if t.verdict == "answered":
        raise AnswerError("in a copy of this lab without the masquerade the SYN was answered; this exercise "
                          "expects the cloud to drop it (is the lab's cloud set up as in the notebook?)")
    last = [s for s in t.steps if s.table != "raw"][-1]
    place = where.place_of(lab, last.netns)
    if got == place:
        return Right(f"{place} drops it: rule '{last.rule}' ({last.table} {last.chain}) matches a source "
                     "that is none of the nodes' addresses, and the pod's 10.244.x.y is none.")
    if got == facts.node_of(lab, CLIENT):
        return Wrong("the client's node forwards the packet (its FORWARD chain accepts it); the trace goes on "
                     "past the node")
    if got == "internet":
        return Wrong("the packet never reaches the internet host; no conntrack entry there, no reply")
    return Wrong(f"the SYN does not stop at {got}")


def _egress_outcome(lab, lines):
    """(internet result, [(pod, what it saw)] for pods on other nodes) in a copy with the rule added."""
    copy = sandbox.sim_copy(lab, MasqueradeSettings(False))
    sandbox.add_node_rules(copy, lines)
    out = copy.http(CLIENT, f"{internet_host(lab)}:{INTERNET_PORT}", "/clientip")
    client = facts.pod(lab, CLIENT)
    seen = []
    for p in sorted(copy.pods(), key=lambda p: p.meta.name):
        key = f"{p.meta.namespace}/{p.meta.name}"
        if p.node_name == client.node_name or p.host_network or key == CLIENT or not p.pod_ip:
            continue
        ports = [c.container_port for c in p.containers[0].ports] if p.containers and p.containers[0].ports else []
        port = ports[0] if ports else 8080
        r = copy.http(CLIENT, f"{p.pod_ip}:{port}", "/clientip")
        if r.ok:
            seen.append((key, r.body.rsplit(":", 1)[0]))
        if len(seen) == 2:
            break
    return out, seen


@checker("egress.masquerade_rule", hints=[
    "the rule goes in the nat table's POSTROUTING chain: the last chance to rewrite a packet's source, "
    "after routing chose the interface it leaves by.",
    "MASQUERADE rewrites the source to the address of the interface the packet leaves by (the node's), "
    "without naming it: -j MASQUERADE.",
    "masquerade only what comes from the pod network and is not going to it: "
    "'-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE'.",
])
def masquerade_rule(answer, lab):
    need_lab(lab)
    lines = sandbox.parse_rule_lines(answer)
    chains = {l.split()[1] for l in lines}
    if chains != {"POSTROUTING"}:
        return Wrong(f"a source rewrite belongs in POSTROUTING, not {', '.join(sorted(chains - {'POSTROUTING'}))}")
    if not any("-j MASQUERADE" in l or "-j SNAT" in l for l in lines):
        return Wrong("the rule must rewrite the source: its target is MASQUERADE (or SNAT)")
    result, seen = _egress_outcome(lab, lines)
    client = facts.pod(lab, CLIENT)
    if not result.ok:
        return Wrong("with your rule on every node, the client's request to the internet host still got no "
                     "reply: the NAT gateway only passes sources that are node addresses")
    hidden = [(pod, ip) for pod, ip in seen if ip != client.pod_ip]
    if hidden:
        pod, ip = hidden[0]
        return Wrong(f"the internet answers now ({result.body}), but your rule also rewrites traffic between "
                     f"pods: {pod} saw the client as {ip} instead of {client.pod_ip}. Pods must see each "
                     "other's real addresses (network policies and logs depend on it)")
    return Right(f"the client reached the internet host, which saw {result.body}, and pods on other nodes "
                 f"still see the client as {client.pod_ip}: that is what kindnet's KIND-MASQ-AGENT chain does.")


@checker("egress.exempt_reaches", hints=[
    "a destination in the non-masquerade list is reached with the pod's own address.",
    "what does the NAT gateway do with a packet whose source is a pod address?",
    "the internet host's network is in the list you were given: is the client's packet masqueraded?",
])
def exempt_reaches(answer, lab, cidrs=()):
    need_lab(lab)
    said = as_bool(answer)
    if not cidrs:
        raise AnswerError("the check needs the list of CIDRs: pass cidrs=[...] as the notebook does")
    copy = sandbox.sim_copy(lab, MasqueradeSettings(True, tuple(cidrs)))
    r = copy.http(CLIENT, f"{internet_host(lab)}:{INTERNET_PORT}", "/clientip")
    if said == r.ok:
        how = (f"answered, and saw {r.body}" if r.ok else
               "never answered: the packet left the node with the pod's address and the NAT gateway dropped it")
        return Right(f"with nonMasqueradeCIDRs {list(cidrs)} the internet host {how}.")
    return Wrong("send it in your head: is 203.0.113.10 inside one of the CIDRs?" if not r.ok else
                 "the internet host is outside every CIDR in the list, so the node still masquerades")
