"""sessionAffinity ClientIP and internalTrafficPolicy Local, on both backends.

`sticky` keeps a client on one pod while it comes back within 2 s (kube-proxy's
`-m recent --rcheck --seconds 2`); the simulation's clock moves one second per
probe and `wait()` moves it on, the kernel's recent table uses real time and
`wait()` sleeps: the trace shows the affinity rule deciding before the timeout
and no longer after it, on both.
"""
import pytest

from outside_scenario import BACKENDS, make_lab

WEB = {"default/web-a", "default/web-b"}


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param)
    yield lab
    lab.down()


def affinity_hit(trace) -> list:
    """The affinity rules that sent this SYN to an endpoint."""
    return [s.verdict for s in trace.steps if "--rcheck" in s.rule and s.verdict.startswith("KUBE-SEP-")]


def test_repeat_connections_stick_until_the_timeout(lab):
    answers = [lab.http("default/client", "10.96.0.50:80").answered_by for _ in range(6)]
    assert len(set(answers)) == 1 and answers[0] in WEB
    assert len(affinity_hit(lab.trace("default/client", "10.96.0.50:80"))) == 1
    lab.wait(3)  # past timeoutSeconds: 2
    assert affinity_hit(lab.trace("default/client", "10.96.0.50:80")) == []


def test_internal_traffic_policy_local_without_a_local_endpoint_drops(lab):
    [r] = lab.probe("default/client", "10.96.0.51:80")  # client is on kind-worker, web on kind-worker2
    assert r.verdict == "no-reply"
    t = lab.trace("default/client", "10.96.0.51:80")
    drop = [s for s in t.steps if s.verdict == "DROP"]
    assert [(s.table, s.chain) for s in drop] == [("filter", "KUBE-SERVICES")]
    assert '"default/itp has no local endpoints"' in drop[0].rule


def test_internal_traffic_policy_local_stays_on_the_node(lab):
    answers = {r.answered_by for r in lab.probe("kind-worker2", "10.96.0.51:80", count=20)}
    assert answers == WEB
    assert lab.http("default/web-a", "10.96.0.51:80").answered_by in WEB
