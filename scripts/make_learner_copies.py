#!/usr/bin/env python3
"""Make the learner copies in notebooks/ from the authored notebooks in course/.

    python scripts/make_learner_copies.py          write notebooks/CC.SS-*.ipynb
    python scripts/make_learner_copies.py --check  exit 1 (naming them) if any copy is stale

In an authored notebook a solution sits between `### BEGIN SOLUTION` and
`### END SOLUTION` (nbgrader's markers). In the learner copy each block
becomes a stub: every name the solution assigns at its own indentation gets
`NAME = ...  # your answer here` (a block that assigns nothing becomes
`# your code here`). Cells that held a solution or call a check
(`labkit.checks.`) lose their outputs; every other output stays, so the
learner copy still shows the lab's diagrams and tables. Checks given `...`
print their first hint, so a learner copy runs top to bottom without error.

tests/test_notebooks_learner.py regenerates the copies in memory and fails
when the files in notebooks/ differ.
"""
from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AUTHORED = REPO / "course"
LEARNER = REPO / "notebooks"
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_CALL = "labkit.checks."
STUB = "...  # your answer here"
_ASSIGN = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=(?!=)")


class SolutionMarkerError(ValueError):
    """BEGIN/END markers that do not pair up."""


def stub_for(block: list[str], indent: str) -> list[str]:
    """The stub lines replacing one solution block."""
    names: list[str] = []
    for line in block:
        m = _ASSIGN.match(line)
        if m and m.group(1) == indent and m.group(2) not in names:
            names.append(m.group(2))
    if not names:
        return [f"{indent}# your code here"]
    return [f"{indent}{n} = {STUB}" for n in names]


def strip_solutions(source: str, where: str = "") -> str:
    """The cell's source with every solution block replaced by its stub."""
    out: list[str] = []
    block: list[str] | None = None
    indent = ""
    for n, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if block is not None:
                raise SolutionMarkerError(f"{where} line {n}: {BEGIN} inside another solution")
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if block is None:
                raise SolutionMarkerError(f"{where} line {n}: {END} without {BEGIN}")
            out += stub_for(block, indent)
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise SolutionMarkerError(f"{where}: {BEGIN} is never closed")
    return "\n".join(out)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def learner_notebook(nb: dict, name: str = "") -> dict:
    """The learner copy of an authored notebook (a new dict)."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        src = _source(cell)
        exercise = BEGIN in src
        if exercise:
            src = strip_solutions(src, f"{name} cell {i}")
        if exercise or CHECK_CALL in src:
            cell["outputs"] = []
            cell["execution_count"] = None
        cell["source"] = _split_lines(src)
    return nb


def _split_lines(src: str) -> list[str]:
    lines = src.split("\n")
    return [l + "\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def render_notebook(nb: dict) -> str:
    """A notebook as nbformat writes it (indent 1, keys sorted, a final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def authored_notebooks() -> list[Path]:
    return sorted(AUTHORED.glob("[0-9][0-9].[0-9][0-9]-*.ipynb"))


def learner_text(path: Path) -> str:
    return render_notebook(learner_notebook(json.loads(path.read_text(encoding="utf-8")), path.name))


def stale_copies() -> list[str]:
    """Names of learner copies that are missing or differ from a fresh build."""
    stale = []
    for path in authored_notebooks():
        target = LEARNER / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != learner_text(path):
            stale.append(target.name)
    return stale


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        stale = stale_copies()
        for name in stale:
            print(f"stale learner copy: notebooks/{name} (run python scripts/make_learner_copies.py)")
        return 1 if stale else 0
    if argv[1:]:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    for path in authored_notebooks():
        (LEARNER / path.name).write_text(learner_text(path), encoding="utf-8")
        print(f"wrote notebooks/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
