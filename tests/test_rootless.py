"""The kernel lab without root: a holder process in a user namespace (labkit.backends.netns.rootless).

Three layers:
- pure: the holder's command line, its message framing, the doctor's fix;
- live: a RootlessLab made here. Root may make one too (the holder maps this
  uid to root of its own namespace), so these run in CI as root as well as
  for an unprivileged user;
- the real thing: test_the_core_suite_passes_as_an_unprivileged_user (root
  only) creates a user, then runs this module, tests/test_lab_facade.py and
  tests/test_conformance.py as that user and requires every test to pass,
  none skipped.
"""
from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest

from conftest import REPO, labkit_requires
from labkit.backends.netns import holder as holder_mod
from labkit.backends.netns.rootless import (
    RootlessLab,
    check_user_namespaces,
    holder_argv,
    read_userns_sysctls,
    render_userns_fix,
)
from labkit.errors import LabkitError

FIXTURE = Path(__file__).parent / "netns_fixtures" / "default_lab.yaml"
TOOLS = ("unshare", "ip", "iptables", "iptables-restore", "iptables-save", "conntrack", "xtables-monitor")
TEST_USER = "lktestuser"


def _userns_or_skip() -> None:
    labkit_requires(tools=TOOLS)
    works, detail = check_user_namespaces()
    if not works:
        pytest.skip(f"user namespaces do not work here: {detail}; "
                    f"{render_userns_fix(read_userns_sysctls())}")


# --- pure ------------------------------------------------------------------------------


def test_the_holder_command_line():
    assert holder_argv("/usr/bin/unshare", "/usr/bin/python3") == [
        "/usr/bin/unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
        "--mount-proc", "--kill-child", "--propagation", "private",
        "/usr/bin/python3", "-m", "labkit.backends.netns.holder"]


def test_the_fix_names_the_sysctl_that_forbids_user_namespaces():
    assert render_userns_fix({"/proc/sys/kernel/unprivileged_userns_clone": "0",
                              "/proc/sys/user/max_user_namespaces": "15000"}) == (
        "sysctl -w kernel.unprivileged_userns_clone=1 (as root), or run labkit as root")
    assert render_userns_fix({"/proc/sys/user/max_user_namespaces": "0",
                              "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}) == (
        "sysctl -w user.max_user_namespaces=15000 and sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 "
        "(or an AppArmor profile allowing userns for unshare) (as root), or run labkit as root")
    assert render_userns_fix({}) == (
        "ask the machine's administrator to allow unprivileged user namespaces, or run as root")


def test_messages_cross_a_pipe_whole_and_end_of_input_is_none():
    import threading

    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=0) as rx, os.fdopen(w, "wb", buffering=0) as tx:
        def send():
            holder_mod.write_message(tx, ("call", "probe", ("default/client", "10.96.0.80:80"), {"count": 2}))
            holder_mod.write_message(tx, ("ok", "x" * 200_000))  # more than a pipe holds: read in pieces
            tx.close()

        writer = threading.Thread(target=send)
        writer.start()
        assert holder_mod.read_message(rx) == ("call", "probe", ("default/client", "10.96.0.80:80"), {"count": 2})
        assert holder_mod.read_message(rx) == ("ok", "x" * 200_000)
        assert holder_mod.read_message(rx) is None
        writer.join()


def test_an_error_that_cannot_be_pickled_crosses_as_its_text():
    from labkit.backends.netns.runner import CommandError
    from labkit.errors import MissingToolError

    e = holder_mod.portable_error(CommandError(["ip", "-batch", "-"], 1, "Command failed -:2", "a\nb\nc\n"))
    assert type(e) is LabkitError
    assert str(e) == ("command failed (1): ip -batch -\nCommand failed -:2\n    1: a\n>   2: b\n    3: c")
    same = MissingToolError("conntrack is not installed: apt-get install conntrack")
    assert holder_mod.portable_error(same) is same
    assert holder_mod.portable_error(KeyError("x")).args == ("x",)  # a plain bug keeps its own type

    class Odd(Exception):  # a local class: pickle cannot name it
        pass

    assert str(holder_mod.portable_error(Odd("boom"))) == "Odd in the lab holder: boom"


