"""LoadBalancer: the cloud's load balancer allocates the ingress address and spreads over node:nodePort.

web-lb (Local) goes only to kind-worker2, the one node whose health check
passes (the control plane is excluded from load balancers, as kind labels it);
the client's address is kept end to end. web-shut's loadBalancerSourceRanges
leave the outside client out: the load balancer drops it. A pod asking web-lb's
address directly meets kube-proxy's own enforcement of the ranges on its node.
"""
import pytest

from outside_scenario import BACKENDS, entry, make_lab, port_of, svc, tuples

WEB = {"default/web-a", "default/web-b"}


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param)
    yield lab
    lab.down()


def test_ingress_addresses_come_from_the_pool(lab):
    assert [(s.meta.name, [i.ip for i in s.load_balancer_ingress]) for s in lab.services()
            if s.type == "LoadBalancer"] == [("web-lb", ["198.51.100.247"]), ("web-shut", ["198.51.100.208"])]


def test_an_allowed_source_reaches_a_pod_through_lb_and_node(lab):
    r = lab.http("outside", "198.51.100.247:80")
    sport = port_of(r.client_address)
    assert (r.verdict, r.reply_from) == ("answered", "198.51.100.247:80") and r.answered_by in WEB
    assert r.client_seen_as == f"192.0.2.10:{sport}"
    assert tuples(entry(lab, "lb", sport)) == (
        f"192.0.2.10:{sport} -> 198.51.100.247:80", f"172.18.0.4:30082 -> 192.0.2.10:{sport}")
    e = entry(lab, "kind-worker2", sport)
    assert str(e.orig) == f"192.0.2.10:{sport} -> 172.18.0.4:30082" and e.reply.sport == 8080


def test_the_trace_shows_both_hops(lab):
    t = lab.trace("outside", "198.51.100.247:80")
    assert t.verdict == "answered"
    hops = list(dict.fromkeys(s.netns for s in t.steps))
    assert hops == [lab.plan.cloud.lb_netns, lab.plan.node("kind-worker2").netns]
    dnat = [(s.netns, s.rule.split("--to-destination ")[1]) for s in t.steps if s.verdict == "DNAT"]
    assert dnat[0] == (lab.plan.cloud.lb_netns, "172.18.0.4:30082")
    assert dnat[1][0] == lab.plan.node("kind-worker2").netns and dnat[1][1].split(":")[0] in ("10.244.2.2",
                                                                                           "10.244.2.3")


def test_a_refused_source_is_dropped_by_the_load_balancer(lab):
    [r] = lab.probe("outside", "198.51.100.208:80")
    assert r.verdict == "no-reply"
    t = lab.trace("outside", "198.51.100.208:80")
    last = [s for s in t.steps if s.table != "raw"][-1]
    assert (last.netns, last.table, last.verdict) == (lab.plan.cloud.lb_netns, "mangle", "DROP")
    assert "source not in loadBalancerSourceRanges" in last.rule


def test_kube_proxy_enforces_the_ranges_for_a_pod(lab):
    assert svc(lab, "web-lb").load_balancer_source_ranges == ("192.0.2.0/24",)
    [r] = lab.probe("default/client", "198.51.100.247:80")
    assert r.verdict == "no-reply"
    t = lab.trace("default/client", "198.51.100.247:80")
    drop = [s for s in t.steps if s.verdict == "DROP"]
    assert [(s.table, s.chain) for s in drop] == [("filter", "KUBE-PROXY-FIREWALL")]
