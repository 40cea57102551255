"""`labkit down --all` through the command line (its own module: no other lab of ours is up here)."""
import subprocess

import pytest

from test_netns_lab import TOOLS, _cli, _leftovers, _name

pytestmark = pytest.mark.labkit_requires(root=True, tools=TOOLS)


def test_down_all_through_the_cli_when_no_other_lab_is_up():
    from labkit.backends.netns import cleanup

    if cleanup.find_labs():
        pytest.skip("other labs are up on this machine; `down --all` would remove them too")
    name = _name()
    up = subprocess.run(_cli("up", "--name", name), capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    down = subprocess.run(_cli("down", "--all"), capture_output=True, text=True)
    assert down.stdout == f"lab {name}: removed 6 namespaces, stopped 0 processes\n"
    assert _leftovers(name) == []
