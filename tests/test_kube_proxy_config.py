"""Reading a KubeProxyConfiguration, and the learner-facing errors it raises."""
from __future__ import annotations

import pytest

from labkit.controllers.kube_proxy.config import (
    HostFeatures,
    KubeProxyConfig,
    parse_kube_proxy_config,
)
from labkit.errors import ManifestError

KIND_CONFIG = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clusterCIDR: 10.244.0.0/16
conntrack:
  maxPerCore: 0
  tcpBeLiberal: false
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 1s
  syncPeriod: 0s
mode: iptables
nodePortAddresses: null
"""


def test_kind_style_config():
    assert parse_kube_proxy_config(KIND_CONFIG, "kube-proxy.yaml") == KubeProxyConfig(
        cluster_cidr="10.244.0.0/16", detect_local_mode="ClusterCIDR", masquerade_all=False,
        masquerade_bit=14, localhost_node_ports=True, node_port_addresses=())


def test_settings_are_read():
    text = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: "10.244.0.0/16,fd00:10:244::/56"
iptables:
  masqueradeAll: true
  masqueradeBit: 15
  localhostNodePorts: false
nodePortAddresses: [172.18.0.0/16, primary]
"""
    config = parse_kube_proxy_config(text, "kp.yaml")
    assert config == KubeProxyConfig(
        cluster_cidr="10.244.0.0/16,fd00:10:244::/56", masquerade_all=True, masquerade_bit=15,
        localhost_node_ports=False, node_port_addresses=("172.18.0.0/16", "primary"))
    assert config.mark == "0x00008000"


def test_empty_document_gives_kube_proxy_defaults():
    assert parse_kube_proxy_config("", "empty.yaml") == KubeProxyConfig()
    assert KubeProxyConfig().mark == "0x00004000"
    assert HostFeatures() == HostFeatures(random_fully=True, tcp_be_liberal=False,
                                          nfacct=frozenset())


def test_all_problems_reported_together():
    text = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.244.0.0/33
masqueradeAll: true
iptables:
  masqueradeBit: 32
  masqueradeAl: true
  localhostNodePorts: "yes"
nodePortAddresses: [10.0.0.0/8, nonsense, 7]
detectLocalMode: PodCIDR
"""
    with pytest.raises(ManifestError) as err:
        parse_kube_proxy_config(text, "kube-proxy.yaml")
    assert [(p.field, p.message) for p in err.value.problems] == [
        ("masqueradeAll", "unknown field"),
        ("iptables.masqueradeAl", "unknown field"),
        ("iptables.localhostNodePorts", "must be true or false, not a string 'yes'"),
        ("iptables.masqueradeBit", "is 32; it must be between 0 and 31"),
        ("clusterCIDR", "'10.244.0.0/33' is not a CIDR"),
        ("detectLocalMode", "is 'PodCIDR'"),
        ("nodePortAddresses[1]", "'nonsense' is not a CIDR"),
        ("nodePortAddresses[2]", "must be a string, not an integer"),
    ]
    assert str(err.value).splitlines()[0] == "kube-proxy.yaml: 8 problems found:"
    assert str(err.value).splitlines()[1] == (
        "  - KubeProxyConfiguration: masqueradeAll: unknown field (fix: remove it or check its "
        "spelling against kubeproxy.config.k8s.io/v1alpha1)")
    assert str(err.value).splitlines()[4] == (
        "  - KubeProxyConfiguration: iptables.masqueradeBit: is 32; it must be between 0 and 31 "
        "(fix: use 14, kube-proxy's default)")


@pytest.mark.parametrize("text, message", [
    ("iptables: [1, 2]\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: iptables: must be a mapping, not a list"),
    ("iptables:\n  masqueradeBit: -1\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: iptables.masqueradeBit: is -1; it must "
     "be between 0 and 31 (fix: use 14, kube-proxy's default)"),
    ("kind: KubeletConfiguration\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: kind: is 'KubeletConfiguration' "
     "(fix: use KubeProxyConfiguration)"),
    ("- a\n- b\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: must be a YAML mapping (fix: start the "
     "file with 'apiVersion: kubeproxy.config.k8s.io/v1alpha1')"),
    ("detectLocalMode: BridgeInterface\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: detectLocal.bridgeInterface: is "
     "required when detectLocalMode is BridgeInterface (fix: name the bridge, e.g. cbr0)"),
    ("iptables:\n  masqueradeBit: true\n",
     "x.yaml: 1 problem found:\n  - KubeProxyConfiguration: iptables.masqueradeBit: must be an "
     "integer, not a boolean True"),
])
def test_single_problem_messages(text, message):
    with pytest.raises(ManifestError) as err:
        parse_kube_proxy_config(text, "x.yaml")
    assert str(err.value) == message


def test_yaml_syntax_error_names_the_source():
    with pytest.raises(ManifestError) as err:
        parse_kube_proxy_config("iptables: [\n", "bad.yaml")
    assert str(err.value).startswith(
        "bad.yaml: 1 problem found:\n  - KubeProxyConfiguration: is not valid YAML: ")
    assert str(err.value).endswith("(fix: check indentation and quoting)")
