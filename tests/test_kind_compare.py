"""`labkit compare-rules`: a kind node's live kube-proxy rules against labkit's rendering of the same objects."""
from __future__ import annotations

import pytest

from kind_support import RECORDINGS, attached_lab
from labkit.backends.kind import lab as kind_lab
from labkit.backends.kind.compare import compare_rules, owner, render_comparison, split_save
from labkit.cli import main as cli

NODE_TEXT = (RECORDINGS / "captured" / "node-kind-worker.iptables-save").read_text()  # real: captured/README.md

# the node's rules were captured from the kernel lab, which programs what kube-proxy and kindnet program
# (no docker embedded DNS, no kubelet canary chains there: a real kind node would list those here too)
NOT_COMPARED = """\
not compared (not kube-proxy's):
  nat KIND-MASQ-AGENT (kindnet's ip-masq-agent): 2 rules
"""


def test_the_recorded_node_has_no_difference(tmp_path):
    lab = attached_lab("compare", tmp_path)
    c = lab.compare_rules("kind-worker")
    lab.runner.assert_done()
    assert c.same
    assert render_comparison(c) == (
        "no difference: node kind-worker's kube-proxy rules (34 rules in 23 chains) are exactly labkit's rendering "
        "of the same Services and EndpointSlices\n\n" + NOT_COMPARED)


def test_a_deliberately_altered_copy_is_explained(tmp_path):
    lab = attached_lab("compare_altered", tmp_path)
    c = lab.compare_rules("worker")
    lab.runner.assert_done()
    assert render_comparison(c) == (
        "2 chains differ between node kind-worker's kube-proxy rules and labkit's rendering of the same objects "
        "(- only on the node, + only in labkit's rendering):\n"
        "\n"
        "nat KUBE-SERVICES: the service dispatch rules differ: a Service (or a port of one) is known to only one side\n"
        '  + -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in '
        'this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n'
        "\n"
        "nat KUBE-SVC-CDGGSHYLG3RE2FKL: only the --probability values differ (Service port default/web:http): "
        "kube-proxy gives the i-th of n endpoints 1/(n-i+1), so a different value means a different endpoint count "
        "or a changed rule\n"
        '  - -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.3:80" -m statistic '
        "--mode random --probability 0.50000000000 -j KUBE-SEP-BHMTFEMIGCOTLSJP\n"
        '  + -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.3:80" -m statistic '
        "--mode random --probability 0.33333333349 -j KUBE-SEP-BHMTFEMIGCOTLSJP\n"
        "\n" + NOT_COMPARED)


def test_the_order_of_kube_services_does_not_count_but_an_svc_chains_order_does():
    lines = NODE_TEXT.splitlines()
    svc = [i for i, x in enumerate(lines) if x.startswith("-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment")]
    lines[svc[0]], lines[svc[1]] = lines[svc[1]], lines[svc[0]]
    swapped = "\n".join(lines) + "\n"
    c = compare_rules(swapped, NODE_TEXT, "kind-worker")
    assert [(d.chain, d.reordered) for d in c.diffs] == [("KUBE-SVC-CDGGSHYLG3RE2FKL", True)]
    assert c.diffs[0].explanation.startswith("the same rules in another order")


def test_a_missing_endpoint_chain_is_named_with_its_address():
    lines = [x for x in NODE_TEXT.splitlines() if "KUBE-SEP-7MXUJOUG3G2M65AE" not in x]
    c = compare_rules("\n".join(lines) + "\n", NODE_TEXT, "kind-worker")
    sep = next(d for d in c.diffs if d.chain == "KUBE-SEP-7MXUJOUG3G2M65AE")
    assert sep.explanation == (
        "endpoint chain for 10.244.2.3:80 (Service port default/web:http) exists only in labkit's rendering: the node "
        "does not have this endpoint (an EndpointSlice changed between the two reads, or the objects differ)")


@pytest.mark.parametrize("chain, who", [
    ("KUBE-SVC-CDGGSHYLG3RE2FKL", "kube-proxy"), ("KUBE-KUBELET-CANARY", "kubelet"),
    ("KIND-MASQ-AGENT", "kindnet's ip-masq-agent"), ("DOCKER_OUTPUT", "docker's embedded DNS server (127.0.0.11)"),
    ("CNI-HOSTPORT-DNAT", "the CNI portmap plugin (hostPort)"), ("MY-CHAIN", "someone else")])
def test_owners_of_chains(chain, who):
    assert owner(chain) == who


def test_split_save_keeps_empty_chains_and_ignores_comments():
    t = split_save("# Generated\n*nat\n:A - [0:0]\n:B - [0:0]\n-A B -j RETURN\nCOMMIT\n")
    assert t == {"nat": {"A": [], "B": ["-A B -j RETURN"]}}


def test_the_cli_prints_the_comparison_and_exits_1_on_a_difference(tmp_path, monkeypatch, capsys):
    altered = attached_lab("compare_altered", tmp_path)
    same = attached_lab("compare", tmp_path)
    monkeypatch.setattr(kind_lab.KindLab, "attach", classmethod(lambda cls, name, *a, **k: altered))
    assert cli.main(["compare-rules", "--name", "lab", "--node", "kind-worker"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("2 chains differ between node kind-worker's kube-proxy rules")
    monkeypatch.setattr(kind_lab.KindLab, "attach", classmethod(lambda cls, name, *a, **k: same))
    assert cli.main(["compare-rules", "--node", "kind-worker"]) == 0
    assert capsys.readouterr().out.startswith("no difference: node kind-worker's")
