"""kube-proxy's chain names: a fixed prefix and 16 base32 characters of a sha256.

iptables chain names must fit in 28 characters, so kube-proxy hashes the
service port name ("ns/svc:port") with the lower-case protocol; endpoint
chains hash the endpoint ("10.0.0.1:80") too. Same input, same name, on
every node: that is what lets a learner find a Service in iptables-save.
"""
from __future__ import annotations

from hashlib import sha256

SVC_PREFIX = "KUBE-SVC-"  # Cluster traffic policy: all usable endpoints
SVL_PREFIX = "KUBE-SVL-"  # Local traffic policy: this node's endpoints
FW_PREFIX = "KUBE-FW-"  # loadBalancerSourceRanges filter
EXT_PREFIX = "KUBE-EXT-"  # external destinations (NodePort, externalIPs, LB IPs)
SEP_PREFIX = "KUBE-SEP-"  # one endpoint

SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SVL_PREFIX, SEP_PREFIX, FW_PREFIX, EXT_PREFIX)


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# 10 bits -> 2 base32 characters; 16 characters need exactly the first 10 bytes.
_PAIRS = [a + b for a in _B32 for b in _B32]


def _b32_16(digest: bytes) -> str:
    """base32.StdEncoding.EncodeToString(digest)[:16], without encoding the rest."""
    n = int.from_bytes(digest[:10], "big")
    p = _PAIRS
    return (p[n >> 70] + p[(n >> 60) & 1023] + p[(n >> 50) & 1023] + p[(n >> 40) & 1023]
            + p[(n >> 30) & 1023] + p[(n >> 20) & 1023] + p[(n >> 10) & 1023] + p[n & 1023])


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """First 16 base32 characters of sha256(name + protocol)."""
    return _b32_16(sha256((service_port_name + protocol).encode()).digest())


def service_chain_names(service_port_name: str, protocol: str) -> tuple[str, str, str, str]:
    """(KUBE-SVC-, KUBE-SVL-, KUBE-FW-, KUBE-EXT-) names for one service port."""
    h = port_proto_hash(service_port_name, protocol)
    return SVC_PREFIX + h, SVL_PREFIX + h, FW_PREFIX + h, EXT_PREFIX + h


def endpoint_chain_name(service_port_name: str, protocol: str, endpoint: str) -> str:
    """KUBE-SEP- name for one endpoint ("ip:port") of one service port."""
    return SEP_PREFIX + _b32_16(sha256((service_port_name + protocol + endpoint).encode()).digest())


def is_service_chain(name: str) -> bool:
    """Does kube-proxy own this per-service chain (and may delete it)?"""
    return name.startswith(SERVICE_CHAIN_PREFIXES)