def test_the_holder_gets_a_private_etc_netns_even_where_the_host_has_none(tmp_path):
    """Where /etc has no netns/, the holder covers /etc with a tmpfs holding the host's own
    entries bound back; the pods' resolv.conf files then live only in the lab's mount namespace."""
    _userns_or_skip()
    etc = tmp_path / "etc"
    (etc / "ssl").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (etc / "ssl" / "openssl.cnf").write_text("# cnf\n")
    (etc / "mtab").symlink_to("../proc/self/mounts")
    code = ("import os; from labkit.backends.netns import holder as h; h.mount_private_run(); "
            f"h.mount_private_etc_netns({str(etc)!r}); "
            f"os.makedirs({str(etc / 'netns' / 'lkx-pod')!r}); "
            f"open({str(etc / 'netns' / 'lkx-pod' / 'resolv.conf')!r}, 'w').write('nameserver 10.96.0.10\\n'); "
            f"print(sorted(os.listdir({str(etc)!r})), open({str(etc / 'passwd')!r}).read().strip(), "
            f"open({str(etc / 'ssl' / 'openssl.cnf')!r}).read().strip(), os.readlink({str(etc / 'mtab')!r}), "
            f"open({str(etc / 'netns' / 'lkx-pod' / 'resolv.conf')!r}).read().strip())")
    out = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
                          sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("['mtab', 'netns', 'passwd', 'ssl'] root:x:0:0::/root:/bin/sh # cnf ../proc/self/mounts "
                          "nameserver 10.96.0.10\n")
    assert sorted(os.listdir(etc)) == ["mtab", "passwd", "ssl"]  # the host's directory is unchanged


# --- live -------------------------------------------------------------------------------


def _servers_of(lab: str) -> list[int]:
    from labkit.backends.netns.cleanup import _cmdline, is_lab_server

    return [int(p) for p in os.listdir("/proc") if p.isdigit() and is_lab_server(_cmdline(int(p)), lab)]


def _host_view(lab: str) -> list[str]:
    """What of lab `lab` the host's own namespaces show (nothing, for a rootless lab)."""
    from labkit.backends.netns.runner import list_netns

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    seen = [f"namespace {n}" for n in list_netns() if n.startswith(f"lk{lab}-")]
    seen += [f"host link {m}" for m in re.findall(rf"^\d+: (lk{lab}-[^:@]+)", links, re.M)]
    if os.path.exists(f"/run/labkit/{lab}"):
        seen.append(f"state /run/labkit/{lab}")
    return seen


@pytest.fixture(scope="module")
def lab():
    _userns_or_skip()
    lab = RootlessLab("r" + secrets.token_hex(2))
    try:
        lab.up(FIXTURE.read_text(), str(FIXTURE))
        yield lab
    finally:
        lab.down()


def _web(lab):
    return next(s for s in lab.services() if s.meta.name == "web")


def _web_pods(lab) -> set[str]:
    return {f"default/{p.meta.name}" for p in lab.pods() if p.meta.labels.get("app") == "web"}


