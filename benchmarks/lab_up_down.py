"""Benchmark: the kernel lab's `up` and `down`, and one probe round trip.

The default lab (3 nodes, 6 pods, 3 services: tests/netns_fixtures/default_lab.yaml).
Goals (issue 4): up under 1 s, down under 0.5 s. Run as root:

    python benchmarks/lab_up_down.py [--rounds 5]

Prints the median and the worst of each figure. The sim backend's figures are
printed too when `labkit.backends.sim` provides a SimLab (another engineer's).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "netns_fixtures" / "default_lab.yaml"


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_netns(rounds: int) -> dict[str, list[float]]:
    from labkit.backends.netns.lab import NetnsLab

    manifests = FIXTURE.read_text()
    out: dict[str, list[float]] = {"up": [], "down": [], "http round trip": [], "syn probe round trip": []}
    for i in range(rounds):
        lab = NetnsLab(f"bench{i % 10}")
        try:
            out["up"].append(_time(lambda: lab.up(manifests)))
            web = next(s for s in lab.services() if s.meta.name == "web")
            lab.http("default/client", f"{web.cluster_ip}:80")  # warm: imports, ARP
            lab.probe("default/client", f"{web.cluster_ip}:80")
            out["http round trip"].append(_time(lambda: lab.http("default/client", f"{web.cluster_ip}:80")))
            out["syn probe round trip"].append(_time(lambda: lab.probe("default/client", f"{web.cluster_ip}:80")))
        finally:
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
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("the netns figures need root: run as root", file=sys.stderr)
    else:
        report("netns", bench_netns(args.rounds), {"up": 1.0, "down": 0.5})
    try:
        from labkit.backends import sim  # noqa: F401  (another engineer's backend)
    except ImportError:
        print("sim    (labkit.backends.sim is not there yet: no figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
