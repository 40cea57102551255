"""Egress: a pod reaches the internet only because its node masquerades it (both backends, same answers).

The internet host (203.0.113.10) runs netexec; /clientip tells the address it saw.
Masquerade on: the node's public address (the NAT gateway's 1:1 map of 172.18.0.3);
the node's conntrack holds the entry that un-SNATs the reply, the gateway's the
entry that un-NATs the public address. Masquerade off: the NAT gateway drops the
pod's packet (its source is no node's address), so no reply ever comes.
"""
import pytest

from outside_scenario import BACKENDS, entry, make_lab, port_of, tuples

INTERNET = "203.0.113.10:80"


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request):
    lab = make_lab(request.param)
    yield lab
    lab.down()


def test_masquerade_on_the_internet_sees_the_nodes_public_address(lab):
    lab.set_masquerade(True)
    r = lab.http("default/client", INTERNET, "/clientip")
    sport = port_of(r.client_address)
    assert (r.verdict, r.answered_by, r.status) == ("answered", "internet", 200)
    assert r.client_address == f"10.244.1.2:{sport}"
    assert r.body == f"198.51.100.3:{sport}"  # kind-worker's public address; kindnet keeps the port
    assert tuples(entry(lab, "kind-worker", sport)) == (
        f"10.244.1.2:{sport} -> 203.0.113.10:80", f"203.0.113.10:80 -> 172.18.0.3:{sport}")
    assert tuples(entry(lab, "natgw", sport)) == (
        f"172.18.0.3:{sport} -> 203.0.113.10:80", f"203.0.113.10:80 -> 198.51.100.3:{sport}")


def test_masquerade_off_the_nat_gateway_drops_the_pods_packet(lab):
    lab.set_masquerade(False)
    try:
        assert "KIND-MASQ-AGENT" not in lab.rules("kind-worker")
        r = lab.http("default/client", INTERNET, "/clientip", timeout=1.0)
        assert (r.verdict, r.answered_by, r.body) == ("no-reply", "", "")
        t = lab.trace("default/client", INTERNET)
        assert t.verdict == "no-reply"
        last = [s for s in t.steps if s.table != "raw"][-1]
        assert (last.netns, last.table, last.chain, last.verdict) == (
            lab.plan.cloud.natgw_netns, "filter", "FORWARD", "DROP")
        assert "the source is not a node address" in last.rule
        [p] = lab.probe("default/client", INTERNET)
        assert p.verdict == "no-reply"
        assert entry(lab, "natgw", port_of(p.client_address)) is None  # never accepted there
    finally:
        lab.set_masquerade(True)


def test_non_masquerade_cidrs_exempt_a_destination(lab):
    """ip-masq-agent's list: the internet's range added to it means pods go out unmasqueraded."""
    lab.set_masquerade(True, ["10.244.0.0/16", "203.0.113.0/24"])
    try:
        assert "-A KIND-MASQ-AGENT -d 203.0.113.0/24" in lab.rules("kind-worker")
        assert lab.http("default/client", INTERNET, timeout=1.0).verdict == "no-reply"
    finally:
        lab.set_masquerade(True)
    assert lab.http("default/client", INTERNET).answered_by == "internet"
