"""Checks for 03.00-kube-proxy-and-dnat: the chains, the probability cascade, the traced SYN."""
from __future__ import annotations

from labkit.checks import facts
from labkit.checks.answers import as_int, as_probability, close_to
from labkit.checks.core import AnswerError, Right, Wrong, checker, need_lab
from labkit.probes import packet_fields, trace

CLIENT = "default/client"
WEB = "default/web"


def _client_node(lab) -> str:
    return facts.node_of(lab, CLIENT)


@checker("kube_proxy.service_chain", hints=[
    "kube-proxy's first rule for a Service sits in the chain KUBE-SERVICES and matches its ClusterIP.",
    "find the line '-A KUBE-SERVICES ... default/web:http cluster IP ... -j KUBE-SVC-...' in the node's rules.",
    "the answer is the word after -j on that line: a name that starts with KUBE-SVC-.",
])
def service_chain(answer, lab):
    need_lab(lab)
    if not isinstance(answer, str):
        raise AnswerError("expected a chain name such as 'KUBE-SVC-ABCDEFGHIJKLMNOP'")
    svc = facts.service(lab, WEB)
    text = lab.rules(_client_node(lab), "nat")
    want = facts.service_chain(text, svc, svc.ports[0].name)
    name = answer.strip()
    if name == want:
        return Right(f"{want}: 'KUBE-SVC-' and 16 characters of a hash of 'default/web:{svc.ports[0].name}' "
                     "and the protocol, so the name is the same on every node.")
    if name.startswith("KUBE-SEP-"):
        return Wrong("that is one endpoint's chain (KUBE-SEP-...); the Service's own chain comes first")
    return Wrong(f"{name} is not the chain KUBE-SERVICES jumps to for web")


def _as_probabilities(answer) -> list:
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        raise AnswerError("expected a list of probabilities, one per rule, e.g. [0.5, 1]")
    return [as_probability(a) for a in answer]


@checker("kube_proxy.probabilities", hints=[
    "there is one rule per endpoint; a packet tries them in order and the first that matches wins.",
    "the first rule must pick its endpoint 1 time in n; a packet that reaches the second rule has n-1 "
    "endpoints left, and so on. The last rule has no coin at all: write 1.",
    "for n endpoints the list is [1/n, 1/(n-1), ..., 1/2, 1].",
])
def probabilities(answer, lab=None, endpoints=4):
    given = _as_probabilities(answer)
    want = facts.rendered_probabilities(endpoints)
    if len(given) != len(want):
        return Wrong(f"with {endpoints} endpoints kube-proxy writes {len(want)} rules; your list has {len(given)}")
    if all(close_to(g, as_probability(w), 0.001) for g, w in zip(given, want)):
        return Right(f"kube-proxy writes {', '.join(want[:-1])} and a last rule with no coin: each endpoint "
                     f"ends up with 1/{endpoints} of the new connections.")
    if all(close_to(g, as_probability(f"1/{endpoints}"), 0.001) for g in given):
        return Wrong(f"every rule with 1/{endpoints}: the later rules only see the packets the earlier ones "
                     "let through, so their probabilities must be larger")
    return Wrong("not the probabilities the rules carry")


@checker("kube_proxy.traced_syn", hints=[
    "trace a SYN from the client pod to the Service: IP(src=client address, dst=ClusterIP)/TCP(dport=...).",
    "the destination port is the Service's port; the trace must pass web's KUBE-SVC chain.",
    lambda lab: (f"IP(src='{facts.pod(lab, CLIENT).pod_ip}', dst='{facts.service(lab, WEB).cluster_ip}')"
                 f"/TCP(dport={facts.service(lab, WEB).ports[0].port})"),
])
def traced_syn(answer, lab):
    need_lab(lab)
    f = packet_fields(answer)
    client = facts.pod(lab, CLIENT)
    if f.src != client.pod_ip:
        return Wrong(f"send from the client pod; {f.src} is not its address")
    svc = facts.service(lab, WEB)
    chain = facts.service_chain(lab.rules(_client_node(lab), "nat"), svc, svc.ports[0].name)
    t = trace(lab, answer)
    chains = [s.chain for s in t.steps]
    if chain not in chains:
        return Wrong(f"the packet never entered {chain}, web's chain: is the destination "
                     f"{svc.cluster_ip}:{svc.ports[0].port}?")
    seps = [s.chain for s in t.steps if s.chain.startswith("KUBE-SEP-")]
    dnat = [s for s in t.steps if s.verdict == "DNAT"]
    if not seps or not dnat:
        return Wrong("the packet entered web's chain but was not DNATed")
    return Right(f"KUBE-SERVICES -> {chain} -> {seps[-1]}, where DNAT chose an endpoint: "
                 f"{dnat[-1].rule.split('--to-destination')[-1].strip()}.")


@checker("kube_proxy.sep_count", hints=[
    "kube-proxy writes one KUBE-SEP chain per endpoint of the Service.",
    "count the web pods that are ready now, or count the rules in web's KUBE-SVC chain.",
    "len([p for p in lab.pods() if p.meta.labels.get('app') == 'web'])",
])
def sep_count(answer, lab):
    need_lab(lab)
    n = as_int(answer, "a number of chains")
    svc = facts.service(lab, WEB)
    text = lab.rules(_client_node(lab), "nat")
    chain = facts.service_chain(text, svc, svc.ports[0].name)
    want = len({r.rsplit("-j ", 1)[1] for r in facts.chain_rules(text, chain) if "-j KUBE-SEP-" in r})
    if n == want:
        return Right(f"{want} endpoints, {want} KUBE-SEP chains, and every probability rewritten for {want}: "
                     "kube-proxy re-rendered the whole chain when the EndpointSlice changed.")
    return Wrong(f"the node's rules have a different number of KUBE-SEP chains for web than {n}")


@checker("kube_proxy.share", hints=[
    "the cascade is built so that every endpoint gets the same share.",
    "with n endpoints, what fraction of new connections goes to each one?",
    "count the web endpoints (n) and answer 1/n.",
])
def share(answer, lab):
    need_lab(lab)
    p = as_probability(answer)
    svc = facts.service(lab, WEB)
    n = len(facts.endpoint_addresses(lab, svc))
    if not n:
        raise AnswerError("web has no endpoints: scale it up first")
    shares = facts.first_share(facts.rendered_probabilities(n))
    if close_to(p, as_probability(str(round(shares[0], 6))), 0.005):
        return Right(f"{n} endpoints, each with 1/{n} ≈ {shares[0]:.3f} of the new connections.")
    return Wrong(f"{answer} is not each endpoint's share with {n} endpoints")
