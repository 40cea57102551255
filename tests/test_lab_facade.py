"""labkit.lab(): which backend it picks and why (choose_backend is pure), and the rootless pick live."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.lab import choose_backend, render_choice

NOT_ROOT = "needs root: run as root or via sudo"
NO_CONNTRACK = "conntrack is not installed: apt-get install conntrack"
FIXTURE = Path(__file__).parent / "netns_fixtures" / "default_lab.yaml"


def test_as_root_with_the_tools_auto_is_the_kernel():
    assert choose_backend("auto", True, []) == ("netns", "running as root with the lab's tools installed")
    assert choose_backend("netns", True, []) == ("netns", "asked for")
    assert choose_backend("netns-rootless", True, [], userns=True) == ("netns-rootless", "asked for")


def test_not_root_with_user_namespaces_auto_is_the_kernel_in_a_user_namespace():
    backend, why = choose_backend("auto", False, [NOT_ROOT], userns=True)
    assert render_choice(backend, why) == (
        "labkit: running on the netns backend (the kernel, in a user namespace) "
        "(not root, but user namespaces work: the lab runs inside one)")
    assert choose_backend("netns", False, [], userns=True) == ("netns-rootless", "asked for; not root")


def test_not_root_without_user_namespaces_auto_is_the_simulation():
    backend, why = choose_backend("auto", False, [NOT_ROOT], userns=False)
    assert render_choice(backend, why) == (
        "labkit: running on the simulation backend (not root, and this machine does not allow "
        "unprivileged user namespaces: see `labkit doctor`)")
    with pytest.raises(LabkitError) as e:
        choose_backend("netns", False, [NOT_ROOT])
    assert str(e.value) == ("the netns backend cannot run here: not root, and this machine does not allow "
                            "unprivileged user namespaces (fix: see `labkit doctor`, or use backend='sim')")
    with pytest.raises(LabkitError, match="not allow unprivileged user namespaces"):
        choose_backend("netns-rootless", True, [])


def test_a_missing_tool_means_the_simulation_or_an_error_naming_it():
    assert choose_backend("auto", True, [NO_CONNTRACK]) == ("sim", f"{NO_CONNTRACK}: see `labkit doctor`")
    assert choose_backend("auto", False, [NOT_ROOT, NO_CONNTRACK], userns=True) == (
        "sim", f"{NO_CONNTRACK}: see `labkit doctor`")
    with pytest.raises(LabkitError) as e:
        choose_backend("netns", False, [NO_CONNTRACK], userns=True)
    assert str(e.value) == (f"the netns backend cannot run here: {NO_CONNTRACK} "
                            "(fix: see `labkit doctor`, or use backend='sim')")


def test_sim_is_always_possible_and_unknown_names_are_refused():
    assert choose_backend("sim", True, []) == ("sim", "asked for")
    assert choose_backend("sim", False, [NOT_ROOT, NO_CONNTRACK]) == ("sim", "asked for")
    with pytest.raises(LabkitError, match=r"backend 'docker' is not one of auto, netns, netns-rootless, sim"):
        choose_backend("docker", True, [])


def test_lab_runs_rootless_when_asked_and_says_so(capsys, monkeypatch):
    """Root may ask for the rootless lab too: the same holder an unprivileged user gets."""
    from conftest import labkit_requires
    from labkit.backends.netns.rootless import RootlessLab, check_user_namespaces

    labkit_requires(tools=("unshare", "ip", "iptables-restore", "iptables-save"))
    works, detail = check_user_namespaces()
    if not works:
        pytest.skip(f"user namespaces do not work here: {detail}")
    import labkit

    monkeypatch.delenv("LABKIT_BACKEND", raising=False)
    name = "f" + secrets.token_hex(2)
    first = labkit.lab(backend="netns-rootless", name=name)
    try:
        again = labkit.lab(backend="netns-rootless", name=name)  # a re-run cell replaces the first
        with again as lab:
            assert isinstance(lab, RootlessLab) and first.holder_pid == 0 and lab.holder_pid != 0
            assert len(lab.pods()) == 0 and [n.name for n in lab.plan.nodes][0] == "kind-control-plane"
        assert lab.holder_pid == 0
    finally:
        first.down()
    line = "labkit: running on the netns backend (the kernel, in a user namespace) (asked for)\n"
    assert capsys.readouterr().out == line * 2
    assert os.path.exists(f"/run/labkit/{name}") is False


def test_auto_runs_an_unprivileged_user_on_the_kernel_in_a_user_namespace(capsys, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("for an unprivileged user (as root, auto picks the plain netns lab): "
                    "tests/test_rootless.py runs this module as one")
    from labkit.backends.netns.rootless import RootlessLab, check_user_namespaces

    if not check_user_namespaces()[0]:
        pytest.skip("user namespaces do not work here: auto picks the simulation")
    import labkit

    monkeypatch.delenv("LABKIT_BACKEND", raising=False)
    with labkit.lab(name="f" + secrets.token_hex(2), manifests=FIXTURE) as lab:
        assert isinstance(lab, RootlessLab)
        web = next(s for s in lab.services() if s.meta.name == "web")
        assert lab.http("default/client", f"{web.cluster_ip}:80").answered_by.startswith("default/web-")
    assert capsys.readouterr().out == (
        "labkit: running on the netns backend (the kernel, in a user namespace) "
        "(not root, but user namespaces work: the lab runs inside one)\n")
