"""The netns backend without root: the lab lives in a holder process inside a user namespace.

    lab = RootlessLab("demo"); lab.up(manifests)     # same methods as NetnsLab

The caller may have threads (a Jupyter kernel), so it cannot enter a user
namespace itself; it starts labkit.backends.netns.holder under `unshare`
(flags below), and every method call travels over a pipe to the NetnsLab
the holder runs there. The lab is exactly the root user's lab -- the same
plan, `ip -batch` text, iptables-restore, pod servers, scapy probes,
conntrack and TRACE -- only its namespaces belong to a user namespace of
this user's. It lives as long as the holder: `down()`, the caller's exit
(end of input on the pipe) or a kill of the holder removes all of it (the
holder is PID 1 of its own PID namespace, so its pod servers die with it).
The host sees one unprivileged process; nothing is added to its network,
its /run or its mounts.
"""
from __future__ import annotations

import atexit
import functools
import os
import select
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from labkit.backends.base import Backend, ConntrackEntry, LabNotFound, ProbeResult, Trace
from labkit.errors import LabkitError
from labkit.tools import find_tool, install_hint
from labkit.topology.plan import DEFAULT_LAB_NAME, check_lab_name

# What the holder's `unshare` makes: a user namespace where this user is root, and
# its own network, mount (private) and PID namespaces, /proc remounted for the latter.
UNSHARE_FLAGS = ("--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                 "--kill-child", "--propagation", "private")
REQUIRED_TOOLS = ("unshare", "ip", "iptables-restore", "iptables-save")
START_DEADLINE = 10.0  # seconds for the holder to report ready
STOP_DEADLINE = 5.0
USERNS_SYSCTLS = ("/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces",
                  "/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


class HolderError(LabkitError):
    """The lab holder could not start, or stopped answering."""


def holder_argv(unshare: str, python: str) -> list[str]:
    """The command line that starts a holder (pure)."""
    return [unshare, *UNSHARE_FLAGS, python, "-m", "labkit.backends.netns.holder"]


def render_userns_fix(settings: dict[str, str]) -> str:
    """The fix for a machine whose kernel refuses unprivileged user namespaces, from its sysctls
    (path -> value; absent ones left out). Pure, so the wording is tested."""
    fixes = []
    if settings.get("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        fixes.append("sysctl -w kernel.unprivileged_userns_clone=1")
    if settings.get("/proc/sys/user/max_user_namespaces") == "0":
        fixes.append("sysctl -w user.max_user_namespaces=15000")
    if settings.get("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        fixes.append("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile "
                     "allowing userns for unshare)")
    if not fixes:
        return "ask the machine's administrator to allow unprivileged user namespaces, or run as root"
    return " and ".join(fixes) + " (as root), or run labkit as root"


def read_userns_sysctls() -> dict[str, str]:
    out = {}
    for path in USERNS_SYSCTLS:
        try:
            out[path] = Path(path).read_text().strip()
        except OSError:
            pass
    return out


def check_user_namespaces() -> tuple[bool, str]:
    """(works, what happened): a real try of the holder's own `unshare` flags with `true`."""
    unshare = find_tool("unshare")
    if not unshare:
        return False, f"cannot try: unshare is not installed ({install_hint('unshare')})"
    try:
        p = subprocess.run([unshare, *UNSHARE_FLAGS, "true"], capture_output=True, text=True,
                           timeout=STOP_DEADLINE)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"unshare {' '.join(UNSHARE_FLAGS)} true: {e}"
    if p.returncode == 0:
        return True, "unshare --user --map-root-user --net --mount --pid works"
    return False, p.stderr.strip() or f"unshare exited {p.returncode}"


class Holder:
    """One holder process and the pipe to it; requests from several threads take turns."""

    def __init__(self, python: str = sys.executable):
        unshare = find_tool("unshare")
        if not unshare:
            raise HolderError(f"unshare is not installed: {install_hint('unshare')}")
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
        self._stderr = tempfile.TemporaryFile()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(holder_argv(unshare, python), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_DEADLINE)
        if not ready:
            self.close()
            raise HolderError(f"the lab holder did not start within {START_DEADLINE:.0f} s")
        self.pid = self._answer()

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def _answer(self) -> Any:
        from labkit.backends.netns.holder import read_message

        answer = read_message(self.proc.stdout)
        if answer is None:
            self.close()
            text = self._stderr_text()
            raise HolderError("the lab holder exited" + (f": {text}" if text else "")
                              + " (fix: see `labkit doctor`, user namespaces)")
        if answer[0] == "error":
            raise answer[1]
        return answer[1] if answer[0] == "ok" else _METHOD

    def request(self, *message) -> Any:
        from labkit.backends.netns.holder import write_message

        with self._lock:
            if self.proc.poll() is not None:
                raise HolderError("the lab holder has exited, and the lab with it (fix: make the lab again)")
            try:
                write_message(self.proc.stdin, message)
            except (BrokenPipeError, OSError):
                raise HolderError("the lab holder stopped answering: " + self._stderr_text()) from None
            return self._answer()

    def close(self) -> None:
        """Ask the holder to take the lab down and exit; kill it if it does not."""
        from labkit.backends.netns.holder import write_message

        if self.proc.poll() is None:
            try:
                with self._lock:
                    write_message(self.proc.stdin, ("bye",))
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f and not f.closed:
                f.close()
        self._stderr.close()


_METHOD = object()  # the holder's answer to "get" when the attribute is a method
_LIVE: dict[str, "RootlessLab"] = {}  # this process's labs that are up, by name


@atexit.register
def _down_all_live() -> None:
    for lab in list(_LIVE.values()):
        lab.down()


class RootlessLab(Backend):
    """A NetnsLab run by a holder in a user namespace; every call is forwarded to it."""

    name = "netns-rootless"

    def __init__(self, lab: str = DEFAULT_LAB_NAME, kind_config: str = "", seed: int = 0):
        check_lab_name(lab)
        self.lab = lab
        self.kind_config = kind_config
        self.seed = seed
        self._holder: Optional[Holder] = None

    @property
    def holder_pid(self) -> int:
        """The holder's process id (0 when the lab is not up)."""
        return self._holder.proc.pid if self._holder else 0

    def up(self, manifests: str = "", source: str = "") -> None:
        if self._holder is not None:
            raise LabkitError(f"lab {self.lab!r} is already up (fix: call down() first)")
        earlier = _LIVE.get(self.lab)
        if earlier is not None:  # the same name made earlier in this process (a re-run cell)
            earlier.down()
        holder = Holder()
        self._holder = holder
        try:
            holder.request("new", self.lab, self.kind_config, self.seed)
            holder.request("call", "up", (manifests, source), {})
        except BaseException:
            self.down()
            raise
        _LIVE[self.lab] = self

    def down(self) -> None:
        holder, self._holder = self._holder, None
        if _LIVE.get(self.lab) is self:
            del _LIVE[self.lab]
        if holder is not None:
            try:
                if holder.proc.poll() is None:
                    holder.request("call", "down", (), {})
            except LabkitError:
                pass  # the holder's exit below takes everything with it
            finally:
                holder.close()

    def _call(self, method: str, *args, **kwargs) -> Any:
        if self._holder is None:
            raise LabNotFound(f"lab {self.lab!r} is not up (fix: call up() first)")
        return self._holder.request("call", method, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        """Anything else the NetnsLab has (plan, registry, endpoint(), ...), from the holder."""
        if name.startswith("_"):
            raise AttributeError(name)
        holder = self.__dict__.get("_holder")
        if holder is None:
            raise AttributeError(f"{name} (lab {self.__dict__.get('lab')!r} is not up)")
        value = holder.request("get", name)
        return functools.partial(self._call, name) if value is _METHOD else value

    # --- the Backend interface, forwarded -------------------------------------

    def apply(self, manifests: str, source: str = "") -> list[str]:
        return self._call("apply", manifests, source)

    def delete(self, manifests: str, source: str = "") -> list[str]:
        return self._call("delete", manifests, source)

    def scale(self, deployment: str, replicas: int, namespace: str = "default") -> None:
        return self._call("scale", deployment, replicas, namespace)

    def pods(self) -> list:
        return self._call("pods")

    def services(self) -> list:
        return self._call("services")

    def probe(self, source: str, destination: str, protocol: str = "tcp", count: int = 1,
              timeout: float = 1.0, *, sport: Optional[int] = None) -> list[ProbeResult]:
        return self._call("probe", source, destination, protocol, count, timeout, sport=sport)

    def http(self, source: str, destination: str, path: str = "/hostname", timeout: float = 2.0, *,
             sport: Optional[int] = None, host: Optional[str] = None,
             headers: Optional[dict] = None) -> ProbeResult:
        return self._call("http", source, destination, path, timeout, sport=sport, host=host, headers=headers)

    def conntrack(self, node: str) -> list[ConntrackEntry]:
        return self._call("conntrack", node)

    def rules(self, node: str, table: str = "nat") -> str:
        return self._call("rules", node, table)

    def trace(self, source: str, destination: str, protocol: str = "tcp", timeout: float = 1.0, *,
              sport: Optional[int] = None) -> Trace:
        return self._call("trace", source, destination, protocol, timeout, sport=sport)
