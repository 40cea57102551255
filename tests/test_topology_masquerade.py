"""kindnet's and the docker host's NAT rules, and merging restore texts into one load."""
from labkit.topology.masquerade import merge_restore_texts, render_kindnet_masquerade, render_network_masquerade


def test_kindnet_masquerade_is_kindnets_chain_with_its_comments():
    assert render_kindnet_masquerade("10.244.0.0/16") == """*nat
:POSTROUTING ACCEPT [0:0]
:KIND-MASQ-AGENT - [0:0]
-A POSTROUTING -m addrtype ! --dst-type LOCAL -m comment --comment "kind-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom KIND-MASQ-AGENT chain" -j KIND-MASQ-AGENT
-A KIND-MASQ-AGENT -d 10.244.0.0/16 -m comment --comment "kind-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A KIND-MASQ-AGENT -m comment --comment "kind-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE
COMMIT
"""


def test_network_masquerade():
    assert render_network_masquerade("172.18.0.0/16", "lkdemo-br") == (
        "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -s 172.18.0.0/16 ! -o lkdemo-br -j MASQUERADE\nCOMMIT\n")


def test_merge_keeps_tables_in_order_chains_once_and_rules_in_order():
    a = "# kube-proxy\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j KUBE-X\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n"
    b = "*nat\n:POSTROUTING DROP [0:0]\n:KIND-MASQ-AGENT - [0:0]\n-A POSTROUTING -j KIND-MASQ-AGENT\nCOMMIT\n"
    assert merge_restore_texts(a, b) == """*filter
:INPUT ACCEPT [0:0]
-A INPUT -j KUBE-X
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
:KIND-MASQ-AGENT - [0:0]
-A POSTROUTING -j KUBE-POSTROUTING
-A POSTROUTING -j KIND-MASQ-AGENT
COMMIT
"""


def test_merge_of_nothing_is_nothing():
    assert merge_restore_texts("", "") == ""
