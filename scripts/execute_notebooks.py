#!/usr/bin/env python3
"""Run the authored notebooks on the simulation and store their outputs, then remake the learner copies.

    python scripts/execute_notebooks.py                  every course/CC.SS-*.ipynb
    python scripts/execute_notebooks.py 02.00-services   only these (names without .ipynb)

The stored outputs are what CI's nbval run compares exactly, so they must come
from the simulation (LABKIT_BACKEND=sim) under the notebooks' fixed seed.
Each notebook runs in a fresh kernel with course/ as its directory, exactly as
nbval runs it.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from make_learner_copies import AUTHORED, authored_notebooks, learner_text, LEARNER, render_notebook  # noqa: E402



def execute(path: Path, timeout: int = 300) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    stored = json.loads(nbformat.writes(nb))
    for cell in stored["cells"]:  # execution timestamps would make every run a diff
        cell.get("metadata", {}).pop("execution", None)
    text = render_notebook(stored)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    wanted = set(argv[1:])
    paths = [p for p in authored_notebooks() if not wanted or p.stem in wanted]
    if wanted and len(paths) != len(wanted):
        print(f"unknown notebook among {sorted(wanted)}; have {[p.stem for p in authored_notebooks()]}",
              file=sys.stderr)
        return 2
    os.environ["LABKIT_BACKEND"] = "sim"  # labkit.lab() reads it
    for path in paths:
        print(f"executing course/{path.name}", flush=True)
        execute(path)
        (LEARNER / path.name).write_text(learner_text(path), encoding="utf-8")
        print(f"  wrote notebooks/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
