"""Every command the kind backend can run is run by some test.

commands.command_shapes() lists them all, in one place. One session on the fake kind cluster
uses every one of them (and nothing else), and every recorded call in tests/kind_recordings/ is
one of them: so a command added to the backend without a line in that table, or a line in the
table that no code path issues any more, fails here.
"""
from __future__ import annotations

import re

import yaml

from kind_support import RECORDINGS
from labkit.backends.kind import commands as cmd
from labkit.backends.kind.fake_cluster import KindFake, fake_find
from labkit.backends.kind.lab import KindLab

MANIFESTS = (RECORDINGS / "manifests.yaml").read_text()
NODEPORT = (RECORDINGS.parent / "manifests" / "nodeport.yaml").read_text()


def test_the_table_names_each_command_once_and_recognises_its_own_entries():
    shapes = cmd.command_shapes()
    assert len({tuple(v) for v in shapes.values()}) == len(shapes) == 32
    for name, words in shapes.items():
        example = [re.sub(r"\{[A-Z]+\}", "x1", w) for w in words]
        assert cmd.command_shape(example) == name
    assert cmd.command_shape(["kubectl", "get", "pods"]) == "unknown: kubectl get pods"


def test_one_session_on_the_fake_cluster_runs_every_command(tmp_path):
    fake = KindFake()
    lab = KindLab("lab", "", 0, fake, str(tmp_path), sleep=lambda s: None, show=lambda s: None, find=fake_find)
    lab.up(MANIFESTS, "manifests.yaml")
    lab.apply(NODEPORT, "nodeport.yaml")
    lab.services()
    for source in ("default/client", "kind-worker", "outside"):
        destination = "172.18.0.3:30080" if source == "outside" else "10.96.0.80:80"
        lab.probe(source, destination)
        lab.http(source, destination)
        lab.probe(source, "10.244.1.2:8081" if source != "outside" else "172.18.0.3:30080", protocol="udp")
    lab.trace("default/client", "10.96.0.80:80")
    lab.rules("kind-worker", "filter")
    lab.conntrack("kind-worker2")
    lab.compare_rules("kind-worker")
    lab.scale("deployment/web", 2)
    lab.delete(NODEPORT, "nodeport.yaml")
    lab.down()
    assert fake.shapes_seen() == set(cmd.command_shapes())
    assert fake.clusters == {}


def test_every_recorded_command_is_in_the_table():
    recorded = set()
    for calls in RECORDINGS.glob("*/calls.yaml"):
        for call in yaml.safe_load(calls.read_text()):
            recorded.add(cmd.command_shape(call["argv"]))
    assert {s for s in recorded if s.startswith("unknown")} == set()
    # the rest only the fake session above reaches (the recordings show one example of each kind of probe)
    assert set(cmd.command_shapes()) - recorded == {"outside http", "outside udp", "probe http from node",
                                                    "probe udp from node"}
