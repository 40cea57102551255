"""The built book, read in a real browser (Debian's headless Chromium, driven by playwright-core).

The book is built afresh (scripts/build_book.py, into a temporary folder), served
on 127.0.0.1 by a local HTTP server, and every page is opened once by
book/browser/check_book.mjs, which reports what it saw. The tests below judge
that report: pages load with no console error, every figure and diagram has a
size, every link inside the book resolves, every solution dropdown opens, and
three screenshots land in artifacts/book/.
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import REPO, in_ci, requirement_outcome, setup_apt_packages
from labkit.tools import Missing

sys.path.insert(0, str(REPO / "scripts"))
import build_book  # noqa: E402
from make_learner_copies import BEGIN, authored_notebooks  # noqa: E402

ARTIFACTS = REPO / "artifacts" / "book"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ("book-landing.png", "book-lesson-solution-open.png", "book-glossary.png")


def book_node() -> str | None:
    """The Node.js the book tools run on (book/.node when the system's is too old)."""
    local = REPO / "book" / ".node" / "node_modules" / ".bin" / "node"
    return str(local) if local.exists() else shutil.which("node")


def require_book_tools(chromium: bool = True) -> str:
    """node's path; skip (fail in CI) when the set-up's book tools or chromium are missing."""
    missing = []
    node = book_node()
    if node is None:
        missing.append(Missing("node is not installed: apt-get install nodejs npm", "nodejs"))
    for tool in ("mystmd", "playwright-core"):
        if not (REPO / "book" / "node_modules" / tool / "package.json").exists():
            missing.append(Missing(f"{tool} is not installed: run scripts/build_book.sh --tools-only "
                                   "(npm ci in book/)", "npm"))
    if chromium and not Path(CHROMIUM).exists():
        missing.append(Missing("chromium is not installed: apt-get install chromium", "chromium"))
    outcome = requirement_outcome(missing, ci=in_ci(), setup_packages=setup_apt_packages())
    if outcome:
        (pytest.fail if outcome[0] == "fail" else pytest.skip)(outcome[1])
    return node


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book, built from the current course/ and book/, in a temporary folder."""
    require_book_tools(chromium=False)
    tmp = tmp_path_factory.mktemp("book")
    return build_book.build(tmp / "stage", tmp / "html")


@pytest.fixture(scope="module")
def served(site):
    """The site's base URL on 127.0.0.1 (a free port), served while the module's tests run."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def site_pages(site: Path) -> list[str]:
    """Every page of the book, as URL paths, in table-of-contents order."""
    config = json.loads((site / "config.json").read_text())
    (project,) = config["projects"]
    return ["/"] + [f"/{p['slug']}/" for p in project["pages"]]


@pytest.fixture(scope="module")
def report(site, served, tmp_path_factory):
    """What Chromium saw on every page (book/browser/check_book.mjs's JSON)."""
    node = require_book_tools()
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    done = subprocess.run(
        [node, str(REPO / "book" / "browser" / "check_book.mjs"), served, str(ARTIFACTS), str(profile),
         *site_pages(site)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"check_book.mjs failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def lesson_files() -> list[str]:
    return [p.name for p in authored_notebooks()]


def exercises_per_lesson() -> dict[str, int]:
    """{lesson file: number of solution cells} in the authored notebooks."""
    out = {}
    for path in authored_notebooks():
        nb = json.loads(path.read_text())
        out[path.name] = sum(1 for c in nb["cells"] if c["cell_type"] == "code" and BEGIN in "".join(c["source"]))
    return out


# --- the tests ----------------------------------------------------------------------


def test_every_page_loads_without_console_errors(report, site):
    pages = report["pages"]
    assert list(pages) == site_pages(site)
    assert len(pages) == len(lesson_files()) + 2  # landing page, the lessons, the glossary
    problems = {p: (v["status"], v["console"], v["pageErrors"], v["failedRequests"]) for p, v in pages.items()}
    assert problems == {p: (200, [], [], []) for p in pages}


def test_every_figure_and_diagram_renders_with_a_size(report):
    images = [(p, img) for p, v in report["pages"].items() for img in v["images"]]
    broken = [(p, img) for p, img in images
              if not (img["complete"] and img["naturalWidth"] > 0 and img["width"] > 0 and img["height"] > 0)]
    assert broken == []
    svgs = [(p, s) for p, v in report["pages"].items() for s in v["svgs"]]
    assert [(p, s) for p, s in svgs if s["width"] <= 0 or s["height"] <= 0] == []
    # the landing page shows the three stored figures from images/
    assert sum(1 for p, img in images if p == "/" and img["src"].startswith("/build/")) == 3
    # every diagram a notebook output holds is on its lesson page, as an image
    svg_outputs = sum(
        1 for path in authored_notebooks() for c in json.loads(path.read_text())["cells"]
        for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {}))
    assert sum(1 for p, img in images if img["src"].startswith("data:image/svg+xml")) == svg_outputs


def test_navigation_links_resolve(report, served):
    links = sorted({re.sub(r"#.*$", "", href) for v in report["pages"].values() for href in v["links"]
                    if href.startswith(served)})
    assert f"{served}/glossary/" in links
    failures = []
    for url in links:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                if resp.status != 200:
                    failures.append((url, resp.status))
        except urllib.error.HTTPError as e:
            failures.append((url, e.code))
    assert failures == []
    # same-page anchors (glossary terms, figures) point at an element that exists
    for page, v in report["pages"].items():
        html = urllib.request.urlopen(served + page, timeout=10).read().decode()
        # links within the book only: an external page's anchor cannot be checked offline
        anchors = {(m.group(1) or page, m.group(2))
                   for m in re.finditer(r'href="((?!https?:)[^"#]*)#([^"]+)"', html)}
        for target_page, anchor in anchors:
            target = urllib.request.urlopen(served + target_page, timeout=10).read().decode()
            assert f'id="{anchor}"' in target, f"{page}: link to {target_page}#{anchor} has no target"


def test_sidebar_lists_every_lesson_in_course_order(report, site):
    nav = report["pages"]["/"]["nav"]
    titles = [title for title, _ in nav]
    lessons = [json.loads(p.read_text())["cells"][0]["source"][0].removeprefix("# ").strip()
               for p in authored_notebooks()]
    assert titles == ["Kubernetes networking, packet by packet", *lessons, "Glossary"]
    assert [href for _, href in nav] == site_pages(site)


def test_solution_dropdowns_are_closed_and_open_on_a_click(report, site):
    expected = exercises_per_lesson()
    slugs = site_pages(site)[1:-1]
    seen = {}
    for slug, lesson in zip(slugs, lesson_files()):
        drops = report["pages"][slug]["dropdowns"]
        seen[lesson] = len(drops)
        for d in drops:
            assert (d["openBefore"], d["openAfter"]) == (False, True)
            assert d["width"] > 0 and d["height"] > 0 and d["text"].strip()
            assert "### BEGIN SOLUTION" not in d["text"]
    assert seen == expected


def test_launch_buttons_open_the_learner_copies(report, site):
    options = yaml.safe_load((REPO / "book" / "myst.yml").read_text())["site"]["options"]
    owner_repo = options["repository"].removeprefix("https://github.com/")
    name = owner_repo.split("/")[1]
    for slug, lesson in zip(site_pages(site)[1:-1], lesson_files()):
        assert (REPO / options["notebooks_dir"] / lesson).is_file()
        binder, hub_query = report["pages"][slug]["launch"]
        assert binder == (f"https://mybinder.org/v2/gh/{owner_repo}/{options['branch']}"
                          f"?urlpath=lab%2Ftree%2Fnotebooks%2F{lesson}")
        assert hub_query == (f"repo=https%3A%2F%2Fgithub.com%2F{owner_repo.replace('/', '%2F')}"
                             f"&branch={options['branch']}&urlpath=lab%2Ftree%2F{name}%2Fnotebooks%2F{lesson}")
    assert report["pages"]["/"]["launch"] == []


def test_three_screenshots_are_saved_as_artifacts(report):
    assert [Path(p).name for p in report["screenshots"]] == list(SCREENSHOTS)
    for name in SCREENSHOTS:
        data = (ARTIFACTS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
