"""Checks for 09.00-troubleshooting: six broken labs, each fixed by the learner and tested by the check.

A fix check takes the learner's fix (a manifest, or a list of CIDRs), tries
it first in a throw-away simulated copy of the lab (labkit.checks.sandbox);
only a fix that works there is applied to the lab itself, and the check then
sends the failing request again in the lab and says Correct only when it is
answered. A wrong fix leaves the lab as it was, with feedback saying what
still fails. Diagnosis checks read the lab (rules, conntrack) and change
nothing.
"""
from __future__ import annotations

import copy as _copy
from typing import Callable

from labkit.checks import facts, sandbox
from labkit.checks.answers import as_int, as_ip
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.errors import LabkitError

CLIENT = "default/client"


# --- what "works" means, scenario by scenario ---------------------------------------


def _service_answers(lab, service: str) -> tuple[bool, str]:
    """The client's HTTP request to the Service's ClusterIP is answered by one of its pods."""
    svc = facts.service(lab, service)
    port = svc.ports[0].port
    r = lab.http(CLIENT, f"{svc.cluster_ip}:{port}")
    name = service.split("/", 1)[1]
    if r.ok and r.answered_by.split("/", 1)[1].startswith(name):
        return True, f"{r.answered_by} answered {svc.cluster_ip}:{port}"
    verdict = lab.probe(CLIENT, f"{svc.cluster_ip}:{port}")[0].verdict  # unreachable, refused, no-reply
    return False, f"the client's request to {service} ({svc.cluster_ip}:{port}) still gets '{verdict}'"


def _egress_works(lab) -> tuple[bool, str]:
    """The client reaches the internet host, and a pod on another node still sees the client's own address."""
    from labkit.viz.outside_widgets import _other_node_pod

    internet = dict(facts.outside_hosts(lab))["internet"]
    r = lab.http(CLIENT, f"{internet}:80", "/clientip")
    if not r.ok:
        return False, f"the client's request to the internet host {internet} still gets '{r.verdict}'"
    client = facts.pod(lab, CLIENT)
    other = _other_node_pod(lab)
    if other is not None:
        port = other.containers[0].ports[0].container_port if other.containers[0].ports else 8080
        seen = lab.http(CLIENT, f"{other.pod_ip}:{port}", "/clientip")
        if seen.ok and seen.body.rsplit(":", 1)[0] != client.pod_ip:
            return False, (f"the internet answers, but pod {other.meta.name} now sees the client as "
                           f"{seen.body.rsplit(':', 1)[0]}, not {client.pod_ip}: the pod network must stay "
                           "in the list")
    return True, f"the internet host answered and saw {r.body}"


def _dns_works(lab, name: str = "web") -> tuple[bool, str]:
    res = lab.dns(CLIENT, name)
    if res.status != "NOERROR":
        return False, f"the client's lookup of {name!r} still ends in {res.status}"
    ok, detail = _service_answers(lab, "default/web")
    if not ok:
        return False, f"DNS answers now, but {detail}: keep the client's access to web"
    return True, f"{name!r} resolves to {res.queries[-1].answer.records[0].data} and web answers"


def _node_port_answers(lab, service: str, node: str) -> tuple[bool, str]:
    svc = facts.service(lab, service)
    port = next((p.node_port for p in svc.ports if p.node_port), 0)
    ip = dict(facts.nodes(lab))[node]
    r = lab.http("outside", f"{ip}:{port}")
    if r.ok:
        return True, f"{node}:{port} answered the outside client ({r.answered_by})"
    return False, f"the outside client's request to {node} ({ip}:{port}) still gets '{r.verdict}'"


# --- the fix machinery -----------------------------------------------------------------


def _manifest(answer) -> str:
    if not isinstance(answer, str) or "kind:" not in answer:
        raise AnswerError("expected the fixed manifest as YAML text (a string with apiVersion, kind, metadata "
                          "and spec), as you would give kubectl apply")
    return answer


