"""Checks for 02.00-services: a stable virtual IP, a selector, port and targetPort."""
from __future__ import annotations

from labkit.checks import facts
from labkit.checks.answers import as_int, as_ip
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.probes import packet_fields, send

CLIENT = "default/client"
WEB = "default/web"


@checker("services.cluster_ip", hints=[
    "lab.services() lists the Services; each has a .cluster_ip.",
    "find the Service named web (its .meta.name) in lab.services() and read .cluster_ip.",
    "[(s.meta.name, s.cluster_ip) for s in lab.services()] shows every Service with its virtual IP.",
])
def cluster_ip(answer, lab):
    need_lab(lab)
    ip = as_ip(answer, "the Service's ClusterIP")
    svc = facts.service(lab, WEB)
    if ip == svc.cluster_ip:
        return Right(f"web's ClusterIP is {svc.cluster_ip}, from the Service range 10.96.0.0/16; it stays "
                     "the same however often the pods behind it change.")
    who = facts.owner_of(lab, ip)
    if who:
        return Wrong(f"{ip} is the address of {who}; the Service's address is a virtual one, held by no pod")
    return Wrong(f"{ip} is not web's ClusterIP")


@checker("services.service_packet", hints=[
    "a client talks to the Service, not to a pod: the destination is the ClusterIP.",
    "the destination port is the Service's port (spec.ports[].port), not the pod's targetPort.",
    lambda lab: (f"IP(src=<the client's address>, dst='{facts.service(lab, WEB).cluster_ip}')"
                 f"/TCP(dport={facts.service(lab, WEB).ports[0].port})"),
])
def service_packet(answer, lab):
    need_lab(lab)
    f = packet_fields(answer)
    svc = facts.service(lab, WEB)
    client = facts.pod(lab, CLIENT)
    if f.src != client.pod_ip:
        return Wrong(f"send from the client pod: its address is not {f.src}")
    if f.dst != svc.cluster_ip:
        who = facts.owner_of(lab, f.dst)
        if who:
            return Wrong(f"{f.dst} is {who}'s own address: that skips the Service and breaks when the pod goes")
        return Wrong(f"{f.dst} is not web's ClusterIP")
    ports = {p.port for p in svc.ports if p.protocol.lower() == f.protocol}
    targets = {p.target_port for p in svc.ports}
    if f.dport not in ports:
        if f.dport in targets or any(isinstance(t, str) for t in targets):
            return Wrong(f"port {f.dport} is not the Service's port; the Service listens on "
                         "its `port` and forwards to the pod's targetPort")
        return Wrong(f"web has no port {f.dport}/{f.protocol}")
    result = send(lab, answer)
    if not result.ok:
        return Wrong(f"the SYN got {result.verdict}")
    return Right(f"{result.answered_by} answered, yet the client saw the reply come from {result.reply_from}, "
                 "the Service: it never learns which pod it reached.")


@checker("services.target_port", hints=[
    "the Service api listens on its `port`; the pods listen on the `targetPort`.",
    "the EndpointSlice of api lists the pods' addresses together with the port they receive on.",
    "look at spec.ports[0].targetPort in the manifest of api, or at the endpoints' port in its EndpointSlice.",
])
def target_port(answer, lab):
    need_lab(lab)
    n = as_int(answer, "a port number")
    svc = facts.service(lab, "default/api")
    eps = facts.endpoint_addresses(lab, svc)
    if not eps:
        raise AnswerError("api has no endpoints yet: run the cell that creates it")
    want = int(eps[0].rsplit(":", 1)[1])
    if n == want:
        return Right(f"the packet leaves the client for port {svc.ports[0].port} and arrives at the pod on "
                     f"{want}: kube-proxy's DNAT rewrote the port along with the address.")
    if n == svc.ports[0].port:
        return Wrong(f"{n} is the Service's port, the one clients use")
    return Wrong(f"the api pods do not receive on port {n}")


def _loaded_service(text):
    from labkit.model.load import load_manifests

    if not isinstance(text, str):
        raise AnswerError("expected the Service manifest as YAML text (a string)")
    objs = load_manifests(text, "<your manifest>")
    svcs = [o for o in objs if o.kind == "Service"]
    if len(svcs) != 1 or len(objs) != 1:
        raise AnswerError("expected exactly one object, of kind Service")
    return svcs[0]


