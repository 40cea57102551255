"""The authored notebooks on the kernel lab (netns), in lax mode with explicit assertions.

Outputs differ from the simulation's (addresses the kernel's conntrack shows
in hash order, the coins the kernel flips), so nothing is compared; instead
every cell must run and every exercise's check must say Correct. Needs root
and the netns backend's tools; the lab is named "lab" as in the notebooks.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "course").glob("[0-9][0-9].[0-9][0-9]-*.ipynb"))
TOOLS = ("ip", "iptables-restore", "iptables-save", "conntrack", "xtables-monitor")


@pytest.mark.labkit_requires(root=True, tools=TOOLS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_authored_notebook_on_the_kernel(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LABKIT_BACKEND", "netns")
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        from labkit.backends.netns import cleanup
        from labkit.backends.netns.runner import Runner

        cleanup.down_lab("lab", Runner())  # a failed cell must not leave the lab behind
    setup = next(c for c in nb.cells if "lab = labkit.lab(seed=0)" in c.source)
    assert "".join(o.get("text", "") for o in setup.outputs).startswith("labkit: running on the netns backend")
    for c in nb.cells:
        if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source:
            printed = "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            assert printed.startswith("Correct: "), (c.source, printed)
