"""The course in a real JupyterLab, run by a real browser.

JupyterLab is started on 127.0.0.1 (a free port, a random token,
LABKIT_BACKEND=sim so the run is deterministic) over a temporary folder holding
authored notebooks with their outputs removed. Headless Chromium opens each one,
runs all its cells with JupyterLab's own "Run All Cells" command
(book/browser/run_notebook.mjs), and reports what the cells show. The first
notebook's diagrams must render and its check cells print their verdicts; the
kube-proxy notebook's ipywidgets must render as widgets.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO
from test_book_browser import require_book_tools

ARTIFACTS = REPO / "artifacts" / "jupyterlab"
FIRST = "00.00-welcome.ipynb"
WIDGETS = "03.00-kube-proxy-and-dnat.ipynb"


def without_outputs(nb: dict) -> dict:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"jupyter lab did not answer {url} in time")


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """(base URL, token) of a JupyterLab serving the notebooks without their outputs."""
    require_book_tools()
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed: ./setup.sh installs it (course extra)")
    root = tmp_path_factory.mktemp("lab-root")
    for name in (FIRST, WIDGETS):
        nb = json.loads((REPO / "course" / name).read_text())
        (root / name).write_text(json.dumps(without_outputs(nb), indent=1))
    port, token = free_port(), secrets.token_hex(16)
    config = tmp_path_factory.mktemp("jupyter-config")
    # Render every cell (JupyterLab 4 otherwise renders only the cells in view).
    settings = config / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, LABKIT_BACKEND="sim", JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(config / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings))
    log = open(config / "jupyterlab.log", "w")
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.allow_remote_access=False"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/status?token={token}", proc, time.monotonic() + 120)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_in_browser(jupyterlab, notebook: str, tmp_path) -> dict:
    node = require_book_tools()
    base, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / notebook.replace(".ipynb", ".png")
    done = subprocess.run(
        [node, str(REPO / "book" / "browser" / "run_notebook.mjs"), base, token, notebook,
         str(tmp_path / "profile"), str(shot)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        env=dict(os.environ, RUN_ALL_TIMEOUT_MS="180000"))
    assert done.returncode == 0, f"run_notebook.mjs failed:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.get("timedOut") is None, (report["timedOut"], report["cells"])
    assert shot.read_bytes()[:4] == b"\x89PNG"
    return report


def check_cells(cells: list[dict]) -> list[dict]:
    return [c for c in cells if "labkit.checks." in c["source"]]


def test_first_notebook_runs_in_jupyterlab_with_diagrams_and_verdicts(jupyterlab, tmp_path):
    report = run_in_browser(jupyterlab, FIRST, tmp_path)
    cells = report["cells"]
    assert report["pageErrors"] == []
    assert [c for c in cells if "error" in c["outputTypes"]] == []
    assert all(c["executionCount"] for c in cells)
    # the first cell says which backend runs, and why
    assert cells[0]["text"].strip() == "labkit: running on the simulation backend (LABKIT_BACKEND=sim)"
    # the diagrams render, with a size
    diagrams = [c for c in cells if c["source"].startswith("labkit.viz.")]
    assert len(diagrams) == 2
    for c in diagrams:
        assert c["images"] and all(w > 100 and h > 50 for w, h in c["images"]), c
    # every check cell prints its verdict: the authored solutions are right
    checks = check_cells(cells)
    assert len(checks) == 3
    assert [c["text"].split(":", 1)[0] for c in checks] == ["Correct"] * 3


def test_widgets_render_in_jupyterlab(jupyterlab, tmp_path):
    report = run_in_browser(jupyterlab, WIDGETS, tmp_path)
    cells = report["cells"]
    assert [c for c in cells if "error" in c["outputTypes"]] == []
    widget_cells = [c for c in cells if "# (a live widget)" in c["source"]]
    assert len(widget_cells) == 2
    for c, control in zip(widget_cells, ("widget-slider", "widget-dropdown")):
        assert c["widgets"], f"no widget rendered for:\n{c['source']}\n{c['text']}"
        outer = c["widgets"][0]
        assert "widget-vbox" in outer["classes"] and outer["size"][0] > 0 and outer["size"][1] > 0
        controls = [w["size"] for w in c["widgets"] if control in w["classes"].split()]
        assert controls and all(w > 0 and h > 0 for w, h in controls), (control, c["widgets"])
    checks = check_cells(cells)
    assert checks and [c["text"].split(":", 1)[0] for c in checks] == ["Correct"] * len(checks)
