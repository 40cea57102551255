#!/usr/bin/env python3
"""Build the course book (static HTML) from the authored notebooks' stored outputs.

    python scripts/build_book.py      (use scripts/build_book.sh: it installs the tools first)

Steps, each re-done from scratch:
  1. stage _build/book/: book/ (myst.yml, pages, theme/), images/, and every
     course/CC.SS-*.ipynb as lessons/, transformed for reading (book_notebook):
     each exercise shows the learner's stub, its solution and stored output go
     into a collapsed "Solution" dropdown, "**CC.SS Title**" mentions of other
     lessons become links, nbval's marker comments are dropped;
  2. `myst build --html --strict` there (nothing is executed: the stored
     outputs are the book's), failing on any warning or error in its log;
  3. check that every page of the table of contents was written, and move the
     site to _build/html.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from make_learner_copies import BEGIN, END, authored_notebooks, strip_solutions  # noqa: E402

BOOK = REPO / "book"
BUILD = REPO / "_build"
STAGE = BUILD / "book"
SITE = BUILD / "html"
BOOK_FILES = ("myst.yml", "index.md", "glossary.md")
LESSONS = "lessons"
NBVAL_MARKER = re.compile(r"^\s*#\s*NBVAL_[A-Z_]+.*$")
LESSON_MENTION = re.compile(r"\*\*(\d\d\.\d\d) ([^*\n]+)\*\*")
# What in myst's log means the book is not as written (myst prints these before a message).
LOG_PROBLEMS = ("⛔", "⚠️", "Error fetching", "error rendering", "Traceback")


class BookError(Exception):
    """The book could not be built; the message says what to fix."""


# --- the transform (pure) --------------------------------------------------------


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def fence(text: str, lang: str) -> str:
    """A fenced block that no backtick run inside `text` can close early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def drop_nbval_markers(source: str) -> str:
    """The code without nbval's `# NBVAL_...` comment lines (test markers, not course text)."""
    return "\n".join(line for line in source.split("\n") if not NBVAL_MARKER.match(line))


def solution_source(source: str) -> str:
    """The cell's code with the solution in place and the BEGIN/END marker lines removed."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def output_text(outputs: list[dict]) -> str:
    """What a cell printed, as text: streams and plain-text results, in order."""
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(_source({"source": out.get("text", "")}))
        elif out.get("output_type") in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain")
            if plain:
                parts.append(_source({"source": plain}) + "\n")
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def solution_dropdown(source: str, outputs: list[dict]) -> str:
    """The markdown of a collapsed dropdown holding a solution and what it printed."""
    body = [":::{dropdown} Solution", fence(solution_source(drop_nbval_markers(source)), "python")]
    printed = output_text(outputs)
    if printed.strip():
        body += ["", "It prints:", "", fence(printed, "text")]
    body.append(":::")
    return "\n".join(body)


def link_lessons(markdown: str, lessons: dict[str, str], own: str = "") -> str:
    """"**CC.SS Title**" naming another lesson becomes a link to it (a cross-reference)."""
    def repl(m):
        number = m.group(1)
        target = lessons.get(number)
        if not target or target == own:
            return m.group(0)
        return f"[{m.group(0)}]({target})"
    return LESSON_MENTION.sub(repl, markdown)


def book_notebook(nb: dict, lessons: dict[str, str], name: str = "") -> dict:
    """The reading copy of an authored notebook (a new dict).

    `lessons` maps "CC.SS" to the lesson's file name, for links between lessons.
    """
    nb = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        src = _source(cell)
        if cell.get("cell_type") == "markdown":
            cell["source"] = _lines(link_lessons(src, lessons, own=name))
            cells.append(cell)
            continue
        if cell.get("cell_type") != "code":
            cells.append(cell)
            continue
        if BEGIN in src:
            stub = copy.deepcopy(cell)
            stub["source"] = _lines(drop_nbval_markers(strip_solutions(src, f"{name} cell {i}")))
            stub["outputs"] = []
            stub["execution_count"] = None
            stub.setdefault("metadata", {})["tags"] = ["exercise"]
            cells.append(stub)
            cells.append({"cell_type": "markdown", "metadata": {"tags": ["solution"]},
                          "source": _lines(solution_dropdown(src, cell.get("outputs", [])))})
            continue
        cell["source"] = _lines(drop_nbval_markers(src))
        cells.append(cell)
    nb["cells"] = cells
    return nb


def lesson_index(paths: list[Path]) -> dict[str, str]:
    """{"CC.SS": file name} of the course's notebooks."""
    return {p.name[:5]: p.name for p in paths}


# --- staging and building (effects) ----------------------------------------------


def stage(dest: Path = STAGE) -> list[str]:
    """Write the myst project to `dest`; returns the lesson file names in course order."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy2(BOOK / name, dest / name)
    shutil.copytree(BOOK / "theme", dest / "theme", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "images", dest / "images", ignore=shutil.ignore_patterns("*.dot"))
    paths = authored_notebooks()
    if not paths:
        raise BookError("no notebooks in course/: nothing to build")
    lessons = lesson_index(paths)
    (dest / LESSONS).mkdir()
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        out = book_notebook(nb, lessons, path.name)
        (dest / LESSONS / path.name).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    return [p.name for p in paths]


def myst_command() -> list[str]:
    myst = BOOK / "node_modules" / ".bin" / "myst"
    if not myst.exists():
        raise BookError("mystmd is not installed: run scripts/build_book.sh (it runs npm ci in book/)")
    return [str(myst)]


def check_log(log: str) -> list[str]:
    """The lines of myst's output that report a warning or an error."""
    return [line for line in log.splitlines() if any(mark in line for mark in LOG_PROBLEMS)]


def run_myst(dest: Path = STAGE) -> str:
    env = dict(os.environ, CI="true")
    done = subprocess.run([*myst_command(), "build", "--html", "--strict", "--ci"], cwd=dest, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    problems = check_log(log)
    if done.returncode != 0 or problems:
        print(log, file=sys.stderr)
        raise BookError(f"myst build failed (exit {done.returncode}; warnings count as errors), "
                        "its log is above; the lines that failed it:\n" + "\n".join(problems))
    return log


def expected_pages(dest: Path = STAGE) -> list[str]:
    """Paths (relative to the site) of every page of the table of contents."""
    config = json.loads((dest / "_build" / "site" / "config.json").read_text(encoding="utf-8"))
    (project,) = config["projects"]
    return ["index.html"] + [f"{p['slug']}/index.html" for p in project["pages"]]


def build(stage_dir: Path = STAGE, site: Path = SITE) -> Path:
    """Stage, build and check the book; the site ends up in `site` (default _build/html)."""
    lessons = stage(stage_dir)
    print(f"build_book: staged {len(lessons)} lessons in {stage_dir}", flush=True)
    log = run_myst(stage_dir)
    print("\n".join(line for line in log.splitlines() if line.strip())[-4000:], flush=True)
    html = stage_dir / "_build" / "html"
    pages = expected_pages(stage_dir)
    missing = [p for p in pages if not (html / p).is_file()]
    if missing:
        raise BookError(f"pages missing from the site: {', '.join(missing)}")
    if site.exists():
        shutil.rmtree(site)
    site.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(html), str(site))
    print(f"build_book: the book is in {site}/ ({len(pages)} pages); "
          f"to read it: python3 -m http.server --bind 127.0.0.1 -d {site}", flush=True)
    return site


def main() -> int:
    try:
        build()
    except BookError as e:
        print(f"build_book: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
