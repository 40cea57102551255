"""Finding the external programs the lab drives, and saying how to get them.

Only the shells (backends, cli, tests) call this; the pure core never runs a
program. A missing program becomes one sentence a learner can act on:
"conntrack is not installed: apt-get install conntrack".
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from labkit.errors import MissingToolError

# Program -> the Debian package that provides it. Every package named here is
# installed by `./setup.sh` (tests/test_packaging.py checks that), except the
# ones in NOT_FROM_DEBIAN below.
DEBIAN_PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "tc": "iproute2",
    "bridge": "iproute2",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "iptables-restore": "iptables",
    "ip6tables": "iptables",
    "ip6tables-save": "iptables",
    "ip6tables-restore": "iptables",
    "iptables-legacy": "iptables",
    "iptables-nft": "iptables",
    "xtables-monitor": "iptables",
    "nft": "nftables",
    "conntrack": "conntrack",
    "dot": "graphviz",
    "nginx": "nginx-light",
    "dnsmasq": "dnsmasq-base",
    "sysctl": "procps",
    "pkill": "procps",
    "unshare": "util-linux",
    "nsenter": "util-linux",
}

# Programs that Debian 12 does not ship (or ships too old); the fix is a link.
NOT_FROM_DEBIAN: dict[str, str] = {
    "kind": "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/",
    "docker": "install Docker Engine: https://docs.docker.com/engine/install/debian/",
}

# Where Debian keeps administrator programs; an ordinary user's PATH often
# lacks them although the programs are installed and usable in a namespace.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def debian_package(name: str) -> str:
    """The Debian package that provides program `name` ("" when not from Debian)."""
    return DEBIAN_PACKAGES.get(name, "")


def install_hint(name: str) -> str:
    """How to get program `name`, as a command or a link."""
    if name in NOT_FROM_DEBIAN:
        return NOT_FROM_DEBIAN[name]
    return f"apt-get install {DEBIAN_PACKAGES.get(name, name)}"


def find_tool(name: str) -> str | None:
    """The full path of program `name` on PATH or in the sbin directories, or None."""
    dirs = os.environ.get("PATH", os.defpath).split(os.pathsep)
    dirs += [d for d in _SBIN_DIRS if d not in dirs]
    return shutil.which(name, path=os.pathsep.join(dirs))


def require_tool(name: str) -> str:
    """The full path of program `name`; MissingToolError saying how to install it."""
    path = find_tool(name)
    if path is None:
        raise MissingToolError(f"{name} is not installed: {install_hint(name)}")
    return path


@dataclass(frozen=True)
class Missing:
    """One unmet requirement: why, and the Debian package that would meet it."""

    reason: str
    package: str = ""  # "" for "not root" and for programs not from Debian


NOT_ROOT = "needs root: run as root or via sudo"


def missing_requirements(
    root: bool = False, tools: tuple[str, ...] | list[str] = (), *, euid: int | None = None
) -> list[Missing]:
    """What stands between this process and a lab that needs `root` and `tools`.

    Empty when everything is there. `labkit.lab()` uses it to explain why it
    fell back to `sim`; tests use it to skip with a reason.
    """
    missing: list[Missing] = []
    if root and (os.geteuid() if euid is None else euid) != 0:
        missing.append(Missing(NOT_ROOT))
    for name in tools:
        if find_tool(name) is None:
            missing.append(Missing(f"{name} is not installed: {install_hint(name)}", debian_package(name)))
    return missing
