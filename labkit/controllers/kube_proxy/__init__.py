"""kube-proxy: Services and EndpointSlices in, the node's rules out."""
from labkit.controllers.kube_proxy.config import (
    HostFeatures,
    KubeProxyConfig,
    parse_kube_proxy_config,
)
from labkit.controllers.kube_proxy.iptables import JumpRule, KubeProxyRuleset, render_iptables

__all__ = [
    "HostFeatures",
    "JumpRule",
    "KubeProxyConfig",
    "KubeProxyRuleset",
    "parse_kube_proxy_config",
    "render_iptables",
]
