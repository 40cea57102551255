"""NodePort from the outside client (192.0.2.10) on every node, and externalTrafficPolicy Local.

Both web pods run on kind-worker2. Cluster policy: every node answers; a node
without a pod forwards and masquerades, so the pod sees that node's address;
on kind-worker2 the masquerade source is the pod veth's gateway. Local policy:
the client's address is kept, and the nodes without a local endpoint drop.
kube-proxy's health check answers per node with its count of local endpoints.
"""
import pytest

from outside_scenario import BACKENDS, entry, make_lab, node_ip, port_of, tuples

WEB = {"default/web-a", "default/web-b"}
HEALTH = ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web-lb"\n\t},\n'
          '\t"localEndpoints": %d,\n\t"serviceProxyHealthy": true\n}')


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param)
    yield lab
    lab.down()


@pytest.mark.parametrize("node, seen", [("kind-control-plane", "172.18.0.2"), ("kind-worker", "172.18.0.3"),
                                        ("kind-worker2", "10.244.2.1")])
def test_node_port_answers_on_every_node(lab, node, seen):
    r = lab.http("outside", f"{node_ip(lab, node)}:30080")
    assert r.verdict == "answered" and r.answered_by in WEB
    assert r.reply_from == f"{node_ip(lab, node)}:30080"
    assert r.client_seen_as.split(":")[0] == seen  # masqueraded (the port may be remapped: --random-fully)
    e = entry(lab, node, port_of(r.client_address))
    pod_ip = next(p.pod_ip for p in lab.pods() if f"default/{p.meta.name}" == r.answered_by)
    assert e.orig.dst == node_ip(lab, node) and (e.reply.src, e.reply.sport) == (pod_ip, 8080)
    assert f"{e.reply.dst}:{e.reply.dport}" == r.client_seen_as


def test_local_policy_keeps_the_client_address(lab):
    r = lab.http("outside", f"{node_ip(lab, 'kind-worker2')}:30081")
    assert r.verdict == "answered" and r.answered_by in WEB
    assert r.client_seen_as == r.client_address and r.client_address.startswith("192.0.2.10:")


@pytest.mark.parametrize("node", ["kind-control-plane", "kind-worker"])
def test_local_policy_nodes_without_endpoints_drop(lab, node):
    [r] = lab.probe("outside", f"{node_ip(lab, node)}:30081")
    assert r.verdict == "no-reply"
    t = lab.trace("outside", f"{node_ip(lab, node)}:30081")
    drop = [s for s in t.steps if s.verdict == "DROP"]
    assert [(s.table, s.chain) for s in drop] == [("filter", "KUBE-EXTERNAL-SERVICES")]
    assert '"default/web-local has no local endpoints"' in drop[0].rule


@pytest.mark.parametrize("node, status, count", [("kind-control-plane", 503, 0), ("kind-worker", 503, 0),
                                                 ("kind-worker2", 200, 2)])
def test_health_check_node_port_counts_local_endpoints(lab, node, status, count):
    r = lab.http("outside", f"{node_ip(lab, node)}:32100", "/healthz")
    assert (r.verdict, r.answered_by, r.status, r.body) == ("answered", node, status, HEALTH % count)