def _judge_fix(lab, change: Callable, works: Callable, done: str):
    """Try `change` in a copy; if `works` there, make it in the lab and test the lab itself."""
    trial = sandbox.sim_copy(lab)
    try:
        change(trial)
    except LabkitError as e:
        return Wrong(f"the lab refuses this fix: {e}")
    ok, detail = works(trial)
    if not ok:
        return Wrong(f"with your fix, {detail}")
    change(lab)
    ok, detail = works(lab)
    if not ok:
        return Wrong(f"your fix worked in a simulated copy of the lab, but in the lab itself {detail}")
    return Right(f"{detail}. {done}")


@checker("troubleshooting.fix_selector", hints=[
    "compare the Service's selector with the labels of the pods it should select: lab.pods() shows each "
    "pod's meta.labels.",
    "an empty EndpointSlice and kube-proxy's 'has no endpoints' REJECT rule both say the selector matches "
    "no pod.",
    "copy the Service's manifest, correct the selector's value, and give the whole YAML text as the answer.",
])
def fix_selector(answer, lab, service="default/shop"):
    need_lab(lab)
    text = _manifest(answer)
    return _judge_fix(lab, lambda l: l.apply(text, "fix"), lambda l: _service_answers(l, service),
                      "The selector matches the pods again, so they are endpoints and kube-proxy DNATs to them.")


@checker("troubleshooting.fix_target_port", hints=[
    "the endpoints exist, yet a pod answers with a reset: something about the port.",
    "the EndpointSlice lists each pod at the Service's targetPort; probe one pod at that port, and at the "
    "port its container really listens on (the container's args say it).",
    "set targetPort to the port the pods listen on (or to the container port's name) and give the whole "
    "Service YAML.",
])
def fix_target_port(answer, lab, service="default/api"):
    need_lab(lab)
    text = _manifest(answer)
    return _judge_fix(lab, lambda l: l.apply(text, "fix"), lambda l: _service_answers(l, service),
                      "kube-proxy now DNATs to the port the pods listen on.")


@checker("troubleshooting.fix_masquerade", hints=[
    "the trace shows the client's SYN passing the node's KIND-MASQ-AGENT chain without being masqueraded.",
    "one entry of the non-masquerade list matches every destination, so the RETURN comes before MASQUERADE "
    "for all of them.",
    "answer with the list of CIDRs that should stay unmasqueraded: the pod network alone.",
])
def fix_masquerade(answer, lab):
    need_lab(lab)
    if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
        raise AnswerError(f"expected a list of CIDRs such as ['10.244.0.0/16'], got {answer!r}")
    cidrs = list(answer)
    return _judge_fix(lab, lambda l: l.set_masquerade(True, cidrs), _egress_works,
                      "Everything outside the pod network is masqueraded again.")


@checker("troubleshooting.fix_dns_policy", hints=[
    "the client's HTTP request to web's ClusterIP works; only its DNS lookups time out. What do they need "
    "that the policy does not allow?",
    "a DNS query is a UDP (sometimes TCP) packet to port 53 of a kube-dns pod in the kube-system namespace; "
    "an egress policy must allow it like any other destination.",
    "add a NetworkPolicy (or an egress rule) allowing UDP and TCP port 53 to pods labelled "
    "k8s-app: kube-dns in the namespace kubernetes.io/metadata.name: kube-system; answer with its YAML.",
])
def fix_dns_policy(answer, lab):
    need_lab(lab)
    text = _manifest(answer)
    return _judge_fix(lab, lambda l: l.apply(text, "fix"), _dns_works,
                      "Egress policies must allow DNS explicitly: nothing is allowed by default once a policy "
                      "selects the pod for egress.")


