"""NetworkPolicy pitfalls, one named test each, on a small cluster of our own.

Cluster: namespace `shop` (team=web) with pods web (app=web, port http=8080/TCP,
dns-ish udp port 5353 named "mdns"), api (app=api, tier=backend) and job (no app
label); namespace `ops` (team=ops) with pod monitor (app=monitor); namespace
kube-system with coredns (k8s-app=kube-dns). Outside: 203.0.113.7.
"""
from __future__ import annotations

import pytest

from labkit.controllers.netpol import (
    EGRESS,
    INGRESS,
    build_cluster,
    check_connection,
    effective_policy_types,
    resolve_endpoint,
)
from labkit.controllers.netpol.evaluate import NetpolError
from labkit.model.load import load_manifests

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {team: ops}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: kind-worker
  containers:
  - name: web
    ports: [{containerPort: 8080, name: http}, {containerPort: 5353, name: mdns, protocol: UDP}]
status: {podIP: 10.244.1.5, hostIP: 172.18.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api, tier: backend}}
spec:
  nodeName: kind-worker2
  containers: [{name: api, ports: [{containerPort: 9090, name: http}]}]
status: {podIP: 10.244.2.6, hostIP: 172.18.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: job, namespace: shop}
spec: {nodeName: kind-worker, containers: [{name: job}]}
status: {podIP: 10.244.1.7, hostIP: 172.18.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: monitor, namespace: ops, labels: {app: monitor}}
spec: {nodeName: kind-worker2, containers: [{name: m}]}
status: {podIP: 10.244.2.8, hostIP: 172.18.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {nodeName: kind-worker2, containers: [{name: coredns, ports: [{containerPort: 53, name: dns, protocol: UDP}, {containerPort: 53, name: dns-tcp}]}]}
status: {podIP: 10.244.2.9, hostIP: 172.18.0.4}
"""


def policy(name: str, spec: str, namespace: str = "shop") -> str:
    return (f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n"
            + "".join(f"  {line}\n" for line in spec.strip().splitlines()))


def cluster(*policies: str):
    return build_cluster(load_manifests(CLUSTER + "".join(policies)))


def verdict(c, src: str, dst: str, port: int = 8080, protocol: str = "TCP"):
    return check_connection(c, resolve_endpoint(c, src), resolve_endpoint(c, dst), port, protocol)


def allowed(c, src, dst, port=8080, protocol="TCP") -> bool:
    return verdict(c, src, dst, port, protocol).allowed


# --- policyTypes defaulting ---------------------------------------------------


def test_policy_types_absent_means_ingress_when_there_is_no_egress_rule():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress: []"))
    assert effective_policy_types(c.policies[0]) == (INGRESS,)
    assert not allowed(c, "shop/api", "shop/web")
    assert allowed(c, "shop/web", "shop/api")  # egress not isolated


def test_policy_types_absent_with_egress_rules_means_ingress_and_egress():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\negress: [{ports: [{port: 9090}]}]"))
    assert effective_policy_types(c.policies[0]) == (INGRESS, EGRESS)
    assert not allowed(c, "shop/api", "shop/web")  # ingress isolated too, no ingress rule
    assert allowed(c, "shop/web", "shop/api", 9090)
    assert not allowed(c, "shop/web", "shop/api", 9091)


def test_empty_egress_list_without_policy_types_does_not_isolate_egress():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\negress: []"))
    assert effective_policy_types(c.policies[0]) == (INGRESS,)
    assert allowed(c, "shop/web", "shop/api", 9090)


def test_empty_policy_types_list_is_defaulted_like_an_absent_one():
    c = cluster(policy("p", "podSelector: {}\npolicyTypes: []\negress: [{}]"))
    assert c.policies[0].policy_types == ()
    assert effective_policy_types(c.policies[0]) == (INGRESS, EGRESS)


def test_policy_types_egress_only_leaves_ingress_open():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Egress]"))
    assert allowed(c, "shop/api", "shop/web")
    assert not allowed(c, "shop/web", "shop/api", 9090)


# --- direction and union ------------------------------------------------------


def test_connection_needs_source_egress_and_destination_ingress():
    c = cluster(
        policy("api-only-from-web", "podSelector: {matchLabels: {app: api}}\n"
               "ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]"),
        policy("web-no-egress", "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Egress]"))
    v = verdict(c, "shop/web", "shop/api", 9090)
    assert v.ingress.allowed and not v.egress.allowed and not v.allowed
    assert v.reason == (
        "denied: shop/web -> shop/api TCP/9090. Egress from shop/web: isolated by shop/web-no-egress; "
        "no egress rule of them allows it. Ingress to shop/api: isolated by shop/api-only-from-web; "
        "allowed by NetworkPolicy shop/api-only-from-web ingress[0] from[0], any port (no ports).")


def test_policies_are_additive_no_policy_can_deny_what_another_allows():
    deny = policy("deny-all", "podSelector: {}\npolicyTypes: [Ingress]")
    allow = policy("allow-web", "podSelector: {matchLabels: {app: api}}\n"
                   "ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]")
    assert not allowed(cluster(deny), "shop/web", "shop/api", 9090)
    v = verdict(cluster(deny, allow), "shop/web", "shop/api", 9090)
    assert v.allowed
    assert v.ingress.isolated_by == ("shop/allow-web", "shop/deny-all")
    assert [r.policy for r in v.ingress.allowed_by] == ["shop/allow-web"]


def test_policy_in_another_namespace_does_not_select_pods_here():
    c = cluster(policy("deny-all", "podSelector: {}\npolicyTypes: [Ingress]", namespace="ops"))
    assert allowed(c, "shop/web", "shop/api", 9090)
    assert not allowed(c, "shop/web", "ops/monitor", 9090)


# --- empty vs absent ------------------------------------------------------------


def test_empty_ingress_list_denies_everything_but_one_empty_rule_allows_everything():
    deny = cluster(policy("p", "podSelector: {}\ningress: []"))
    allow_all = cluster(policy("p", "podSelector: {}\ningress: [{}]"))
    assert not allowed(deny, "ops/monitor", "shop/web")
    assert allowed(allow_all, "ops/monitor", "shop/web")
    assert allowed(allow_all, "203.0.113.7", "shop/web", 1, "SCTP")


def test_empty_from_list_matches_every_peer_like_an_absent_one():
    absent = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: 8080}]}]"))
    empty = cluster(policy("p", "podSelector: {}\ningress: [{from: [], ports: [{port: 8080}]}]"))
    for c in (absent, empty):
        assert allowed(c, "203.0.113.7", "shop/web")
        assert allowed(c, "ops/monitor", "shop/web")
        assert not allowed(c, "ops/monitor", "shop/web", 8081)


def test_empty_ports_list_matches_every_port_and_protocol():
    c = cluster(policy("p", "podSelector: {}\ningress: [{from: [{podSelector: {}}], ports: []}]"))
    assert allowed(c, "shop/job", "shop/web", 5353, "UDP")
    assert allowed(c, "shop/job", "shop/web", 1, "SCTP")


# --- peers --------------------------------------------------------------------------


def test_pod_and_namespace_selector_in_one_peer_means_and():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress:\n"
                       "- from:\n  - namespaceSelector: {matchLabels: {team: ops}}\n"
                       "    podSelector: {matchLabels: {app: api}}"))
    assert not allowed(c, "ops/monitor", "shop/web")  # namespace matches, pod does not
    assert not allowed(c, "shop/api", "shop/web")  # pod matches, namespace does not


def test_pod_and_namespace_selector_in_two_peers_means_or():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress:\n"
                       "- from:\n  - namespaceSelector: {matchLabels: {team: ops}}\n"
                       "  - podSelector: {matchLabels: {app: api}}"))
    assert allowed(c, "ops/monitor", "shop/web")
    assert allowed(c, "shop/api", "shop/web")
    assert not allowed(c, "shop/job", "shop/web")
    assert [r.peer for r in verdict(c, "shop/api", "shop/web").ingress.allowed_by] == [1]


def test_bare_pod_selector_means_pods_of_the_policy_namespace_only():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\n"
                       "ingress: [{from: [{podSelector: {}}]}]"))
    assert allowed(c, "shop/job", "shop/web")
    assert not allowed(c, "ops/monitor", "shop/web")
    assert not allowed(c, "kube-system/coredns", "shop/web")


def test_namespace_selector_alone_means_every_pod_of_matching_namespaces():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\n"
                       "ingress: [{from: [{namespaceSelector: {}}]}]"))
    for src in ("shop/job", "ops/monitor", "kube-system/coredns"):
        assert allowed(c, src, "shop/web")
    assert not allowed(c, "203.0.113.7", "shop/web")  # pods only, not the outside


def test_namespace_name_label_is_set_on_every_namespace():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress:\n- from:\n"
                       "  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}"))
    assert allowed(c, "kube-system/coredns", "shop/web")
    assert not allowed(c, "ops/monitor", "shop/web")


@pytest.mark.parametrize("operator,values,from_job,from_api", [
    ("In", "[backend]", False, True),
    ("NotIn", "[backend]", True, False),  # job has no tier label: NotIn matches it
    ("Exists", "[]", False, True),
    ("DoesNotExist", "[]", True, False),  # matches the pod lacking the key
])
def test_match_expressions_on_a_key_some_pods_lack(operator, values, from_job, from_api):
    vals = f", values: {values}" if values != "[]" else ""
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress:\n- from:\n"
                       f"  - podSelector: {{matchExpressions: [{{key: tier, operator: {operator}{vals}}}]}}"))
    assert (allowed(c, "shop/job", "shop/web"), allowed(c, "shop/api", "shop/web")) == (from_job, from_api)


def test_ipblock_except_carves_out_addresses():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\ningress:\n- from:\n"
                       "  - ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.0/29]}"))
    assert not allowed(c, "203.0.113.7", "shop/web")
    assert allowed(c, "203.0.113.8", "shop/web")
    assert not allowed(c, "198.51.100.1", "shop/web")


def test_pod_ip_inside_an_ipblock_matches_the_pod():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\n"
                       "ingress: [{from: [{ipBlock: {cidr: 10.244.2.0/24}}]}]"))
    assert allowed(c, "shop/api", "shop/web")  # 10.244.2.6
    assert allowed(c, "ops/monitor", "shop/web")  # 10.244.2.8, another namespace
    assert not allowed(c, "shop/job", "shop/web")  # 10.244.1.7


def test_external_address_has_no_policies_and_matches_only_ipblocks():
    c = cluster(policy("p", "podSelector: {}\npolicyTypes: [Egress]\n"
                       "egress: [{to: [{namespaceSelector: {}}]}]"))
    v = verdict(c, "shop/web", "203.0.113.7", 443)
    assert not v.allowed
    assert v.ingress.render() == "ingress to 203.0.113.7: not a pod, no policy applies"
    c2 = cluster(policy("p", "podSelector: {}\npolicyTypes: [Egress]\n"
                        "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]"))
    assert allowed(c2, "shop/web", "203.0.113.7", 443)


# --- ports --------------------------------------------------------------------------


def test_port_protocol_defaults_to_tcp():
    c = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: 5353}]}]"))
    assert c.policies[0].ingress[0].ports[0].protocol == "TCP"
    assert allowed(c, "shop/job", "shop/web", 5353, "TCP")
    assert not allowed(c, "shop/job", "shop/web", 5353, "UDP")


def test_udp_and_sctp_ports_match_only_their_protocol():
    c = cluster(policy("p", "podSelector: {}\n"
                       "ingress: [{ports: [{port: 53, protocol: UDP}, {port: 9, protocol: SCTP}]}]"))
    assert allowed(c, "shop/job", "shop/web", 53, "UDP")
    assert allowed(c, "shop/job", "shop/web", 9, "SCTP")
    assert not allowed(c, "shop/job", "shop/web", 53, "TCP")
    assert not allowed(c, "shop/job", "shop/web", 9, "TCP")


def test_end_port_range_is_inclusive():
    c = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: 30000, endPort: 30002}]}]"))
    assert [allowed(c, "shop/job", "shop/web", p) for p in (29999, 30000, 30002, 30003)] == [
        False, True, True, False]


def test_named_port_is_resolved_on_the_destination_pod():
    # "http" is 8080 on web and 9090 on api: one rule, two numbers
    c = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: http}]}]"))
    assert allowed(c, "shop/job", "shop/web", 8080)
    assert not allowed(c, "shop/job", "shop/web", 9090)
    assert allowed(c, "shop/job", "shop/api", 9090)
    assert not allowed(c, "shop/job", "shop/api", 8080)
    assert not allowed(c, "shop/job", "shop/job", 8080)  # job has no port named http


def test_named_port_on_egress_is_resolved_on_the_destination_not_the_source():
    c = cluster(policy("p", "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Egress]\n"
                       "egress: [{ports: [{port: http}]}]"))
    assert allowed(c, "shop/web", "shop/api", 9090)  # api's http
    assert not allowed(c, "shop/web", "shop/api", 8080)  # web's own http is irrelevant
    assert not allowed(c, "shop/web", "203.0.113.7", 8080)  # an outside address has no named ports


def test_named_port_takes_the_protocol_into_account():
    c = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: mdns}]}]"))  # TCP by default
    assert not allowed(c, "shop/job", "shop/web", 5353, "UDP")
    assert not allowed(c, "shop/job", "shop/web", 5353, "TCP")
    c2 = cluster(policy("p", "podSelector: {}\ningress: [{ports: [{port: mdns, protocol: UDP}]}]"))
    assert allowed(c2, "shop/job", "shop/web", 5353, "UDP")


# --- DNS and the node ---------------------------------------------------------------


def test_default_deny_egress_also_blocks_dns():
    deny = policy("deny-egress", "podSelector: {}\npolicyTypes: [Egress]")
    v = verdict(cluster(deny), "shop/web", "kube-system/coredns", 53, "UDP")
    assert not v.allowed
    assert v.egress.render() == ("egress from shop/web: isolated by shop/deny-egress; "
                                 "no egress rule of them allows it")
    dns = policy("allow-dns", "podSelector: {}\npolicyTypes: [Egress]\negress:\n"
                 "- to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n"
                 "  ports: [{port: 53, protocol: UDP}]")
    c = cluster(deny, dns)
    assert allowed(c, "shop/web", "kube-system/coredns", 53, "UDP")
    assert not allowed(c, "shop/web", "kube-system/coredns", 53, "TCP")  # DNS over TCP: not listed


def test_the_pods_own_node_may_always_reach_it():
    c = cluster(policy("p", "podSelector: {}\ningress: []"))
    v = verdict(c, "172.18.0.3", "shop/web")
    assert v.allowed
    assert v.ingress.exemption == "traffic from the pod's own node is always allowed"
    assert not allowed(c, "172.18.0.4", "shop/web")  # another node is not exempt


def test_loopback_is_flagged_for_dataplanes_that_never_see_it():
    c = cluster(policy("p", "podSelector: {}\ningress: []"))
    v = verdict(c, "shop/web", "shop/web")
    assert v.loopback and not v.allowed
    assert v.reason.endswith("the upstream e2e suite ignores it.)")


# --- questions that cannot be answered --------------------------------------------


def test_unknown_pod_is_a_clear_error():
    c = cluster()
    with pytest.raises(NetpolError) as e:
        resolve_endpoint(c, "shop/nope")
    assert str(e.value) == ("pod shop/nope is not in the manifests (fix: name a pod as NAMESPACE/NAME; "
                            "known pods: shop/web, shop/api, shop/job, ops/monitor, kube-system/coredns)")


@pytest.mark.parametrize("port,protocol,message", [
    (0, "TCP", "port 0 is not a port number (fix: give 1-65535)"),
    (80, "ICMP", "protocol 'ICMP' is not one NetworkPolicy knows (fix: use one of TCP, UDP, SCTP)"),
])
def test_bad_probe_is_a_clear_error(port, protocol, message):
    c = cluster()
    with pytest.raises(NetpolError) as e:
        verdict(c, "shop/web", "shop/api", port, protocol)
    assert str(e.value) == message


def test_an_address_that_is_a_pod_ip_is_that_pod():
    c = cluster()
    assert resolve_endpoint(c, "10.244.2.6").name == "shop/api"
    assert resolve_endpoint(c, "203.0.113.7").pod is None
