#!/usr/bin/env python3
"""Draw the static figures of the course text into images/, from a simulated lab.

    python scripts/make_images.py           write images/<name>.dot and images/<name>.svg
    python scripts/make_images.py --check   exit 1 (naming them) when a .dot is out of date

The figures come from the same lab the notebooks use (the course manifest,
seed 0, the simulation), drawn by labkit.viz. Each figure is kept twice: the
DOT source, which tests/test_viz.py regenerates and compares (text is stable;
rendered bytes depend on the graphviz version), and the SVG the prose shows.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "images"
MANIFEST = REPO / "course" / "manifests" / "course.yaml"


def figures() -> dict[str, str]:
    """{figure name: DOT source}, computed from a fresh simulated lab."""
    import contextlib
    import io

    from labkit.backends.sim.lab import SimLab
    from labkit.viz import packet_path, topology, trace_walk

    lab = SimLab("lab", "", 0)
    with contextlib.redirect_stdout(io.StringIO()):
        lab.up(MANIFEST.read_text(encoding="utf-8"), str(MANIFEST.relative_to(REPO)))
    try:
        web = next(s for s in lab.services() if s.meta.name == "web")
        dest = f"{web.cluster_ip}:{web.ports[0].port}"
        out = {"lab-topology": topology(lab, services=True).dot}
        out["service-path"] = packet_path(lab, lab.probe("default/client", dest)[0]).dot
        out["service-trace"] = trace_walk(lab.trace("default/client", dest)).dot
        return out
    finally:
        lab.down()


def stale(figs: dict[str, str]) -> list[str]:
    return [name for name, dot in figs.items()
            if not (IMAGES / f"{name}.dot").exists()
            or (IMAGES / f"{name}.dot").read_text(encoding="utf-8") != dot
            or not (IMAGES / f"{name}.svg").exists()]


def main(argv: list[str]) -> int:
    figs = figures()
    if argv[1:] == ["--check"]:
        names = stale(figs)
        for n in names:
            print(f"out of date: images/{n}.dot (run python scripts/make_images.py)")
        return 1 if names else 0
    from labkit.viz.diagrams import Diagram

    IMAGES.mkdir(exist_ok=True)
    for name, dot in figs.items():
        (IMAGES / f"{name}.dot").write_text(dot, encoding="utf-8")
        Diagram(dot).save(str(IMAGES / f"{name}.svg"))
        print(f"wrote images/{name}.dot and images/{name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
