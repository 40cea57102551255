"""`labkit doctor`: what this machine allows, and the fix for each gap.

check_machine() looks (runs `unshare`, reads euid, finds programs);
render_doctor() turns the findings into text (pure), so its wording is tested.
"""
from __future__ import annotations

import os
import subprocess
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
                       "" if root else "run as root (sudo labkit ...) for the netns backend"))
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
    path = find_tool("unshare")
    if not path:
        return Finding("user namespaces", False, "cannot test: unshare is missing", install_hint("unshare"))
    try:
        p = subprocess.run([path, "-Urn", "true"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Finding("user namespaces", False, str(e), "")
    if p.returncode == 0:
        return Finding("user namespaces", True, "unshare -Urn works")
    return Finding("user namespaces", False, p.stderr.strip() or f"unshare -Urn exited {p.returncode}",
                   "sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or "
                   "sysctl -w user.max_user_namespaces=15000")


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
    netns = have.get("root", False) and all(have.get(t, False) for t in ("ip", "iptables-restore", "iptables-save"))
    lines.append("")
    lines.append("netns backend: " + ("available" if netns else "not available (see the fixes above)"))
    lines.append("sim backend: available")
    return "\n".join(lines) + "\n"