@checker("services.api_service", hints=[
    "a Service needs a name, a selector that matches the pods' labels, and a port with a targetPort.",
    "the api pods carry the label app: api and listen on port 8080; clients should use port 80.",
    "spec: {selector: {app: api}, ports: [{port: 80, targetPort: 8080}]}, with metadata: {name: api}.",
])
def api_service(answer, lab):
    need_lab(lab)
    svc = _loaded_service(answer)
    if (svc.meta.namespace or "default", svc.meta.name) != ("default", "api"):
        return Wrong(f"name the Service api in namespace default (it is {svc.meta.namespace}/{svc.meta.name})")
    lab.apply(answer, "<your manifest>")
    live = facts.service(lab, "default/api")
    selected = facts.pods_selected(lab, live)
    if not selected:
        return Wrong(f"the selector {dict(live.selector or {})} matches no pod, so api has no endpoints")
    if not any(p.port == 80 for p in live.ports):
        return Wrong("clients should reach api on port 80: add a port 80")
    result = lab.probe(CLIENT, f"{live.cluster_ip}:80")[0]
    if not result.ok:
        return Wrong(f"the Service exists, but a SYN to {live.cluster_ip}:80 got {result.verdict}: "
                     "is the targetPort the one the api pods listen on?")
    return Right(f"api got ClusterIP {live.cluster_ip}; port 80 on it reached {result.answered_by}. "
                 "web uses port 80 too: each Service has its own address, so the ports never collide.")


@checker("services.vip_holder", hints=[
    "look at which namespace in the lab has the ClusterIP on one of its interfaces.",
    "every pod, node and outside host is listed with its addresses; is the ClusterIP among them?",
    "the answer is a word: who holds the ClusterIP on an interface? If no one does, answer 'nobody'.",
])
def vip_holder(answer, lab):
    need_lab(lab)
    if not isinstance(answer, str):
        raise AnswerError("expected a name (a pod, a node) or 'nobody'")
    svc = facts.service(lab, WEB)
    holder = facts.owner_of(lab, svc.cluster_ip) or "nobody"
    if answer.strip().lower() == holder.lower():
        return Right(f"no interface anywhere has {svc.cluster_ip}: the address lives only in the nodes' "
                     "rules, which rewrite it before routing ever looks for it.")
    return Wrong(f"{answer.strip()} has no interface with {svc.cluster_ip}")


def lookup(lab, name: str, pod: str = CLIENT, qtype: str = "A"):
    """The client pod's resolver looking `name` up against the lab's cluster DNS records:
    a labkit.dns.resolver.Resolution (its .queries are every query sent)."""
    from labkit.controllers.dns import answer, cluster_dns_records
    from labkit.dns.resolver import pod_resolv_conf, resolve

    state = getattr(lab, "state", None)
    if state is None:
        raise AnswerError("this lab keeps no cluster state to serve DNS from")
    records = cluster_dns_records(state)
    conf = pod_resolv_conf(facts.pod(lab, pod).meta.namespace, state.settings.cluster_domain)
    return resolve(name, qtype, conf, lambda q, t: answer(records, q, t))


@checker("services.dns_queries", hints=[
    "a pod's resolv.conf has three search domains and options ndots:5.",
    "a name with fewer than 5 dots is tried with each search domain appended first, in order, until one answers.",
    "count the candidates: 'web.default' + '.default.svc.cluster.local' first, then "
    "+ '.svc.cluster.local', ...; the walk stops at the first that exists.",
])
def dns_queries(answer, lab, name="web.default"):
    need_lab(lab)
    n = as_int(answer, "a number of queries")
    res = lookup(lab, name)
    if n == res.query_count:
        tried = ", ".join(q.name for q in res.queries)
        return Right(f"{res.query_count} quer{'y' if res.query_count == 1 else 'ies'} ({tried}); the fully "
                     f"qualified name with a final dot costs 1.")
    if n == 1:
        return Wrong("only a name ending in a dot (or with 5 dots or more) is asked as it is first")
    return Wrong(f"the resolver does not send {n} queries for {name!r}")


@checker("services.env_host", hints=[
    "kubelet gives every container variables for the Services that existed when the pod started.",
    "the variable for web is WEB_SERVICE_HOST: the Service's name in capitals, then _SERVICE_HOST.",
    "its value is web's ClusterIP.",
])
def env_host(answer, lab):
    need_lab(lab)
    from labkit.controllers.envvars import service_env_vars

    ip = as_ip(answer, "the value of WEB_SERVICE_HOST")
    env = service_env_vars(facts.pod(lab, CLIENT), lab.services())
    want = env.get("WEB_SERVICE_HOST", "")
    if not want:
        raise AnswerError("the client has no WEB_SERVICE_HOST: was web created before the client pod?")
    if ip == want:
        return Right(f"WEB_SERVICE_HOST={want}: the ClusterIP, fixed when the container started, so it "
                     "works only for Services created before the pod; DNS has no such limit.")
    return Wrong(f"{ip} is not what kubelet writes into WEB_SERVICE_HOST")
