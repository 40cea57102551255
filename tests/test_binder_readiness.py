"""Binder readiness: the course runs for a user with no root and only what binder/ installs.

mybinder.org builds the repository with repo2docker: a Python from
binder/runtime.txt, the Debian packages of binder/apt.txt, a virtualenv with
binder/requirements.txt, then binder/postBuild; the notebooks then run as an
ordinary user, without root, network namespaces or Docker. This test does the
same here: a throw-away user (lktestbinder, made by the fixture and removed
after), a fresh virtualenv made by Debian's python3 with exactly
binder/requirements.txt, binder/postBuild run in a copy of the checkout, and
every program binder/apt.txt does not bring hidden: each command runs in a
private mount namespace (not a network namespace) in which each program labkit
names from a Debian package that Binder's image lacks (iproute2, iptables,
nftables, conntrack, nginx, dnsmasq: binder/apt.txt has only graphviz) is
covered by /dev/null, so it is not found. In it the whole
course runs under nbval, with LABKIT_BACKEND unset as on Binder, so labkit
chooses its backend itself, and the first cell must say: the simulation, and why.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, labkit_requires
from labkit import tools

USER = "lktestbinder"
DEBIAN_PYTHON = "/usr/bin/python3"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "_build", "node_modules", ".node", "artifacts", ".hypothesis",
                                     "__pycache__", "*.egg-info", ".pytest_cache", ".benchmarks", ".ipynb_checkpoints")


# Debian packages that Binder's base image has anyway, whatever binder/apt.txt says.
IN_EVERY_IMAGE = {"util-linux", "procps"}
PROGRAM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin")


def programs_binder_lacks() -> list[str]:
    """Paths of the programs labkit names whose Debian package Binder would not install."""
    apt = {line.split("#", 1)[0].strip() for line in (REPO / "binder" / "apt.txt").read_text().splitlines()}
    paths = []
    for program, package in sorted(tools.DEBIAN_PACKAGES.items()):
        if package in apt or package in IN_EVERY_IMAGE:
            continue
        for d in PROGRAM_DIRS:
            path = os.path.join(d, program)
            if os.path.exists(path) and path not in paths:
                paths.append(path)
    return paths


class BinderUser:
    """The throw-away user, its home, and a way to run commands as it, Binder-style."""

    def __init__(self, top: Path):
        self.top = top
        self.home = top / "home"
        self.repo = self.home / "course-repo"
        self.venv = self.home / "venv"

    def env(self) -> list[str]:
        return [f"HOME={self.home}", f"USER={USER}", "LANG=C.UTF-8",
                f"PATH={self.venv}/bin:/usr/local/bin:/usr/bin:/bin", f"PIP_CACHE_DIR={self.home}/.cache/pip",
                "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHONDONTWRITEBYTECODE=1"]

    def run(self, argv: list[str], *, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run argv as the user, in a mount namespace (made for this run) without the lab's programs."""
        inner = shlex.join(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--",
                            "env", "-i", *self.env(), *argv])
        hide = "".join(f"mount --bind /dev/null {shlex.quote(p)} && " for p in programs_binder_lacks())
        script = f"{hide}cd {shlex.quote(str(cwd or self.home))} && exec {inner}"
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _remove_user() -> None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return
    subprocess.run(["userdel", "--remove", USER], capture_output=True, check=False)
    subprocess.run(["userdel", USER], capture_output=True, check=False)


@pytest.fixture(scope="module")
def binder_user():
    """A new unprivileged user with its home under a private temporary folder; removed after."""
    labkit_requires(root=True, tools=("useradd", "userdel", "unshare", "setpriv"))
    if not Path(DEBIAN_PYTHON).exists():
        pytest.skip(f"{DEBIAN_PYTHON} is not installed: apt-get install python3 python3-venv")
    _remove_user()  # a run that was killed may have left it
    top = Path(tempfile.mkdtemp(prefix="lktestbinder-"))
    try:
        os.chmod(top, 0o755)
        subprocess.run(["useradd", "--create-home", "--home-dir", str(top / "home"), "--shell", "/bin/sh",
                        "--user-group", USER], check=True, capture_output=True)
        yield BinderUser(top)
    finally:
        _remove_user()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def binder_env(binder_user):
    """binder/ installed as repo2docker would: requirements.txt into a fresh venv, then postBuild."""
    u = binder_user
    shutil.copytree(REPO, u.repo, ignore=COPY_IGNORE)
    pw = pwd.getpwnam(USER)
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(u.repo)], check=True)
    steps = [
        ([DEBIAN_PYTHON, "-m", "venv", str(u.venv)], u.home),
        ([str(u.venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", "-q",
          "-r", "binder/requirements.txt"], u.repo),
        (["bash", "binder/postBuild"], u.repo),
    ]
    for argv, cwd in steps:
        done = u.run(argv, cwd=cwd, timeout=900)
        assert done.returncode == 0, f"{shlex.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return u


def test_the_binder_user_has_no_root_and_no_kernel_lab_tools(binder_env):
    done = binder_env.run(["python", "-c",
                           "import os, labkit.tools as t; print(os.geteuid(), t.find_tool('iptables-restore'))"])
    assert done.returncode == 0, done.stderr
    uid, tool = done.stdout.split()
    assert int(uid) == pwd.getpwnam(USER).pw_uid != 0
    assert tool == "None"
    # labkit comes from the user's checkout (postBuild's editable install), not from ours
    done = binder_env.run(["python", "-c", "import labkit; print(labkit.__file__)"])
    assert done.stdout.strip() == str(binder_env.repo / "labkit" / "__init__.py")


def test_the_first_cell_says_the_simulation_runs_and_why(binder_env):
    out = binder_env.home / "welcome-run.ipynb"
    done = binder_env.run(["python", "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                           "course/00.00-welcome.ipynb", "--output", str(out)], cwd=binder_env.repo)
    assert done.returncode == 0, done.stderr[-3000:]
    nb = json.loads(out.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "labkit.lab(seed=0)" in "".join(first["source"])
    printed = "".join("".join(o.get("text", "")) for o in first["outputs"])
    assert printed.startswith("labkit: running on the simulation backend ("), printed
    assert printed.endswith(": see `labkit doctor`)\n"), printed
    assert "iptables-restore is not installed: apt-get install iptables" in printed
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []


def test_the_whole_course_runs_on_the_simulation_with_its_stored_outputs(binder_env):
    # The cells whose output differs from machine to machine by design (which
    # backend runs and why, `labkit doctor`) carry # NBVAL_IGNORE_OUTPUT; every
    # other output is compared exactly, as in CI.
    sanitize = binder_env.home / "nbval_sanitize.cfg"
    sanitize.write_text((REPO / "tests" / "nbval_sanitize.cfg").read_text())
    done = binder_env.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "course/",
                           "--nbval-current-env", "--nbval-sanitize-with", str(sanitize),
                           "--rootdir", str(binder_env.repo), "-c", "/dev/null"],
                          cwd=binder_env.repo, timeout=900)
    cells = sum(1 for p in sorted((REPO / "course").glob("[0-9][0-9].[0-9][0-9]-*.ipynb"))
                for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.fullmatch(rf"{cells} passed(, [0-9]+ warnings?)? in [0-9.]+s( \([0-9:]+\))?", tail), tail
