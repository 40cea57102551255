"""The seam between the netns backend and the kernel: commands, and work inside a namespace.

Everything the backend does to the machine goes through a Runner, so tests
can replace it with a FakeRunner that holds the expected commands and fails
on any surprise. `in_netns` runs a Python function in a fresh thread that has
joined a lab namespace (setns affects only that thread), which makes sysctls
and socket probes cost microseconds instead of a process each.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, TypeVar

from labkit.errors import LabkitError
from labkit.tools import require_tool

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class CommandError(LabkitError):
    """A command the lab ran failed; the message shows the command and what it said."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, stdin: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        text = f"command failed ({returncode}): {' '.join(argv)}\n{stderr.strip()}"
        where = _failing_batch_line(stderr, stdin)
        if where:
            text += "\n" + where
        super().__init__(text)


def _failing_batch_line(stderr: str, stdin: str) -> str:
    """For `ip -batch -`: the line ip complained about ("Command failed -:3"), with its neighbours."""
    import re

    m = re.search(r"Command failed -:(\d+)", stderr) or re.search(r"line (\d+) failed", stderr)
    if not m or not stdin:
        return ""
    n = int(m.group(1))
    lines = stdin.splitlines()
    return "\n".join(
        f"{'>' if i == n else ' '} {i:3d}: {lines[i - 1]}"
        for i in range(max(1, n - 2), min(len(lines), n + 2) + 1)
    )


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class Runner:
    """Runs programs. `check=True` turns a non-zero exit into CommandError."""

    def run(self, argv: Sequence[str], stdin: str = "", check: bool = True) -> Result:
        argv = list(argv)
        if "/" not in argv[0]:
            argv[0] = require_tool(argv[0])
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise CommandError(argv, p.returncode, p.stderr, stdin)
        return Result(p.returncode, p.stdout, p.stderr)

    def run_all(self, jobs: Sequence[tuple[Sequence[str], str]], check: bool = True) -> list[Result]:
        """Run several commands at once (each with its stdin); wait for all."""
        procs = []
        for argv, stdin in jobs:
            argv = list(argv)
            if "/" not in argv[0]:
                argv[0] = require_tool(argv[0])
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            procs.append((argv, stdin, p))
        results = []
        errors = []
        for argv, stdin, p in procs:
            out, err = p.communicate(stdin)
            results.append(Result(p.returncode, out, err))
            if check and p.returncode != 0:
                errors.append(CommandError(argv, p.returncode, err, stdin))
        if errors:
            raise errors[0]
        return results


@dataclass
class FakeRunner(Runner):
    """Holds the expected (argv, stdin) -> stdout; anything else fails the test loudly."""

    expected: list[tuple[list[str], str, str]] = field(default_factory=list)
    calls: list[tuple[list[str], str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], stdin: str = "", check: bool = True) -> Result:
        self.calls.append((list(argv), stdin))
        for i, (want_argv, want_stdin, stdout) in enumerate(self.expected):
            if want_argv == list(argv) and want_stdin == stdin:
                del self.expected[i]
                return Result(0, stdout, "")
        raise AssertionError(f"unexpected command: {list(argv)} with stdin {stdin!r}")

    def run_all(self, jobs, check: bool = True) -> list[Result]:
        return [self.run(argv, stdin, check) for argv, stdin in jobs]


_libc: Optional[ctypes.CDLL] = None


def _setns(path: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise LabkitError(f"{name!r} is not a network namespace name")
    return os.path.join(NETNS_DIR, name)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """fn() run in a new thread that has joined network namespace `name`; its result or its exception.

    The calling thread never changes namespace, so a Jupyter kernel (or any
    threaded caller) stays where it was. Sockets made inside fn stay in the
    lab namespace.
    """
    path = netns_path(name)
    box: dict = {}

    def body() -> None:
        try:
            _setns(path)
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=body, name=f"netns:{name}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def write_sysctls(netns: str, sysctls: Sequence[tuple[str, str]]) -> None:
    """Set sysctls ("net.ipv4.ip_forward", "1") inside `netns` (only net.* are per namespace)."""

    def body() -> None:
        for key, value in sysctls:
            if not key.startswith("net."):
                raise LabkitError(f"sysctl {key} is not per network namespace; the lab sets only net.*")
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)

    in_netns(netns, body)


def netns_inode(name: str) -> int:
    """The inode of a named namespace (0 if it does not exist): how processes inside are found."""
    try:
        return os.stat(netns_path(name)).st_ino
    except FileNotFoundError:
        return 0


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []
