"""Syntax checks the API server applies to names, ports and addresses.

Each check takes one value and returns None when it is fine, or a pair
(message, fix) written for a learner. The rules are Kubernetes' own
(k8s.io/apimachinery/pkg/util/validation), so a manifest labkit accepts is
one the API server would accept too.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable, Optional

Verdict = Optional[tuple[str, str]]
Check = Callable[[object], Verdict]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER = re.compile(r"[a-z]")
_CIDR_PREFIX = re.compile(r"^(0|[1-9][0-9]{0,2})$")


def quote(value: str, limit: int = 60) -> str:
    """A value as the learner typed it, quoted for a one-line message.

    Control characters are escaped and very long values cut short.
    """
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value[:limit])
    more = f'..." ({len(value)} characters)' if len(value) > limit else '"'
    return f'"{shown}{more}'


def suggest_name(value: str, max_len: int = 63) -> str:
    """A DNS-1123 label close to `value`, for the fix of a bad name."""
    s = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)[:max_len].strip("-")
    return s or "web"


def check_dns1123_label(value: str) -> Verdict:
    if len(value) > 63:
        return (f"must be at most 63 characters, got {len(value)}",
                f'shorten it, e.g. "{suggest_name(value)}"')
    if not _DNS1123_LABEL.match(value):
        return (f"{quote(value)} is not a valid DNS-1123 label: use lowercase letters, digits "
                f"and '-', starting and ending with a letter or digit",
                f'e.g. "{suggest_name(value)}"')
    return None


def check_dns1035_label(value: str) -> Verdict:
    if len(value) > 63:
        return (f"must be at most 63 characters, got {len(value)}",
                f'shorten it, e.g. "{suggest_name(value)}"')
    if not _DNS1035_LABEL.match(value):
        good = suggest_name(value)
        if not good[0].isalpha():
            good = "svc-" + good
        return (f"{quote(value)} is not a valid DNS-1035 label: use lowercase letters, digits "
                f"and '-', starting with a letter and ending with a letter or digit",
                f'e.g. "{good[:63]}"')
    return None


def check_dns1123_subdomain(value: str) -> Verdict:
    if len(value) > 253:
        return (f"must be at most 253 characters, got {len(value)}", "shorten it")
    if not _DNS1123_SUBDOMAIN.match(value):
        good = ".".join(suggest_name(p) for p in value.split(".") if p) or "web"
        return (f"{quote(value)} is not a valid DNS-1123 subdomain: use lowercase letters, "
                f"digits, '-' and '.', each dot-separated part starting and ending with a "
                f"letter or digit", f'e.g. "{good[:253]}"')
    return None


def check_wildcard_host(value: str) -> Verdict:
    """Ingress hosts: a DNS subdomain, optionally with one leading '*.' label."""
    if _is_ip(value):
        return (f"{quote(value)} is an IP address; an Ingress host must be a DNS name",
                "use a name such as \"web.example.com\", or leave host out to match any host")
    rest = value[2:] if value.startswith("*.") else value
    if "*" in rest:
        return (f"{quote(value)} is not a valid host: a wildcard may only be the whole first "
                f"label, as in \"*.example.com\"", 'write it as "*.example.com"')
    bad = check_dns1123_subdomain(rest)
    if bad:
        return (f"{quote(value)} is not a valid host name: use lowercase letters, digits, '-' "
                f"and '.', optionally starting with \"*.\"", bad[1])
    return None


def check_qualified_name(value: str) -> Verdict:
    """A label or annotation key: optional DNS-subdomain prefix, '/', name."""
    prefix, slash, name = value.rpartition("/")
    what = f"key {quote(value)}"
    if slash and not prefix:
        return (f"{what} has an empty prefix before '/'", "remove the '/' or add a prefix like example.com/")
    if slash and prefix.count("/"):
        return (f"{what} may contain at most one '/'", 'use a key like "example.com/name"')
    if slash and check_dns1123_subdomain(prefix):
        return (f"{what}: the prefix {quote(prefix)} must be a DNS subdomain "
                f"(lowercase letters, digits, '-' and '.')", 'use a prefix like "example.com"')
    if not name:
        return (f"{what} has an empty name", 'use a key like "app"')
    if len(name) > 63:
        return (f"{what}: the name part must be at most 63 characters, got {len(name)}", "shorten it")
    if not _QUALIFIED_NAME.match(name):
        return (f"{what} is not a valid key: use letters, digits, '-', '_' and '.', starting and "
                f"ending with a letter or digit (with an optional DNS prefix and '/')",
                'use a key like "app" or "app.kubernetes.io/name"')
    return None


def check_label_value(value: str) -> Verdict:
    if len(value) > 63:
        return (f"label value {quote(value)} is longer than 63 characters", "shorten it")
    if not _LABEL_VALUE.match(value):
        return (f"{quote(value)} is not a valid label value: use letters, digits, '-', '_' and "
                f"'.', starting and ending with a letter or digit (or leave it empty)",
                f'e.g. "{suggest_name(value)}"')
    return None


def check_port_name(value: str) -> Verdict:
    """An IANA service name: how a container port or targetPort is named."""
    if len(value) > 15:
        return (f"port name {quote(value)} is longer than 15 characters", "shorten it, e.g. \"http\"")
    if not _IANA_SVC_NAME.match(value):
        return (f"port name {quote(value)} may contain only lowercase letters, digits and '-'",
                'use a name like "http" or "metrics"')
    if not _HAS_LETTER.search(value):
        return (f"port name {quote(value)} must contain at least one letter",
                "write a number without quotes for a port number, or use a name like \"http\"")
    if "--" in value:
        return (f"port name {quote(value)} must not contain '--'", "use a single '-'")
    if value.startswith("-") or value.endswith("-"):
        return (f"port name {quote(value)} must not start or end with '-'", "remove the leading or trailing '-'")
    return None


def check_port(value: int) -> Verdict:
    if not 1 <= value <= 65535:
        return (f"must be between 1 and 65535, got {_num(value)}", "use a port number from 1 to 65535")
    return None


def check_port_or_zero(value: int) -> Verdict:
    """Fields where 0 means "not set" (nodePort, hostPort, healthCheckNodePort)."""
    if not 0 <= value <= 65535:
        return (f"must be between 1 and 65535 (or 0 to leave it unset), got {_num(value)}",
                "use a port number from 1 to 65535, or leave the field out")
    return None


def check_non_negative(value: int) -> Verdict:
    if value < 0:
        return (f"must not be negative, got {_num(value)}", "use 0 or a positive number")
    return None


def check_int32(value: int) -> Verdict:
    if not -(2**31) <= value < 2**31:
        return (f"{_num(value)} is too large (the API stores a 32-bit integer)", "use a smaller number")
    return None


def _num(value: int) -> str:
    try:
        text = str(value)
    except ValueError:  # more digits than Python will print
        return "a number with thousands of digits"
    return text if len(text) <= 20 else text[:12] + f"... ({len(text)} digits)"


def _is_ip(value: str) -> bool:
    return parse_ip(value) is not None


def parse_ip(value: str) -> Optional[ipaddress._BaseAddress]:
    """The address, or None: no zone ids, no leading zeros, no spaces."""
    if "%" in value or value != value.strip():
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def parse_cidr(value: str) -> Optional[ipaddress._BaseNetwork]:
    """The network (host bits allowed, as Kubernetes' ParseCIDRSloppy), or None."""
    addr, slash, prefix = value.partition("/")
    if not slash or not _CIDR_PREFIX.match(prefix) or parse_ip(addr) is None:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def check_ip(value: str) -> Verdict:
    if parse_ip(value) is None:
        return (f"{quote(value)} is not a valid IP address", 'write an IPv4 address like "10.96.0.10" '
                'or an IPv6 address like "fd00::10"')
    return None


def check_ipv4(value: str) -> Verdict:
    ip = parse_ip(value)
    if ip is None or ip.version != 4:
        return (f"{quote(value)} is not a valid IPv4 address", 'write an address like "10.244.1.5"')
    return None


def check_ipv6(value: str) -> Verdict:
    ip = parse_ip(value)
    if ip is None or ip.version != 6:
        return (f"{quote(value)} is not a valid IPv6 address", 'write an address like "fd00:10:244::5"')
    return None


def check_cidr(value: str) -> Verdict:
    if parse_cidr(value) is None:
        return (f"{quote(value)} is not a valid CIDR", 'write an address and a prefix length, e.g. '
                '"203.0.113.0/24" or "2001:db8::/64"')
    return None


def check_cluster_ip(value: str) -> Verdict:
    if value in ("", "None"):
        return None
    if parse_ip(value) is None:
        return (f"{quote(value)} is not a valid cluster IP", 'use an IP from the Service CIDR '
                '(e.g. "10.96.0.10"), "None" for a headless Service, or leave it out')
    return None


def check_external_ip(value: str) -> Verdict:
    """externalIPs: a real unicast address (Kubernetes' ValidateNonSpecialIP)."""
    ip = parse_ip(value)
    if ip is None:
        return check_ip(value)
    if ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_multicast:
        return (f"{quote(value)} may not be an unspecified, loopback, link-local or multicast address",
                'use an address outside routers can reach, e.g. "203.0.113.10"')
    return None
