"""Exercise checks: `labkit.checks.<notebook>.<exercise>(answer, lab)`.

One module per notebook:
  welcome      00.00-welcome
  pods         01.00-pods-come-and-go
  services     02.00-services
  kube_proxy   03.00-kube-proxy-and-dnat
  conntrack    04.00-conntrack

Each check prints "Correct: ..." or the next hint and returns a CheckResult
(correct, message); it never raises at a learner. The expected answer is
computed from the live lab on every call (core.py explains the hint counter).
"""
from labkit.checks import conntrack, kube_proxy, pods, services, welcome
from labkit.checks.core import CheckResult, reset_hints

__all__ = ["CheckResult", "conntrack", "kube_proxy", "pods", "reset_hints", "services", "welcome"]
