"""Checks for 04.00-conntrack: the two directions of a connection and the un-DNAT of replies."""
from __future__ import annotations

from labkit.checks import facts
from labkit.checks.answers import as_ip_port
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.probes import packet_fields

CLIENT = "default/client"
WEB = "default/web"


def _entries(lab):
    """The client node's conntrack entries of client -> web's ClusterIP (newest last)."""
    client = facts.pod(lab, CLIENT)
    svc = facts.service(lab, WEB)
    found = [e for e in lab.conntrack(client.node_name)
             if e.proto == "tcp" and e.orig.src == client.pod_ip and e.orig.dst == svc.cluster_ip]
    if not found:
        raise AnswerError(f"node {client.node_name} has no conntrack entry from the client to {svc.cluster_ip}: "
                          "run the cell that sends the SYN first")
    return found


@checker("conntrack.reply_source", hints=[
    "an entry has two tuples: the original direction (as the client sent it) and the reply direction "
    "(what the reply will look like).",
    "DNAT shows in the reply tuple: its source is the endpoint that was chosen, not the ClusterIP.",
    "answer with the reply tuple's source address and port, 'ADDRESS:PORT'.",
])
def reply_source(answer, lab):
    need_lab(lab)
    ip, port = as_ip_port(answer)
    entries = _entries(lab)
    for e in entries:
        if (e.reply.src, e.reply.sport) == (ip, port):
            who = facts.owner_of(lab, ip) or ip
            return Right(f"the reply will come from {ip}:{port} ({who}): conntrack wrote down the endpoint "
                         "the DNAT rule picked, so every later packet of the connection goes there too.")
    e = entries[-1]
    if (ip, port) == (e.orig.dst, e.orig.dport):
        return Wrong("that is where the client sent the packet (the original direction); the reply tuple "
                     "says who will really answer")
    return Wrong(f"no entry's reply tuple starts at {ip}:{port}")


@checker("conntrack.reply_packet", hints=[
    "the pod answers from its own address and port, back to the address and port it saw the SYN come from.",
    "the reply tuple of the entry is exactly that packet: src, dst, sport, dport.",
    "IP(src=reply.src, dst=reply.dst)/TCP(sport=reply.sport, dport=reply.dport, flags='SA'), "
    "reading the four values from the entry.",
])
def reply_packet(answer, lab):
    need_lab(lab)
    f = packet_fields(answer)
    entries = _entries(lab)
    for e in entries:
        r = e.reply
        if (f.src, f.dst, f.sport, f.dport) == (r.src, r.dst, r.sport, r.dport):
            return Right(f"the pod sends {r.src}:{r.sport} -> {r.dst}:{r.dport}; the node finds the entry by "
                         f"this reply tuple and rewrites the source back to {e.orig.dst}:{e.orig.dport}.")
    e = entries[-1]
    if f.src == e.orig.dst:
        return Wrong(f"the pod does not know the ClusterIP {e.orig.dst}; it replies from its own address")
    if f.dst == e.reply.dst and f.dport != e.reply.dport:
        return Wrong("the destination port must be the client's source port, from the entry")
    return Wrong("this packet matches no entry's reply direction")


@checker("conntrack.client_sees", hints=[
    "the client sent its SYN to the Service; a reply from anywhere else would not belong to its connection.",
    "on the way back, the node rewrites the reply's source with what it finds in the entry's original tuple.",
    "the answer is the original tuple's destination: 'ADDRESS:PORT'.",
])
def client_sees(answer, lab):
    need_lab(lab)
    ip, port = as_ip_port(answer)
    e = _entries(lab)[-1]
    if (ip, port) == (e.orig.dst, e.orig.dport):
        return Right(f"the client sees {ip}:{port}, the address it sent to, and never the pod's {e.reply.src}: "
                     "that is the un-DNAT, done by conntrack, with no rule of its own.")
    if any((ip, port) == (x.reply.src, x.reply.sport) for x in _entries(lab)):
        return Wrong("that is the pod's address: the reply leaves the pod with it, but the node "
                     "rewrites it before the client sees it")
    return Wrong(f"the client would not see {ip}:{port}")


@checker("conntrack.bypass_source", hints=[
    "without passing the node that did the DNAT, nothing rewrites the reply.",
    "so the reply arrives exactly as the pod sent it: with the pod's own source address and port.",
    "the reply tuple's source, 'ADDRESS:PORT'.",
])
def bypass_source(answer, lab):
    need_lab(lab)
    ip, port = as_ip_port(answer)
    entries = _entries(lab)
    e = next((x for x in entries if (x.reply.src, x.reply.sport) == (ip, port)), entries[-1])
    if (ip, port) == (e.reply.src, e.reply.sport):
        return Right(f"{ip}:{port}: the client is waiting for an answer from {e.orig.dst}:{e.orig.dport}, "
                     "so this packet matches none of its connections and the client resets it.")
    if (ip, port) == (e.orig.dst, e.orig.dport):
        return Wrong("only conntrack on the node would turn the source back into the ClusterIP, and this "
                     "reply never passes it")
    return Wrong(f"the pod's reply would not carry {ip}:{port}")
