"""`labkit up --backend sim` on the command line: the lab outlives the command, as a recorded state file.

Every command is a new process (as a learner's shell runs them); the sim lab
is rebuilt from its state file each time, so probes, their conntrack entries
and the lab's clock continue where the last command left them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.backends.sim.lab import SimLab
from labkit.cli import lab_cmds
from labkit.errors import LabkitError

FIXTURE = Path(__file__).parent / "netns_fixtures" / "default_lab.yaml"
WEB = "10.96.53.43:80"


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_STATE_DIR", str(tmp_path))
    return tmp_path


def labkit(*args, state: Path) -> subprocess.CompletedProcess:
    env = {"LABKIT_STATE_DIR": str(state), "PATH": "/usr/bin:/bin", "HOME": str(state)}
    return subprocess.run([sys.executable, "-m", "labkit.cli.lab_cmds", *args], capture_output=True, text=True,
                          env=env)


def test_state_dir_is_per_user(monkeypatch):
    monkeypatch.delenv("LABKIT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/home/ada/.state")
    assert lab_cmds.sim_state_dir() == Path("/home/ada/.state/labkit/sim")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/ada")
    assert lab_cmds.sim_state_dir() == Path("/home/ada/.local/state/labkit/sim")
    monkeypatch.setenv("LABKIT_STATE_DIR", "/tmp/x")
    assert lab_cmds.sim_state_dir() == Path("/tmp/x/sim")


def test_each_command_continues_the_sim_lab_the_last_one_left(state):
    up = labkit("up", "--backend", "sim", "--name", "s1", "-f", str(FIXTURE), state=state)
    assert (up.returncode, up.stdout) == (0, "lab s1 is up (sim): 3 nodes, 6 pods, 3 services\n"), up.stderr
    probe = labkit("probe", "--name", "s1", "--from", "default/client", "--to", WEB, "--json", state=state)
    [p] = json.loads(probe.stdout)
    http = labkit("http", "--name", "s1", "--from", "default/client", "--to", WEB, "--json", state=state)
    h = json.loads(http.stdout)
    ct = labkit("conntrack", "--name", "s1", "--node", "kind-worker", "--json", state=state)
    entries = json.loads(ct.stdout)
    # the same calls on one SimLab in one process: the very same answers and table
    one = SimLab("s1")
    one.up(FIXTURE.read_text(), str(FIXTURE))
    [p1] = one.probe("default/client", WEB)
    h1 = one.http("default/client", WEB)
    assert (p["answered_by"], p["client_address"]) == (p1.answered_by, p1.client_address)
    assert (h["answered_by"], h["client_address"], h["body"]) == (h1.answered_by, h1.client_address, h1.body)
    assert [(e["orig"]["sport"], e["state"], e["timeout"]) for e in entries] == [
        (e.orig.sport, e.state, e.timeout) for e in one.conntrack("kind-worker")]
    assert [e["state"] for e in entries] == ["CLOSE", "TIME_WAIT"]
    scale = labkit("scale", "--name", "s1", "deployment/web", "--replicas", "1", state=state)
    assert scale.stdout == "deployment/web scaled to 1\n"
    status = labkit("status", "--json", state=state)
    sims = [lab for lab in json.loads(status.stdout) if lab["backend"] == "sim"]  # kernel labs may be up too
    assert sims == [{"name": "s1", "backend": "sim", "phase": "up", "namespaces": 10, "pods": 4, "processes": 0}]
    assert labkit("down", "--name", "s1", state=state).stdout == "lab s1: removed its simulation state\n"
    assert list((state / "sim").iterdir()) == []
    gone = labkit("probe", "--name", "s1", "--from", "default/client", "--to", WEB, state=state)
    assert gone.returncode == 2 and "no lab named 's1' is up" in gone.stderr


def test_a_name_is_taken_once(state, capsys):
    assert lab_cmds.main_lab("up", ["--backend", "sim", "--name", "s2"]) == 0
    with pytest.raises(LabkitError) as e:
        lab_cmds.main_lab("up", ["--backend", "sim", "--name", "s2"])
    assert str(e.value) == "lab 's2' already exists (fix: `labkit down --name s2` first, or pick another --name)"
    lab_cmds.main_lab("down", ["--name", "s2"])
    assert capsys.readouterr().out == ("lab s2 is up (sim): 3 nodes, 0 pods, 0 services\n"
                                       "lab s2: removed its simulation state\n")


def test_a_failed_call_is_not_recorded_and_a_broken_state_says_how_to_recover(state):
    lab_cmds.main_lab("up", ["--backend", "sim", "--name", "s3"])
    with pytest.raises(LabkitError, match="no pod default/ghost in lab s3"):
        lab_cmds.main_lab("probe", ["--name", "s3", "--from", "default/ghost", "--to", WEB])
    assert json.loads((state / "sim" / "s3.json").read_text())["calls"] == []
    (state / "sim" / "s3.json").write_text("{")
    with pytest.raises(LabkitError) as e:
        lab_cmds.RecordedSimLab.load("s3")
    assert str(e.value).startswith(f"the state of sim lab 's3' ({state}/sim/s3.json) cannot be read: ")
    assert str(e.value).endswith("(fix: `labkit down --name s3`, then make it again)")


def test_down_all_takes_sim_labs_too(state, capsys, monkeypatch):
    from labkit.backends.netns import cleanup

    monkeypatch.setattr(cleanup, "down_all", lambda: [])  # leave any kernel lab on this machine alone
    for name in ("s4", "s5"):
        lab_cmds.main_lab("up", ["--backend", "sim", "--name", name])
    capsys.readouterr()
    assert lab_cmds.main_lab("down", ["--all"]) == 0
    assert capsys.readouterr().out == ("lab s4: removed its simulation state\n"
                                       "lab s5: removed its simulation state\n")
    lab_cmds.main_lab("down", ["--all"])
    assert capsys.readouterr().out == "no labs found\n"
