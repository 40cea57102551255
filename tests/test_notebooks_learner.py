"""The course notebooks: their shape, the learner copies made from them, and that every unsolved check hints.

The authored notebooks (course/) keep solutions between ### BEGIN SOLUTION and
### END SOLUTION; scripts/make_learner_copies.py writes notebooks/. The stored
outputs of course/ are compared exactly by nbval (see the report / README):
    LABKIT_BACKEND=sim python -m pytest --nbval course/ --nbval-current-env \\
        --nbval-sanitize-with tests/nbval_sanitize.cfg
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import make_learner_copies as mlc  # noqa: E402

NOTEBOOKS = ["00.00-welcome", "01.00-pods-come-and-go", "02.00-services", "03.00-kube-proxy-and-dnat",
             "04.00-conntrack", "05.00-egress-and-snat", "06.00-nodeport-and-loadbalancer",
             "07.00-ingress-and-gateway-api", "08.00-network-policy", "09.00-troubleshooting"]


def cells(name: str, where: Path = mlc.AUTHORED) -> list[dict]:
    return json.loads((where / f"{name}.ipynb").read_text())["cells"]


def source(cell) -> str:
    return "".join(cell["source"])


def test_the_five_notebooks_exist_in_both_places():
    assert [p.stem for p in mlc.authored_notebooks()] == NOTEBOOKS
    assert sorted(p.stem for p in mlc.LEARNER.glob("*.ipynb")) == NOTEBOOKS


def test_learner_copies_are_up_to_date():
    assert mlc.stale_copies() == [], "run: python scripts/make_learner_copies.py"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shape(name):
    cs = cells(name)
    first = source(cs[0])
    assert first.startswith(f"# {name[:5]} ") and "**By the end of this notebook you can**" in first
    setup = [c for c in cs if "lab = labkit.lab(seed=0)" in source(c)]
    assert len(setup) == 1 and setup[0]["cell_type"] == "code"
    text = "\n".join(source(c) for c in cs if c["cell_type"] == "markdown")
    assert "## Summary" in text and "## Further reading" in text and "https://kubernetes.io/docs/" in text
    assert source(cs[-1]).strip() == "lab.down()"
    exercises = [c for c in cs if mlc.BEGIN in source(c)]
    assert len(exercises) >= 3
    for c in exercises:
        assert "labkit.checks." in source(c), "every exercise ends with its check"
    for c in cs:  # small outputs only: no megabyte images
        assert len(json.dumps(c.get("outputs", []))) < 40_000


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_authored_notebooks_store_correct_answers(name):
    for c in cells(name):
        if mlc.BEGIN in source(c):
            printed = "".join("".join(o.get("text", "")) for o in c["outputs"])
            assert printed.startswith("Correct: "), (source(c), printed)


def test_strip_solutions_stubs_each_assigned_name():
    src = "x = 1\n### BEGIN SOLUTION\nanswer = f(x)\nfor i in y:\n    answer += i\nother: int = 2\n### END SOLUTION\ncheck(answer)"
    assert mlc.strip_solutions(src) == ("x = 1\nanswer = ...  # your answer here\nother = ...  # your answer here\n"
                                        "check(answer)")
    assert mlc.strip_solutions("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION") == "# your code here"
    assert mlc.strip_solutions("if a:\n    ### BEGIN SOLUTION\n    v = 1\n    ### END SOLUTION") == (
        "if a:\n    v = ...  # your answer here")


@pytest.mark.parametrize("src, message", [
    ("### BEGIN SOLUTION\nx = 1", "cell: ### BEGIN SOLUTION is never closed"),
    ("x = 1\n### END SOLUTION", "cell line 2: ### END SOLUTION without ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION", "cell line 2: ### BEGIN SOLUTION inside another solution"),
])
def test_unpaired_markers_are_refused(src, message):
    with pytest.raises(mlc.SolutionMarkerError) as e:
        mlc.strip_solutions(src, "cell")
    assert str(e.value) == message


def test_learner_copy_clears_exercise_outputs_and_keeps_the_rest():
    nb = {"cells": [
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [{"output_type": "stream"}],
         "source": ["### BEGIN SOLUTION\n", "answer = 3\n", "### END SOLUTION\n", "labkit.checks.x(answer, lab)"]},
        {"cell_type": "code", "execution_count": 2, "metadata": {}, "outputs": [{"output_type": "stream"}],
         "source": ["print(1)"]},
    ]}
    out = mlc.learner_notebook(nb)
    assert out["cells"][0]["source"] == ["answer = ...  # your answer here\n", "labkit.checks.x(answer, lab)"]
    assert (out["cells"][0]["outputs"], out["cells"][0]["execution_count"]) == ([], None)
    assert out["cells"][1] == nb["cells"][1]


@pytest.fixture(scope="module")
def sim_kernel_env():
    """Kernels that run the lab on the simulation: labkit.lab() reads LABKIT_BACKEND."""
    return {"LABKIT_BACKEND": "sim"}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_learner_copy_runs_and_every_check_hints(name, sim_kernel_env, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for k, v in sim_kernel_env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(str(mlc.LEARNER / f"{name}.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(mlc.LEARNER)}}).execute()
    checked = 0
    for c in nb.cells:
        if c.cell_type == "code" and "labkit.checks." in c.source and "... " in c.source:
            printed = "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            assert printed.startswith("Not answered yet: replace the ... with your answer and run the cell "
                                      "again.\nHint 1 of "), (c.source, printed)
            checked += 1
    assert checked >= 3
