"""The set-up files agree with each other.

pyproject.toml is the source of truth for Python dependencies; environment.yml
(conda-forge) and binder/requirements.txt (Binder) repeat them. setup.sh's
DEBIAN_PACKAGES is the source of truth for Debian packages; binder/apt.txt and
labkit.tools repeat parts of it. Also: the requirement helpers of conftest.py,
and labkit.tools' sentences for missing programs.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import conftest
from conftest import REPO, parse_setup_apt_packages, requirement_outcome
from labkit import tools
from labkit.errors import MissingToolError
from labkit.tools import NOT_ROOT, Missing

# PyPI name -> conda-forge name, where they differ. (PyPI's graphviz is the Python
# binding, conda-forge's python-graphviz; conda-forge's graphviz is the program.)
PYPI_TO_CONDA = {"graphviz": "python-graphviz"}
# conda entries that are not Python dependencies of labkit.
CONDA_ONLY = {"python", "pip", "graphviz"}
# Debian packages Binder cannot use: no root, no network namespaces there.
BINDER_CANNOT_USE = {
    "python3", "python3-venv", "python3-pip",  # Binder brings its own Python
    "iproute2", "iptables", "nftables", "conntrack", "procps", "util-linux",
    "nginx-light", "dnsmasq-base", "ca-certificates",
}

README_COMMANDS = ("./setup.sh course", "./setup.sh test")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def python_dependencies() -> dict[str, str]:
    """Runtime + course + test extras, as {canonical name: specifier}."""
    project = pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in ("course", "test"):
        reqs += project["optional-dependencies"][extra]
    parsed = [Requirement(r) for r in reqs]
    return {canonicalize_name(r.name): str(r.specifier) for r in parsed}


def conda_dependencies() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    deps = {}
    for entry in env["dependencies"]:
        assert isinstance(entry, str), f"unexpected entry in environment.yml: {entry!r}"
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry)
        deps[m.group(1).lower()] = m.group(2).replace(" ", "")
    return deps


def requirement_lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def setup_packages() -> list[str]:
    return parse_setup_apt_packages((REPO / "setup.sh").read_text())


# --- Python dependencies ------------------------------------------------------


def test_pyproject_keeps_name_script_and_extras():
    project = pyproject()["project"]
    assert project["name"] == "labkit"
    assert project["scripts"] == {"labkit": "labkit.cli.main:main"}
    assert set(project["optional-dependencies"]) == {"course", "test"}
    assert project["requires-python"] == ">=3.11"


def test_python_dependencies_are_the_ones_we_expect():
    assert python_dependencies() == {
        "pyyaml": ">=6.0", "scapy": ">=2.5", "ipywidgets": ">=8.0", "graphviz": ">=0.20",
        "jupyterlab": ">=4.0",
        "pytest": ">=7.4", "hypothesis": ">=6.80", "nbval": ">=0.11",
    }


def test_conda_environment_matches_pyproject():
    conda = conda_dependencies()
    python_deps = {k: v for k, v in conda.items() if k not in CONDA_ONLY or k in PYPI_TO_CONDA.values()}
    expected = {PYPI_TO_CONDA.get(name, name): spec for name, spec in python_dependencies().items()}
    assert python_deps == expected
    assert conda["python"] == pyproject()["project"]["requires-python"]
    assert {"pip", "graphviz"} <= set(conda)


def test_binder_requirements_match_pyproject():
    lines = requirement_lines((REPO / "binder" / "requirements.txt").read_text())
    reqs = [Requirement(line) for line in lines]
    assert {canonicalize_name(r.name): str(r.specifier) for r in reqs} == python_dependencies()
    assert len(reqs) == len(python_dependencies())  # no name twice


def test_binder_python_version_and_post_build():
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    assert runtime == "python-" + pyproject()["project"]["requires-python"].removeprefix(">=")
    post_build = REPO / "binder" / "postBuild"
    assert os.stat(post_build).st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
    assert "python -m pip install --no-deps -e ." in requirement_lines(post_build.read_text())


# --- Debian packages ------------------------------------------------------------


def test_setup_script_installs_what_the_lab_needs():
    assert setup_packages() == [
        "python3", "python3-venv", "python3-pip",
        "iproute2", "iptables", "nftables", "conntrack",
        "procps", "util-linux",
        "nginx-light",
        "dnsmasq-base",
        "graphviz",
        "ca-certificates",
        "nodejs", "npm",
        "chromium",
    ]


def test_binder_apt_list_is_a_usable_subset_of_setup():
    binder = requirement_lines((REPO / "binder" / "apt.txt").read_text())
    assert binder == ["graphviz"]
    assert set(binder) <= set(setup_packages())
    assert not set(binder) & BINDER_CANNOT_USE
    assert BINDER_CANNOT_USE <= set(setup_packages())  # the list above names real entries


def test_every_program_labkit_names_comes_from_a_package_setup_installs():
    assert set(tools.DEBIAN_PACKAGES.values()) <= set(setup_packages())
    assert not set(tools.DEBIAN_PACKAGES) & set(tools.NOT_FROM_DEBIAN)


def test_parse_setup_apt_packages_reads_comments_and_lines():
    text = "set -e\nDEBIAN_PACKAGES=(z\n  a b  # the a and b (c)\n  c\n)\nOTHER=(x)\n"
    assert parse_setup_apt_packages(text) == ["z", "a", "b", "c"]
    assert parse_setup_apt_packages("DEBIAN_PACKAGES=(a b)  # (c)\n") == ["a", "b"]
    with pytest.raises(ValueError):
        parse_setup_apt_packages("PACKAGES=(a)\n")
    with pytest.raises(ValueError):
        parse_setup_apt_packages("DEBIAN_PACKAGES=(a\n b\n")


# --- the two README commands, the script and CI ------------------------------------


def test_readme_gives_exactly_the_two_setup_commands():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^\s*(\./setup\.sh \w+)\s*$", readme, re.M)
    assert tuple(dict.fromkeys(commands)) == README_COMMANDS


def test_ci_runs_the_readme_test_command():
    lines = requirement_lines((REPO / ".ci" / "run").read_text())
    assert lines[-1] == "exec ./setup.sh test </dev/null"


@pytest.mark.parametrize("script", ["setup.sh", ".ci/run", "binder/postBuild"])
def test_scripts_are_valid_bash(script):
    assert os.stat(REPO / script).st_mode & stat.S_IXUSR, f"{script} must be executable"
    done = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")


def test_setup_script_rejects_an_unknown_verb_without_installing():
    done = subprocess.run([str(REPO / "setup.sh"), "install"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: ./setup.sh course [JUPYTER-ARGS...]")


def test_course_command_opens_the_first_notebook():
    text = (REPO / "setup.sh").read_text()
    assert "cd notebooks" in text and "00.00-welcome.ipynb" in text
    assert (REPO / "notebooks" / "00.00-welcome.ipynb").is_file()


# --- conftest: skip with a reason, fail in CI -----------------------------------------

SETUP = frozenset({"iptables", "iproute2", "conntrack"})


def test_nothing_missing_runs():
    assert requirement_outcome([], ci=True, setup_packages=SETUP) is None


def test_missing_tool_skips_with_its_reason_outside_ci():
    missing = [Missing("iptables is not installed: apt-get install iptables", "iptables")]
    assert requirement_outcome(missing, ci=False, setup_packages=SETUP) == (
        "skip", "iptables is not installed: apt-get install iptables"
    )


def test_not_root_skips_outside_ci_and_fails_in_ci():
    assert requirement_outcome([Missing(NOT_ROOT)], ci=False, setup_packages=SETUP) == (
        "skip", "needs root: run as root or via sudo"
    )
    assert requirement_outcome([Missing(NOT_ROOT)], ci=True, setup_packages=SETUP) == (
        "fail",
        "needs root: run as root or via sudo -- in CI this must not skip: CI runs as root "
        "and ./setup.sh installs this; fix the set-up rather than skipping",
    )


def test_in_ci_a_tool_setup_installs_fails_but_kind_still_skips():
    conntrack = Missing("conntrack is not installed: apt-get install conntrack", "conntrack")
    kind = Missing("kind is not installed: install kind: https://kind.sigs.k8s.io/", "")
    assert requirement_outcome([conntrack], ci=True, setup_packages=SETUP)[0] == "fail"
    assert requirement_outcome([kind], ci=True, setup_packages=SETUP) == ("skip", kind.reason)


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("", False), ("false", False),
])
def test_in_ci_reads_the_ci_variable(value, expected):
    assert conftest.in_ci({"CI": value}) is expected
    assert conftest.in_ci({}) is False


def test_setup_apt_packages_is_read_from_setup_sh():
    assert conftest.setup_apt_packages() == frozenset(setup_packages())


@pytest.mark.requires_tool("labkit-no-such-program")
def test_marker_skips_for_a_program_setup_does_not_install():
    pytest.fail("the requires_tool marker should have skipped this test")


# --- labkit.tools ----------------------------------------------------------------


def test_require_tool_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(tools, "_SBIN_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as e:
        tools.require_tool("conntrack")
    assert str(e.value) == "conntrack is not installed: apt-get install conntrack"
    with pytest.raises(MissingToolError) as e:
        tools.require_tool("kind")
    assert str(e.value) == (
        "kind is not installed: install kind: "
        "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    )


def test_require_tool_finds_programs_in_sbin_and_on_path(monkeypatch, tmp_path):
    program = tmp_path / "labkit-fake-tool"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tools.require_tool("labkit-fake-tool") == str(program)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tools, "_SBIN_DIRS", (str(tmp_path),))
    assert tools.require_tool("labkit-fake-tool") == str(program)


def test_missing_requirements_lists_each_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(tools, "_SBIN_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tools.missing_requirements(root=True, tools=("nft", "dot"), euid=1000) == [
        Missing("needs root: run as root or via sudo"),
        Missing("nft is not installed: apt-get install nftables", "nftables"),
        Missing("dot is not installed: apt-get install graphviz", "graphviz"),
    ]
    assert tools.missing_requirements(root=True, euid=0) == []


def test_labkit_requires_skips_outside_ci_and_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(tools, "_SBIN_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="^conntrack is not installed: apt-get install conntrack$"):
        conftest.labkit_requires(tools=("conntrack",))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="^conntrack is not installed: .* in CI this must not skip"):
        conftest.labkit_requires(tools=("conntrack",))
    with pytest.raises(pytest.skip.Exception, match="^kind is not installed"):
        conftest.labkit_requires(tools=("kind",))
