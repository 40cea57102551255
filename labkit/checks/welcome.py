"""Checks for 00.00-welcome: reading the lab, and a first packet."""
from __future__ import annotations

from labkit.checks import facts
from labkit.checks.answers import as_int, as_ip
from labkit.checks.core import Right, Wrong, checker, need_lab
from labkit.probes import packet_fields, send

CLIENT = "default/client"


@checker("welcome.node_count", hints=[
    "every node of the cluster is one box in the topology diagram above.",
    "count the boxes labelled as nodes (control-plane and workers), not the pods inside them.",
    lambda lab: "the diagram's nodes are " + ", ".join(n for n, _ in facts.nodes(lab)) + ": how many is that?",
])
def node_count(answer, lab):
    need_lab(lab)
    n = as_int(answer, "the number of nodes")
    names = [name for name, _ in facts.nodes(lab)]
    if n == len(names):
        return Right(f"the lab has {len(names)} nodes: {', '.join(names)}.")
    pods = len(list(lab.pods()))
    if n == pods:
        return Wrong("that is the number of pods; nodes are the machines the pods run on")
    return Wrong(f"{n} is not the number of nodes")


@checker("welcome.client_ip", hints=[
    "lab.pods() lists every pod; each has a .pod_ip.",
    "find the pod whose name is 'client' in lab.pods() (its .meta.name) and read its .pod_ip.",
    "[(p.meta.name, p.pod_ip) for p in lab.pods()] shows every pod with its address.",
])
def client_ip(answer, lab):
    need_lab(lab)
    ip = as_ip(answer, "the client pod's address")
    client = facts.pod(lab, CLIENT)
    if ip == client.pod_ip:
        return Right(f"the client pod has {client.pod_ip}, from node {client.node_name}'s pod range.")
    if ip == client.host_ip:
        return Wrong(f"{ip} is the address of node {client.node_name}, the machine the client runs on, "
                     "not of the pod itself")
    who = facts.owner_of(lab, ip)
    if who:
        return Wrong(f"{ip} belongs to {who}, not to the client pod")
    return Wrong(f"no pod has {ip}")


@checker("welcome.first_packet", hints=[
    "the packet is IP(src=..., dst=...)/TCP(dport=...): the source is the client pod's address.",
    "the destination is one web pod's address (lab.pods()), and the port is the one its server "
    "listens on (the Deployment's containerPort).",
    lambda lab: ("for example IP(src=client_ip, dst=<a web pod's .pod_ip>)/TCP(dport=80); the web pods are "
                 + ", ".join(f"{p.meta.name} {p.pod_ip}" for p in lab.pods() if p.meta.labels.get("app") == "web")
                 + "."),
])
def first_packet(answer, lab):
    need_lab(lab)
    f = packet_fields(answer)
    client = facts.pod(lab, CLIENT)
    if f.src != client.pod_ip:
        return Wrong(f"the source is {f.src}, but the client pod's address is the one to send from")
    target = facts.owner_of(lab, f.dst)
    web = {f"{p.meta.namespace}/{p.meta.name}" for p in lab.pods() if p.meta.labels.get("app") == "web"}
    if target not in web:
        return Wrong(f"{f.dst} is not a web pod's address" + (f" (it is {target})" if target else ""))
    if f.protocol != "tcp":
        return Wrong("the web server speaks TCP: put TCP(dport=...) on top of IP")
    result = send(lab, answer)
    if not result.ok:
        return Wrong(f"the packet went to {target}, but port {f.dport} got {result.verdict}: "
                     "nothing listens there")
    return Right(f"{result.answered_by} answered your SYN with a SYN-ACK from {result.reply_from}.")
