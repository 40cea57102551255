"""The registry file: written atomically, read back whole, removed by down."""
import json
import os

from labkit.backends.netns import registry as reg


def test_registry_round_trip(tmp_path):
    r = reg.new_registry("demo", "lkdemo", root=str(tmp_path), seed=3, kind_config="kind: Cluster\n")
    r.record_namespaces(["lkdemo-net", "lkdemo-worker"])
    r.record_process(reg.ProcessRecord(1234, "lkdemo-pod-default.a", "default/a", "--lab\0demo\0"))
    r.operations.append({"op": "scale", "namespace": "default", "name": "web", "replicas": 2})
    r.save()
    back = reg.load_registry("demo", root=str(tmp_path))
    assert back == r
    assert sorted(os.listdir(tmp_path / "demo")) == ["state.json"]  # no temporary file left
    assert json.loads((tmp_path / "demo" / "state.json").read_text())["namespaces"] == ["lkdemo-net", "lkdemo-worker"]


def test_forgetting_namespaces_forgets_their_processes(tmp_path):
    r = reg.new_registry("demo", "lkdemo", root=str(tmp_path))
    r.record_namespaces(["a", "b"])
    r.record_process(reg.ProcessRecord(1, "a", "default/a", "m"))
    r.record_process(reg.ProcessRecord(2, "b", "default/b", "m"))
    r.forget_namespaces(["a"])
    back = reg.load_registry("demo", root=str(tmp_path))
    assert (back.namespaces, [p.pid for p in back.processes]) == (["b"], [2])


def test_a_missing_or_broken_registry_reads_as_none(tmp_path):
    assert reg.load_registry("nope", root=str(tmp_path)) is None
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "state.json").write_text('{"lab": "half", "namesp')
    assert reg.load_registry("half", root=str(tmp_path)) is None
    assert reg.list_state_dirs(str(tmp_path)) == ["half"]
    reg.remove_state("half", str(tmp_path))
    assert reg.list_state_dirs(str(tmp_path)) == []
