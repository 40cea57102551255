"""The probed matrix beside the predicted one (pure), and the notebook widget that toggles policies."""
from __future__ import annotations

import pytest

from labkit.backends.base import ANSWERED, NO_REPLY, REFUSED, UNREACHABLE
from labkit.controllers.netpol import build_cluster
from labkit.controllers.netpol.matrix import compute_matrix
from labkit.controllers.netpol.probed import (
    ProbedMatrix,
    probe_pairs,
    probed_allowed,
    probed_matrix_to_json,
    render_probed_matrix,
)
from labkit.model.load import load_manifests
from netpol_e2e_support import CLUSTER_FILE

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
"""
PODS = ("x/a", "x/b", "y/a")


def _matrix():
    cluster = build_cluster(load_manifests(CLUSTER_FILE.read_text() + "---\n" + POLICY))
    return compute_matrix(cluster, 80, "TCP", PODS)


def _probed(**changes):
    m = _matrix()
    verdicts = {k: ANSWERED if m.allowed(*k) else NO_REPLY for k in probe_pairs(m.names)}
    verdicts.update(changes)
    return ProbedMatrix(m, verdicts, "sim")


def test_pairs_leave_out_loopback_and_keep_row_order():
    assert probe_pairs(PODS) == [("x/a", "x/b"), ("x/a", "y/a"), ("x/b", "x/a"), ("x/b", "y/a"),
                                 ("y/a", "x/a"), ("y/a", "x/b")]


@pytest.mark.parametrize("verdict,allowed", [(ANSWERED, True), (REFUSED, True), (NO_REPLY, False),
                                             (UNREACHABLE, False)])
def test_a_probe_passed_the_policy_when_the_pod_answered_or_refused(verdict, allowed):
    assert probed_allowed(verdict) is allowed


def test_render_marks_a_difference_and_lists_it():
    pm = _probed(**{})
    pm = ProbedMatrix(pm.predicted, {**pm.verdicts, ("y/a", "x/a"): ANSWERED}, "netns")
    assert render_probed_matrix(pm) == "\n".join([
        "TCP/80: '.' allowed, 'X' denied (rows: from, columns: to); probed with real packets on the netns "
        "lab: '?' not probed (a pod to itself never meets a node's rules), '!' differs from the prediction",
        "predicted (evaluator) | probed (netns)",
        "-   x/a x/b y/a       | -   x/a x/b y/a",
        "x/a X   .   .         | x/a ?   .   .",
        "x/b .   .   .         | x/b .   ?   .",
        "y/a X   .   .         | y/a .!  .   ?",
        "1 of 6 probed pairs differ:",
        "  y/a -> x/a: predicted denied, probe answered (allowed)",
    ])
    assert pm.differences() == [("y/a", "x/a", False, True)] and not pm.agrees


def test_render_without_probes_is_the_prediction_alone():
    pm = ProbedMatrix(_matrix(), {})
    assert render_probed_matrix(pm).splitlines() == [
        "TCP/80: '.' allowed, 'X' denied (rows: from, columns: to)", "predicted (evaluator)",
        "-   x/a x/b y/a", "x/a X   .   .", "x/b .   .   .", "y/a X   .   ."]
    assert pm.differences() == [] and not pm.agrees and pm.observed("x/a", "x/b") is None


def test_json_has_prediction_probes_and_differences():
    pm = _probed(**{})
    out = probed_matrix_to_json(ProbedMatrix(pm.predicted, {**pm.verdicts, ("x/b", "x/a"): NO_REPLY}, "sim"))
    assert out["pods"] == list(PODS) and out["backend"] == "sim"
    assert out["allowed"]["y/a"] == {"x/a": False, "x/b": True, "y/a": True}
    assert out["probed"]["y/a"] == {"x/a": False, "x/b": True, "y/a": None}
    assert out["verdicts"]["x/b"] == {"x/a": "no-reply", "x/b": None, "y/a": "answered"}
    assert out["differences"] == [{"from": "x/b", "to": "x/a", "predicted": True, "probed": False,
                                   "verdict": "no-reply"}]
    assert "probed" not in probed_matrix_to_json(ProbedMatrix(pm.predicted, {}))


# --- the widget --------------------------------------------------------------------------

ipywidgets = pytest.importorskip("ipywidgets")


def test_toggling_text_lists_the_cells_that_changed():
    from labkit.viz.widgets import render_netpol_toggles

    objs = load_manifests(CLUSTER_FILE.read_text() + "---\n" + POLICY)
    text = render_netpol_toggles(objs, set(), 80, "TCP", before={"x/x-a-allows-x-b"})
    lines = text.splitlines()
    assert lines[0] == "TCP/80, policies in force: none"
    assert lines[-9:] == ["8 cells changed:", "  x/a -> x/a: now allowed", "  x/c -> x/a: now allowed",
                          "  y/a -> x/a: now allowed", "  y/b -> x/a: now allowed", "  y/c -> x/a: now allowed",
                          "  z/a -> x/a: now allowed", "  z/b -> x/a: now allowed", "  z/c -> x/a: now allowed"]
    on = render_netpol_toggles(objs, {"x/x-a-allows-x-b"}).splitlines()
    assert on[0] == "TCP/80, policies in force: x/x-a-allows-x-b"
    assert on[5] == "| x/a    | X   | .   | .   | .   | .   | .   | .   | .   | .   |"


def test_widget_unticking_a_policy_changes_the_matrix_and_probe_compares_on_a_lab():
    from labkit.backends.sim.lab import SimLab
    from labkit.viz.widgets import netpol_explorer

    lab = SimLab("npw")
    lab.up(CLUSTER_FILE.read_text() + "---\n" + POLICY)
    try:
        box = netpol_explorer(lab)
        controls, out = box.children
        [tick, button] = controls.children
        assert tick.description == "x/x-a-allows-x-b" and "| y/a    | X " in out.value
        tick.value = False
        assert "| y/a    | . " in out.value and "8 cells changed:" in out.value
        button.click()
        assert "probed and predicted agree on all 72 probed pairs" in out.value
        assert "probed (sim)" in out.value
    finally:
        lab.down()
