"""`labkit down`: remove exactly what a lab made, even after its creator was SIGKILLed.

What belongs to lab L is decided three ways, all narrow:
- its registry (/run/labkit/L/state.json) lists namespaces and pod-server PIDs;
- namespaces named "lkL-<role>" (see labkit.topology.plan for the scheme);
  "lktest-*" never matches: "test" cannot be a lab name;
- a process belongs to L only if its network namespace IS one of L's
  namespaces (same nsfs inode), or its command line is a lab pod server
  started for L. Nothing is ever killed by name alone.
Order: kill the processes (a namespace with a process in it outlives its
name), delete the namespaces (their veths go with them), remove the state.
Every step tolerates objects already gone, so `down` is idempotent.
"""
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field

from labkit.backends.netns import registry as reg
from labkit.backends.netns.commands import render_netns_del
from labkit.backends.netns.runner import Runner, list_netns, netns_inode
from labkit.topology.plan import RESERVED_LAB_NAMES

LAB_NETNS_RE = re.compile(
    r"lk(?P<lab>[a-z][a-z0-9]{0,5})-(?:net|outside|internet|natgw|lb|control-plane\d*|worker\d*|pod-[a-z0-9-]+\..+)"
)
SERVER_SCRIPT = "netexec.py"


def lab_of_netns(name: str) -> str:
    """The lab a namespace name belongs to ("" if it is not a lab namespace)."""
    m = LAB_NETNS_RE.fullmatch(name)
    if not m or m.group("lab") in RESERVED_LAB_NAMES:
        return ""
    return m.group("lab")


def find_labs(root: str = reg.STATE_ROOT) -> list[str]:
    """Every lab with a state directory or a namespace named like one of its own."""
    labs = set(reg.list_state_dirs(root))
    labs.update(filter(None, (lab_of_netns(n) for n in list_netns())))
    return sorted(labs)


@dataclass
class DownReport:
    lab: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    state_removed: bool = False

    def summary(self) -> str:
        return (f"lab {self.lab}: removed {len(self.namespaces)} namespaces, "
                f"stopped {len(self.processes)} processes")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def is_lab_server(argv: list[str], lab: str) -> bool:
    """Is this command line a pod server started for `lab`?"""
    return any(a.endswith(SERVER_SCRIPT) for a in argv) and any(
        argv[i] == "--lab" and argv[i + 1] == lab for i in range(len(argv) - 1)
    )


def lab_processes(lab: str, namespaces: list[str], by_cmdline: bool = True) -> list[int]:
    """PIDs of processes inside the namespaces, or (by_cmdline) that are the lab's pod servers."""
    inodes = {i for i in (netns_inode(n) for n in namespaces) if i}
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if inode in inodes or (by_cmdline and is_lab_server(_cmdline(pid), lab)):
            found.append(pid)
    return found


def kill_and_wait(pids: list[int], deadline: float = 2.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    end = time.monotonic() + deadline
    alive = list(pids)
    while alive and time.monotonic() < end:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.005)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own children
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def down_lab(lab: str, runner: Runner | None = None, root: str = reg.STATE_ROOT) -> DownReport:
    """Remove lab `lab`: processes, namespaces, state. Safe to run twice."""
    runner = runner or Runner()
    report = DownReport(lab)
    registry = reg.load_registry(lab, root)
    names = set(registry.namespaces) if registry else set()
    names.update(n for n in list_netns() if lab_of_netns(n) == lab)
    if registry:
        registry.phase = "removing"
        try:
            registry.save()
        except OSError:
            pass
    existing = sorted(n for n in names if netns_inode(n))
    pids = lab_processes(lab, existing)
    if registry:  # recorded servers whose namespace is already gone
        pids += [p.pid for p in registry.processes
                 if p.pid not in pids and p.marker in "\0".join(_cmdline(p.pid))]
    kill_and_wait(pids)
    report.processes = pids
    if existing:
        runner.run(["ip", "-force", "-batch", "-"], stdin=render_netns_del(existing), check=False)
    report.namespaces = existing
    from labkit.backends.netns.dns_server import remove_resolv_confs

    remove_resolv_confs(f"lk{lab}")  # the pods' /etc/netns/<ns>/resolv.conf, by prefix
    reg.remove_state(lab, root)
    report.state_removed = True
    return report


def down_all(runner: Runner | None = None, root: str = reg.STATE_ROOT) -> list[DownReport]:
    """`labkit down --all`: every lab found by state directory or by namespace name."""
    return [down_lab(lab, runner, root) for lab in find_labs(root)]
