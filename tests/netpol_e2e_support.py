"""The upstream NetworkPolicy e2e scenarios (tests/netpol_e2e/*.yaml), read for tests.

Each scenario file is a transcription of one `f.It(...)` of
kubernetes/kubernetes test/e2e/network/netpol/network_policy.go (the version
that probes all 9 pods x/a .. z/c): the policies it creates, step by step,
and for every probe the reachability calls it makes (ExpectPeer,
ExpectAllIngress, ExpectAllEgress, Expect) plus the truth table those calls
produce, printed as upstream's TruthTable.PrettyPrint does.

`apply_expectations` is upstream's Reachability in miniature, so a test can
check that each stored table is exactly what the transcribed calls say.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import yaml

from labkit.model.load import load_manifests
from labkit.model.objects import Namespace, ObjectMeta, Pod

E2E_DIR = Path(__file__).resolve().parent / "netpol_e2e"
CLUSTER_FILE = E2E_DIR / "cluster.yaml"
UPSTREAM = "kubernetes/kubernetes test/e2e/network/netpol/network_policy.go"
ALL_PODS = tuple(f"{ns}/{p}" for ns in "xyz" for p in "abc")


@dataclass(frozen=True)
class Probe:
    port: int
    protocol: str
    expect: tuple  # the upstream calls, as YAML data
    table: str  # the stored truth table ("" until filled in)


@dataclass(frozen=True)
class Step:
    policies_yaml: str  # the NetworkPolicies in effect, as one YAML stream
    add_namespace_labels: dict
    add_pod_labels: dict
    probes: tuple[Probe, ...]


@dataclass(frozen=True)
class Scenario:
    file: Path
    name: str
    steps: tuple[Step, ...]

    @property
    def id(self) -> str:
        return self.file.stem


def scenario_files() -> list[Path]:
    return sorted(p for p in E2E_DIR.glob("[0-9]*.yaml"))


def load_scenario(path: Path) -> Scenario:
    data = yaml.safe_load(path.read_text())
    steps = []
    for s in data["steps"]:
        probes = tuple(Probe(p["port"], p["protocol"], tuple(p.get("expect") or ()), p.get("table", ""))
                       for p in s["probes"])
        docs = s.get("policies") or []
        steps.append(Step(yaml.safe_dump_all(docs, sort_keys=False) if docs else "",
                          dict(s.get("addNamespaceLabels") or {}), dict(s.get("addPodLabels") or {}),
                          probes))
    return Scenario(path, data["name"], tuple(steps))


def base_objects() -> list:
    return load_manifests(CLUSTER_FILE.read_text(), str(CLUSTER_FILE))


def step_objects(scenario: Scenario, index: int) -> list:
    """The cluster plus the step's policies, with every label change up to this step applied."""
    ns_labels: dict[str, dict] = {}
    pod_labels: dict[str, dict] = {}
    for step in scenario.steps[: index + 1]:
        for ns, labels in step.add_namespace_labels.items():
            ns_labels.setdefault(ns, {}).update(labels)
        for pod, labels in step.add_pod_labels.items():
            pod_labels.setdefault(pod, {}).update(labels)
    objs = []
    for o in base_objects():
        if isinstance(o, Namespace) and o.meta.name in ns_labels:
            o = replace(o, meta=replace(o.meta, labels={**o.meta.labels, **ns_labels[o.meta.name]}))
        if isinstance(o, Pod):
            key = f"{o.meta.namespace}/{o.meta.name}"
            if key in pod_labels:
                o = replace(o, meta=replace(o.meta, labels={**o.meta.labels, **pod_labels[key]}))
        objs.append(o)
    step = scenario.steps[index]
    if step.policies_yaml:
        objs += load_manifests(step.policies_yaml, f"{scenario.file.name} step {index}")
    return objs


# --- upstream's Reachability, in miniature ------------------------------------


def _peer_matches(peer: dict, pod: str) -> bool:
    ns, name = pod.split("/")
    return (not peer.get("namespace") or peer["namespace"] == ns) and (not peer.get("pod") or peer["pod"] == name)


def apply_expectations(calls, pods=ALL_PODS) -> dict[tuple[str, str], bool]:
    """NewReachability(pods, true) followed by the transcribed calls, in order."""
    truth = {(a, b): True for a in pods for b in pods}
    for call in calls:
        (op, args), = call.items()
        value = bool(args["connected"])
        if op == "Expect":
            truth[(args["from"], args["to"])] = value
        elif op == "ExpectAllIngress":
            for a in pods:
                truth[(a, args["pod"])] = value
        elif op == "ExpectAllEgress":
            for b in pods:
                truth[(args["pod"], b)] = value
        elif op == "ExpectPeer":
            for a in pods:
                if _peer_matches(args["from"], a):
                    for b in pods:
                        if _peer_matches(args["to"], b):
                            truth[(a, b)] = value
        else:
            raise ValueError(f"unknown reachability call {op!r}")
    return truth


def all_probes(scenarios: Optional[list[Scenario]] = None):
    """(scenario, step index, probe) for every probe of every scenario."""
    for sc in scenarios if scenarios is not None else [load_scenario(p) for p in scenario_files()]:
        for i, step in enumerate(sc.steps):
            for probe in step.probes:
                yield sc, i, probe


def _fill_tables() -> None:  # pragma: no cover - a maintenance tool
    """Write each probe's `table:` from its transcribed calls (python tests/netpol_e2e_support.py)."""
    from labkit.controllers.netpol.matrix import render_truth_table

    for path in scenario_files():
        sc = load_scenario(path)
        tables = [render_truth_table(ALL_PODS, apply_expectations(p.expect)) for _, _, p in all_probes([sc])]
        lines, out, in_table = path.read_text().splitlines(), [], False
        for line in lines:  # drop old tables
            if line == "    table: |":
                in_table = True
                continue
            if in_table and line.startswith("      "):
                continue
            in_table = False
            out.append(line)
        result, n, in_probe = [], 0, False
        for i, line in enumerate(out):
            result.append(line)
            if line.startswith("  - port:"):
                in_probe = True
            nxt = out[i + 1] if i + 1 < len(out) else ""
            if in_probe and not nxt.startswith("    "):
                result.append("    table: |")
                result += ["      " + t for t in tables[n].splitlines()]
                n, in_probe = n + 1, False
        assert n == len(tables), (path, n, len(tables))
        path.write_text("\n".join(result) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _fill_tables()
