"""`labkit doctor`: what this machine allows, and the fix for each gap.

check_machine() looks (runs `unshare`, reads euid, finds programs);
render_doctor() turns the findings into text (pure), so its wording is tested.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from labkit.tools import find_tool, install_hint

LAB_TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "nft",
             "xtables-monitor", "unshare")


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_machine() -> list[Finding]:
    out = []
    root = os.geteuid() == 0
    out.append(Finding("root", root, "running as root" if root else f"running as uid {os.geteuid()}",
                       "" if root else "run as root (sudo labkit ...), or let user namespaces work "
                       "(below): either gives the netns backend"))
    out.append(_check_userns())
    for tool in LAB_TOOLS:
        path = find_tool(tool)
        out.append(Finding(tool, bool(path), path or "not installed", "" if path else install_hint(tool)))
    try:
        import importlib.util

        has_scapy = importlib.util.find_spec("scapy") is not None
    except (ImportError, ValueError):
        has_scapy = False
    out.append(Finding("scapy", has_scapy, "importable" if has_scapy else "not importable",
                       "" if has_scapy else "pip install scapy"))
    return out


def _check_userns() -> Finding:
    """A real try: the rootless lab's own `unshare` flags, running `true`."""
    from labkit.backends.netns.rootless import check_user_namespaces, read_userns_sysctls, render_userns_fix

    works, detail = check_user_namespaces()
    if works or not find_tool("unshare"):
        return Finding("user namespaces", works, detail, "" if works else install_hint("unshare"))
    return Finding("user namespaces", False, detail, render_userns_fix(read_userns_sysctls()))


def render_doctor(findings: list[Finding]) -> str:
    """The report: one line per check, then the verdict on each backend."""
    lines = []
    width = max(len(f.name) for f in findings) if findings else 0
    for f in findings:
        mark = "ok  " if f.ok else "MISS"
        line = f"{mark} {f.name:<{width}}  {f.detail}"
        if f.fix:
            line += f"\n     {'':<{width}}  fix: {f.fix}"
        lines.append(line)
    have = {f.name: f.ok for f in findings}
    tools = all(have.get(t, False) for t in ("ip", "iptables-restore", "iptables-save"))
    if tools and have.get("root", False):
        netns = "available (as root)"
    elif tools and have.get("user namespaces", False) and have.get("unshare", False):
        netns = "available without root, in a user namespace (netns-rootless)"
    else:
        netns = "not available (see the fixes above)"
    lines.append("")
    lines.append("netns backend: " + netns)
    lines.append("sim backend: available")
    return "\n".join(lines) + "\n"
