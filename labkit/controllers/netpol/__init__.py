"""NetworkPolicy (networking.k8s.io/v1): who may talk to whom, and why.

evaluate  the verdict engine: one connection in, allowed or denied out, with
          the policies and the rule that decided it
matrix    the pod-by-pod truth table, rendered like the upstream e2e suite's
render    the same decisions as iptables-restore filter rules for one node,
          the way a CNI's policy agent programs them
probed    the predicted matrix beside the one a lab's real packets gave
"""
from labkit.controllers.netpol.evaluate import (  # noqa: F401
    EGRESS,
    INGRESS,
    DirectionVerdict,
    Endpoint,
    PolicyCluster,
    RuleRef,
    Verdict,
    build_cluster,
    check_connection,
    effective_policy_types,
    resolve_endpoint,
)
