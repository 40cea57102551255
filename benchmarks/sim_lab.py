"""Benchmark: the simulation backend's `up` and `down`, and one probe round trip.

The same default lab as benchmarks/lab_up_down.py (3 nodes, 6 pods, 3
services: tests/netns_fixtures/default_lab.yaml), so the two backends'
figures compare. Goals (issue 4, for the kernel lab): up under 1 s, down
under 0.5 s; the sim should do better. Runs anywhere:

    python benchmarks/sim_lab.py [--rounds 20]

Prints the median and the worst of each figure.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "netns_fixtures" / "default_lab.yaml"
GOALS = {"up": 1.0, "down": 0.5}


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_sim(rounds: int) -> dict[str, list[float]]:
    from labkit.backends.sim.lab import SimLab

    manifests = FIXTURE.read_text()
    out: dict[str, list[float]] = {"up": [], "down": [], "http round trip": [], "syn probe round trip": [],
                                   "scale + re-sync": []}
    for i in range(rounds):
        lab = SimLab("bench", seed=i)
        out["up"].append(_time(lambda: lab.up(manifests)))
        web = next(s for s in lab.services() if s.meta.name == "web")
        target = f"{web.cluster_ip}:80"
        out["http round trip"].append(_time(lambda: lab.http("default/client", target)))
        out["syn probe round trip"].append(_time(lambda: lab.probe("default/client", target)))
        out["scale + re-sync"].append(_time(lambda: lab.scale("deployment/web", 1)))
        out["down"].append(_time(lab.down))
    return out


def report(backend: str, figures: dict[str, list[float]], goals: dict[str, float]) -> None:
    for name, values in figures.items():
        med, worst = statistics.median(values), max(values)
        goal = goals.get(name)
        verdict = "" if goal is None else ("  (goal < %.1f s: %s)" % (goal, "met" if worst < goal else "MISSED"))
        print(f"{backend:6} {name:22} median {med * 1000:7.1f} ms   worst {worst * 1000:7.1f} ms{verdict}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args(argv)
    report("sim", bench_sim(args.rounds), GOALS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