@checker("troubleshooting.fix_local_policy", hints=[
    "the trace on the node the client uses ends in a DROP in filter KUBE-EXTERNAL-SERVICES: read its comment.",
    "with externalTrafficPolicy Local, a node without an endpoint of its own drops external traffic; this "
    "node has none.",
    "either go back to externalTrafficPolicy Cluster (the pods then see a node's address), or run a pod of "
    "the Service on that node; answer with the YAML of your fix.",
])
def fix_local_policy(answer, lab, service="default/echo", node="kind-worker"):
    need_lab(lab)
    text = _manifest(answer)
    return _judge_fix(lab, lambda l: l.apply(text, "fix"), lambda l: _node_port_answers(l, service, node),
                      "Remember the trade: Cluster answers on every node but hides the client's address.")


# --- the stale conntrack entry (a simulated lab: the client keeps one UDP source port) ---


def _stale_entries(lab, service: str, node: str):
    svc = facts.service(lab, service)
    live = {p.pod_ip for p in lab.pods()}
    return [e for e in lab.conntrack(node)
            if e.proto == "udp" and e.orig.dst == svc.cluster_ip and e.reply.src not in live]


@checker("troubleshooting.stale_endpoint", hints=[
    "read the conntrack table of the client's node; find the entry of the agent's UDP flow to the Service.",
    "its reply tuple says which pod the flow is bound to; compare that address with the pods there are now.",
    "the reply tuple's source address, the pod that is gone.",
])
def stale_endpoint(answer, lab, service="default/metrics", node="kind-worker"):
    need_lab(lab)
    ip = as_ip(answer)
    stale = _stale_entries(lab, service, node)
    if not stale:
        raise AnswerError(f"{node} has no conntrack entry to {service} bound to a pod that is gone: run the "
                          "cells of this scenario in order")
    if ip in {e.reply.src for e in stale}:
        return Right(f"the flow is still bound to {ip}, a pod that no longer exists: conntrack matched every "
                     "new datagram to the old entry, so kube-proxy's new rules never saw them.")
    svc = facts.service(lab, service)
    if ip in facts.endpoint_addresses(lab, svc) or any(ip == a.rsplit(":", 1)[0]
                                                       for a in facts.endpoint_addresses(lab, svc)):
        return Wrong(f"{ip} is the endpoint the rules would choose now; the entry was written before it existed")
    if ip == svc.cluster_ip:
        return Wrong("that is the original destination; the reply tuple says where the flow really goes")
    return Wrong(f"no stale entry points at {ip}")


@checker("troubleshooting.stale_wait", hints=[
    "an entry goes away when nothing has matched it for its timeout; lab.conntrack() shows the seconds left.",
    "the agent must stop sending while you wait: every datagram that matches the entry starts its timer "
    "again. How many seconds are left on the entry?",
    "wait at least the entry's timeout (ASSURED UDP entries: 120 s), then send again.",
])
def stale_wait(answer, lab, service="default/metrics", node="kind-worker", sport=40000):
    need_lab(lab)
    seconds = as_int(answer, "a number of seconds")
    stale = _stale_entries(lab, service, node)
    if not stale:
        raise AnswerError(f"{node} has no stale entry to {service} (any more): run the scenario's cells again")
    svc = facts.service(lab, service)
    dest = f"{svc.cluster_ip}:{svc.ports[0].port}"
    trial = _copy.deepcopy(lab)
    trial.wait(seconds)
    r = trial.probe(CLIENT, dest, "udp", sport=sport)[0]
    if not r.ok:
        left = max(e.timeout for e in stale)
        return Wrong(f"after {seconds} s the entry still had {left - seconds} s to live, and the datagram you "
                     f"sent then matched it again (which restarted its timer to {left} s)")
    lab.wait(seconds)
    r = lab.probe(CLIENT, dest, "udp", sport=sport)[0]
    if not r.ok:
        return Wrong(f"the flow still gets '{r.verdict}'")
    return Right(f"after {seconds} s of silence the entry expired; the next datagram from port {sport} was new "
                 f"to conntrack, went through kube-proxy's rules and reached {r.answered_by}. In a real "
                 "cluster you would not wait: `conntrack -D -p udp --orig-dst <ClusterIP>` deletes the entry.")