def test_core_the_default_lab_is_up_inside_its_own_namespaces(lab):
    assert [n.name for n in lab.plan.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert len(lab.pods()) == 6 and len(lab.services()) == 3
    assert lab.registry.phase == "up" and lab.name == "netns-rootless"
    assert _host_view(lab.lab) == []
    assert len(_servers_of(lab.lab)) == 6  # the pod servers are processes like any other


def test_core_http_syn_and_udp_reach_a_backend_through_the_cluster_ip(lab):
    web = _web(lab)
    r = lab.http("default/client", f"{web.cluster_ip}:80")
    assert (r.verdict, r.status, r.reply_from) == ("answered", 200, f"{web.cluster_ip}:80")
    assert r.answered_by in _web_pods(lab) and r.body == r.answered_by.split("/")[1]
    [s] = lab.probe("default/client", f"{web.cluster_ip}:80")
    assert (s.verdict, s.kind, s.detail) == ("answered", "syn", "TCP flags SA")
    assert s.answered_by in _web_pods(lab) and s.client_seen_as == s.client_address
    [u] = lab.probe("default/client", f"{web.cluster_ip}:81", protocol="udp")
    assert u.verdict == "answered" and u.body == u.answered_by.split("/")[1]


def test_core_conntrack_rules_and_a_syn_only_trace(lab):
    web = _web(lab)
    r = lab.http("default/client", f"{web.cluster_ip}:80")
    port = int(r.client_address.split(":")[1])
    [e] = [e for e in lab.conntrack("kind-worker") if e.proto == "tcp" and e.orig.sport == port]
    assert (e.orig.dst, e.orig.dport, e.reply.sport) == (web.cluster_ip, 80, 8080)
    assert f"-A KUBE-SERVICES -d {web.cluster_ip}/32 -p tcp" in lab.rules("kind-worker")
    t = lab.trace("default/client", f"{web.cluster_ip}:80")
    assert t.verdict == "answered"
    nat = [s.verdict for s in t.steps if s.table == "nat"]
    assert nat[0] == "KUBE-SERVICES" and nat[1].startswith("KUBE-SVC-") and nat[3] == "DNAT", nat
    assert all(s.packet.endswith(" SYN") for s in t.steps), [s.packet for s in t.steps]  # no RST after it
    assert "TRACE" not in lab.rules("kind-worker", "raw")


def test_core_scale_resyncs_inside_the_holder(lab):
    web = _web(lab)
    lab.scale("deployment/web", 1)
    try:
        [left] = _web_pods(lab)
        assert {lab.http("default/client", f"{web.cluster_ip}:80").answered_by for _ in range(4)} == {left}
        assert len(_servers_of(lab.lab)) == 4
    finally:
        lab.scale("deployment/web", 3)
    assert len(_web_pods(lab)) == 3 and len(_servers_of(lab.lab)) == 6


def test_core_a_learners_mistake_comes_back_as_the_same_sentence(lab):
    with pytest.raises(LabkitError, match=r"^no pod nope/x in lab r[0-9a-f]{4} \(pods: default/client, "):
        lab.probe("nope/x", "10.96.0.80:80")
    with pytest.raises(LabkitError, match=r"^destination '10\.96\.0\.80' must be ADDRESS:PORT"):
        lab.http("default/client", "10.96.0.80")


def test_core_down_removes_everything_and_killing_the_holder_does_too():
    _userns_or_skip()
    from labkit.backends.base import LabNotFound

    a, b = RootlessLab("r" + secrets.token_hex(2)), RootlessLab("r" + secrets.token_hex(2))
    try:
        a.up(FIXTURE.read_text())
        b.up(FIXTURE.read_text())
        assert len(_servers_of(a.lab)) == 6 and len(_servers_of(b.lab)) == 6
        a.down()
        assert _servers_of(a.lab) == [] and a.holder_pid == 0
        a.down()  # idempotent
        with pytest.raises(LabNotFound, match="is not up"):
            a.pods()
        os.kill(b.holder_pid, signal.SIGKILL)  # `unshare`: its child, PID 1 of the lab, goes too
        deadline = time.monotonic() + 5
        while _servers_of(b.lab) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _servers_of(b.lab) == []
        with pytest.raises(LabkitError, match="the lab holder has exited"):
            b.pods()
    finally:
        a.down()
        b.down()
    assert _host_view(a.lab) == [] and _host_view(b.lab) == []


# --- as an unprivileged user -------------------------------------------------------------

SELF = "tests/test_rootless.py::test_the_core_suite_passes_as_an_unprivileged_user"
CORE = ["tests/test_rootless.py", "tests/test_lab_facade.py", "tests/test_conformance.py"]


def _blocked_dir(path: Path) -> Optional[tuple[Path, str]]:
    """The first directory on the way to `path` that other users may not enter, and the name under it."""
    parts = path.parts
    for i in range(1, len(parts)):
        d = Path(*parts[:i])
        if not d.stat().st_mode & 0o001:
            return d, parts[i]
    return None


def _reach_script(paths: list[Path], hold: str) -> str:
    """Shell lines (run in a private mount namespace) that let other users reach `paths`:
    a closed directory (/root, for a pyenv Python) is covered by an open tmpfs holding
    only the subtree needed, bound back in. The host's directories are not changed."""
    lines, done = [], set()
    for path in paths:
        blocked = _blocked_dir(path)
        if blocked is None or blocked in done:
            continue
        d, name = blocked
        if _blocked_dir(d / name / Path(*path.parts[len(d.parts) + 1:])) not in (None, blocked):
            pytest.skip(f"{path} lies under two closed directories; run the suite from an open checkout")
        done.add(blocked)
        keep = f"{hold}/{len(done)}"
        lines += [f"mkdir -p {keep}", f"mount --bind {shlex.quote(str(d / name))} {keep}",
                  f"mount -t tmpfs -o mode=0755 lktest {shlex.quote(str(d))}",
                  f"mkdir -p {shlex.quote(str(d / name))}",
                  f"mount --move {keep} {shlex.quote(str(d / name))}"]
    return "\n".join(lines)


@pytest.fixture
def unprivileged_user():
    """A user made for this test (removed afterwards), with a home in /tmp."""
    labkit_requires(root=True, tools=("useradd", "userdel", "runuser", "unshare"))
    settings = read_userns_sysctls()
    for path, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"), ("/proc/sys/user/max_user_namespaces", "0")):
        if settings.get(path) == bad:
            pytest.skip(f"the kernel forbids unprivileged user namespaces ({path} = {bad}): "
                        + render_userns_fix(settings))
    try:
        pwd.getpwnam(TEST_USER)
        made = False
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/bin/bash", TEST_USER], check=True, capture_output=True)
        made = True
    home = tempfile.mkdtemp(prefix="lktest-home-")
    user = pwd.getpwnam(TEST_USER)
    os.chown(home, user.pw_uid, user.pw_gid)
    try:
        yield user, home
    finally:
        subprocess.run(["rm", "-rf", home])
        if made:
            subprocess.run(["userdel", TEST_USER], capture_output=True)


def test_the_core_suite_passes_as_an_unprivileged_user(unprivileged_user):
    user, home = unprivileged_user
    python = Path(sys.executable)
    collected = subprocess.run([str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                *CORE, "--deselect", SELF], cwd=REPO, capture_output=True, text=True)
    want = int(re.search(r"^(\d+)(?:/\d+)? tests? collected", collected.stdout, re.M).group(1))
    hold = tempfile.mkdtemp(prefix="lktest-hold-")
    env = {"PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin", "HOME": home, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "CI": os.environ.get("CI", "")}
    as_user = ["runuser", "-u", TEST_USER, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()]]
    reach = "set -e\n" + _reach_script([python.resolve(), Path(sys.base_prefix).resolve(), REPO], hold) + "\n"

    def in_private_mounts(argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               reach + "exec " + shlex.join(argv)], cwd=REPO, capture_output=True, text=True, **kw)

    try:
        tried = in_private_mounts(as_user + ["unshare", "--user", "--map-root-user", "--net", "true"])
        if tried.returncode != 0:
            pytest.skip(f"user {TEST_USER} may not make a user namespace here: {tried.stderr.strip()}; "
                        + render_userns_fix(read_userns_sysctls()))
        run = in_private_mounts(as_user + [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                           "--basetemp", f"{home}/pytest", *CORE, "--deselect", SELF],
                                timeout=600)
    finally:
        subprocess.run(["rm", "-rf", hold])
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.fullmatch(rf"{want} passed, 1 deselected in [\d.]+s( \(\d+:\d+:\d+\))?", summary), summary
    assert subprocess.run(["pgrep", "-u", TEST_USER], capture_output=True).stdout == b""  # nothing left running
