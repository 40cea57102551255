"""Exercise checks: `labkit.checks.<notebook>.<exercise>(answer, lab)`.

One module per notebook:
  welcome      00.00-welcome
  pods         01.00-pods-come-and-go
  services     02.00-services
  kube_proxy   03.00-kube-proxy-and-dnat
  conntrack    04.00-conntrack
  egress       05.00-egress-and-snat
  nodeport     06.00-nodeport-and-loadbalancer
  ingress      07.00-ingress-and-gateway-api
  netpol       08.00-network-policy
  troubleshooting 09.00-troubleshooting

Each check prints "Correct: ..." or the next hint and returns a CheckResult
(correct, message); it never raises at a learner. The expected answer is
computed from the live lab on every call (core.py explains the hint counter).
"""
from labkit.checks import conntrack, egress, ingress, kube_proxy, netpol, nodeport, pods, services, troubleshooting, welcome
from labkit.checks.core import CheckResult, reset_hints

__all__ = ["CheckResult", "conntrack", "egress", "ingress", "kube_proxy", "netpol", "nodeport", "pods", "reset_hints", "services",
           "troubleshooting", "welcome"]
