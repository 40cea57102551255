"""The upstream NetworkPolicy e2e scenarios, run through the evaluator over all 9 pods.

48 scenarios transcribed from kubernetes/kubernetes test/e2e/network/netpol
(tests/netpol_e2e/). For every probe: the stored truth table must be what the
transcribed upstream calls produce, and the evaluator's matrix must equal it
cell for cell -- loopback cells included, since the upstream expectations
state them by policy semantics.
"""
from __future__ import annotations

import pytest

from labkit.controllers.netpol import build_cluster
from labkit.controllers.netpol.matrix import compute_matrix, parse_truth_table, render_truth_table
from netpol_e2e_support import (
    ALL_PODS,
    all_probes,
    apply_expectations,
    load_scenario,
    scenario_files,
    step_objects,
)

SCENARIOS = [load_scenario(p) for p in scenario_files()]
PROBES = list(all_probes(SCENARIOS))


def _id(item) -> str:
    sc, step, probe = item
    return f"{sc.id}[step{step}-{probe.protocol}/{probe.port}]"


def test_the_suite_has_every_transcribed_scenario():
    assert len(SCENARIOS) == 48
    assert len(PROBES) == 65
    assert len({sc.name for sc in SCENARIOS}) == 48


@pytest.mark.parametrize("item", PROBES, ids=[_id(i) for i in PROBES])
def test_stored_table_is_what_the_upstream_calls_say(item):
    _, _, probe = item
    assert probe.table.strip() == render_truth_table(ALL_PODS, apply_expectations(probe.expect))


@pytest.mark.parametrize("item", PROBES, ids=[_id(i) for i in PROBES])
def test_evaluator_matrix_matches_upstream(item):
    sc, step, probe = item
    cluster = build_cluster(step_objects(sc, step))
    matrix = compute_matrix(cluster, probe.port, probe.protocol)
    names, expected = parse_truth_table(probe.table)
    assert matrix.names == names == ALL_PODS
    got = render_truth_table(matrix.names, matrix.truth())
    assert got == probe.table.strip(), f"{sc.name}\nexpected:\n{probe.table}\ngot:\n{got}"
