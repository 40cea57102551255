"""Checks for 08.00-network-policy: who may reach whom, AND vs OR, the DNS trap, the rules behind it.

Expected answers come from the lab's own policy evaluator
(lab.netpol_matrix / lab.netpol_check: the upstream semantics, tested against
the e2e scenarios), and, for a policy the learner writes, from real probes in
a throw-away simulated copy of the lab that enforces it with the same filter
rules the kernel lab loads.
"""
from __future__ import annotations

from labkit.checks import facts, sandbox
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab

PORT = 80


def _pods(lab, answer) -> frozenset[str]:
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        raise AnswerError(f"expected a list of pods as 'namespace/name', e.g. ['prod/frontend'], got {answer!r}")
    out = set()
    for a in answer:
        if not isinstance(a, str) or "/" not in a:
            raise AnswerError(f"write each pod as 'namespace/name' (e.g. 'prod/frontend'), not {a!r}")
        out.add(a.strip())
    return frozenset(out)


def sources_allowed(lab, destination: str, port: int = PORT, protocol: str = "TCP") -> frozenset[str]:
    """Every other pod the evaluator lets reach `destination` on `port`."""
    m = lab.netpol_matrix(port, protocol).predicted
    if destination not in m.names:
        raise AnswerError(f"the lab has no pod {destination} (pods: {', '.join(m.names)})")
    return frozenset(a for a in m.names if a != destination and m.allowed(a, destination))


def _who_reaches(name: str, hints: list):
    @checker(name, hints=hints)
    def judge(answer, lab, destination="prod/backend", port=PORT):
        need_lab(lab)
        got = _pods(lab, answer)
        want = sources_allowed(lab, destination, port)
        shown = ", ".join(sorted(want)) or "no other pod"
        if got == want:
            return Right(f"{shown} may reach {destination} on port {port}.")
        extra, missing = sorted(got - want), sorted(want - got)
        if extra:
            v, _ = lab.netpol_check(extra[0], destination, port)
            return Wrong(f"{extra[0]} may not: {v.reason}")
        v, _ = lab.netpol_check(missing[0], destination, port)
        return Wrong(f"{missing[0]} may too: {v.reason}")

    return judge


default_deny = _who_reaches("netpol.default_deny", [
    "a NetworkPolicy with an empty podSelector selects every pod of its namespace.",
    "a pod selected for Ingress by any policy accepts only what some policy's ingress rules allow; "
    "this policy has no rules at all.",
    "list the pods that may still reach it: an empty list, [], if none may.",
])

and_or = _who_reaches("netpol.and_or", [
    "look at the dashes: each item of a `from` list is one peer, and the peers are alternatives (OR).",
    "inside one item, a namespaceSelector and a podSelector must both match (AND); in two items, either "
    "one is enough.",
    "with two items, every pod in a namespace labelled env: prod is allowed, and so are the frontend pods "
    "of the policy's own namespace; list them all.",
])


@checker("netpol.egress_with_dns", hints=[
    "an egress policy for the frontend must list every destination it needs: the backend, and DNS.",
    "DNS means UDP and TCP port 53 to the kube-dns pods, in the namespace kube-system (labelled "
    "kubernetes.io/metadata.name: kube-system).",
    "two egress rules: `to` the backend pods on TCP 80, and `to` {namespaceSelector: kube-system, "
    "podSelector: k8s-app: kube-dns} on UDP 53 and TCP 53.",
])
def egress_with_dns(answer, lab, source="prod/frontend", allowed="prod/backend", denied="prod/db"):
    need_lab(lab)
    if not isinstance(answer, str) or "NetworkPolicy" not in answer:
        raise AnswerError("expected a NetworkPolicy manifest as YAML text")
    copy = sandbox.sim_copy(lab)
    copy.apply(answer, "your policy")
    ok = facts.pod(copy, allowed).pod_ip
    no = facts.pod(copy, denied).pod_ip
    to_backend = copy.probe(source, f"{ok}:{PORT}")[0]
    if not to_backend.ok:
        return Wrong(f"with your policy {source} cannot reach {allowed} any more ({to_backend.verdict})")
    to_db = copy.probe(source, f"{no}:{PORT}")[0]
    if to_db.ok:
        return Wrong(f"with your policy {source} still reaches {denied}: the policy must select {source} "
                     "for Egress and allow only what it needs")
    res = copy.dns(source, "backend.prod")
    if res.status == "NXDOMAIN":
        raise AnswerError("the name backend.prod does not exist in this lab: run the set-up cells (the "
                          "backend Service) first")
    if res.status != "NOERROR":
        return Wrong(f"{source} reaches {allowed} by address, but its DNS lookup of 'backend.prod' ends in "
                     f"{res.status}: the DNS trap")
    return Right(f"{source} reaches {allowed}, not {denied}, and resolves names: real packets in a copy of the "
                 "lab, through the filter rules your policy became.")


@checker("netpol.pod_chain", hints=[
    "the node where the pod runs has the rules: lab.rules(node, 'filter').",
    "the chain LABKIT-NP-INGRESS sends packets for each policed pod to a chain of that pod's own; its "
    "comment names the pod.",
    "answer the name of the chain that rule jumps to: LABKIT-NP-I- and 16 characters.",
])
def pod_chain(answer, lab, pod="prod/backend"):
    from labkit.controllers.netpol.render import INGRESS, pod_chain_name

    need_lab(lab)
    if not isinstance(answer, str):
        raise AnswerError(f"expected a chain name such as 'LABKIT-NP-I-...', got {answer!r}")
    ns, name = pod.split("/", 1)
    want = pod_chain_name(INGRESS, ns, name)
    node = facts.node_of(lab, pod)
    if want not in lab.rules(node, "filter"):
        raise AnswerError(f"node {node} has no ingress chain for {pod}: is a policy selecting it for Ingress?")
    got = answer.strip()
    if got == want:
        return Right(f"{want}: 'LABKIT-NP-I-' and 16 characters of a hash of '{pod}', named the way kube-proxy "
                     "names its KUBE-SVC- chains.")
    if got.startswith("LABKIT-NP-E-"):
        return Wrong("that is an egress chain (E): the backend's policy is about what may come in (I)")
    return Wrong(f"no rule of LABKIT-NP-INGRESS on {node} jumps to {got} for {pod}")
