"""Shared test helpers: tests that need root or an external program.

Usage, in any test module under tests/:

    import pytest

    @pytest.mark.labkit_requires(root=True, tools=("iptables", "ip"))
    def test_rules_load_into_a_namespace(): ...

    @pytest.mark.requires_root                      # the same, one need at a time
    @pytest.mark.requires_tool("conntrack", "nft")
    def test_conntrack_entry(): ...

    def test_dynamic(labkit_requires):              # as a fixture: check inside a test
        labkit_requires(tools=("nginx",))           # or inside another fixture

    def test_needs_root(requires_root): ...         # fixture form of the root marker

    from conftest import labkit_requires            # the plain function, for helpers

An unmet need SKIPS the test with its reason, printed in pytest's summary
(addopts has -ra):
    "needs root: run as root or via sudo"
    "iptables is not installed: apt-get install iptables"

In CI (environment CI=true) the same need FAILS the test instead when the
README's set-up would have met it: CI runs as root, and `./setup.sh` installs
every Debian package in its DEBIAN_PACKAGES list. Nothing the README installs
may skip in CI. Needs the set-up cannot meet (kind, docker) still skip.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from labkit.tools import NOT_ROOT, Missing, missing_requirements

REPO = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = REPO / "setup.sh"


def parse_setup_apt_packages(text: str) -> list[str]:
    """The Debian packages in setup.sh's `DEBIAN_PACKAGES=( ... )` array, in order.

    Comments (from '#' to the end of a line) may hold anything, parentheses too.
    """
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("DEBIAN_PACKAGES=("):
            rest = line[len("DEBIAN_PACKAGES=("):]
            break
    else:
        raise ValueError("setup.sh has no DEBIAN_PACKAGES=( ... ) array")
    words: list[str] = []
    while True:
        code = rest.split("#", 1)[0]
        if ")" in code:
            return words + code.split(")", 1)[0].split()
        words += code.split()
        rest = next(lines, None)
        if rest is None:
            raise ValueError("setup.sh: DEBIAN_PACKAGES=( ... ) is not closed")


def setup_apt_packages() -> frozenset[str]:
    """What `./setup.sh` installs; empty when the script is not there."""
    try:
        return frozenset(parse_setup_apt_packages(SETUP_SCRIPT.read_text()))
    except (OSError, ValueError):
        return frozenset()


def in_ci(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """True in CI: the environment variable CI is set to true (or 1/yes)."""
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def requirement_outcome(
    missing: list[Missing], *, ci: bool, setup_packages: frozenset[str]
) -> tuple[str, str] | None:
    """None when nothing is missing, else ("skip" | "fail", reason).

    Fail only in CI, and only for what the README's set-up provides.
    """
    if not missing:
        return None
    reason = "; ".join(m.reason for m in missing)
    if ci and any(m.reason == NOT_ROOT or m.package in setup_packages for m in missing):
        return "fail", (
            f"{reason} -- in CI this must not skip: CI runs as root and ./setup.sh "
            "installs this; fix the set-up rather than skipping"
        )
    return "skip", reason


def _outcome(root: bool, tools: tuple[str, ...]) -> tuple[str, str] | None:
    return requirement_outcome(
        missing_requirements(root, tools), ci=in_ci(), setup_packages=setup_apt_packages()
    )


def labkit_requires(root: bool = False, tools: tuple[str, ...] | list[str] = ()) -> None:
    """Skip the running test (or fail it, in CI) unless root/tools are available."""
    outcome = _outcome(root, tuple(tools))
    if outcome is None:
        return
    action, reason = outcome
    if action == "fail":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# The markers themselves are registered in pyproject.toml ([tool.pytest.ini_options]).


def marked_needs(item: pytest.Item) -> tuple[bool, tuple[str, ...]]:
    """(root, tools) that an item's requirement markers ask for."""
    root = False
    tools: list[str] = []
    for mark in item.iter_markers("labkit_requires"):
        root = root or bool(mark.kwargs.get("root", mark.args[0] if mark.args else False))
        tools += list(mark.kwargs.get("tools", ()))
    if item.get_closest_marker("requires_root") is not None:
        root = True
    for mark in item.iter_markers("requires_tool"):
        tools += list(mark.args)
    return root, tuple(dict.fromkeys(tools))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unmet needs become skip markers, so the summary names the test's own line."""
    for item in items:
        root, tools = marked_needs(item)
        outcome = _outcome(root, tools) if root or tools else None
        if outcome is not None and outcome[0] == "skip":
            item.add_marker(pytest.mark.skip(reason=outcome[1]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In CI, a need the set-up should have met fails the test before it runs."""
    root, tools = marked_needs(item)
    outcome = _outcome(root, tools) if root or tools else None
    if outcome is not None and outcome[0] == "fail":
        pytest.fail(outcome[1], pytrace=False)


@pytest.fixture(name="labkit_requires")
def labkit_requires_fixture():
    """The labkit_requires function, for checks made inside a test or fixture."""
    return labkit_requires


@pytest.fixture
def requires_root() -> None:
    """Skip (fail in CI) unless running as root."""
    labkit_requires(root=True)
