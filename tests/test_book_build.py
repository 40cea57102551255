"""The book's build: the reading copy of a notebook, and the theme's HTML (pure parts).

scripts/build_book.py turns an authored notebook into the book's copy (stub +
collapsed solution, links between lessons); book/theme/render.py turns myst's
AST into HTML. Both are tested here on small inputs with exact expectations;
tests/test_book_browser.py builds the real book and opens it in Chromium.
"""
from __future__ import annotations

import json
import sys

import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "book" / "theme"))
import build_book  # noqa: E402
import render  # noqa: E402
from make_learner_copies import authored_notebooks  # noqa: E402

LESSONS = {"00.00": "00.00-welcome.ipynb", "01.00": "01.00-pods-come-and-go.ipynb"}


def code(source: str, outputs=()) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": source,
            "outputs": list(outputs)}


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


# --- the reading copy ------------------------------------------------------------------


def test_an_exercise_becomes_its_stub_and_a_collapsed_solution():
    nb = {"cells": [code("### BEGIN SOLUTION\nanswer = len(lab.state.nodes)\n### END SOLUTION\n"
                         "labkit.checks.welcome.node_count(answer, lab)",
                         [stream("Correct: the lab has 3 nodes.\n")])]}
    out = build_book.book_notebook(nb, LESSONS, "00.00-welcome.ipynb")
    assert out["cells"] == [
        {"cell_type": "code", "metadata": {"tags": ["exercise"]}, "execution_count": None, "outputs": [],
         "source": ["answer = ...  # your answer here\n", "labkit.checks.welcome.node_count(answer, lab)"]},
        {"cell_type": "markdown", "metadata": {"tags": ["solution"]}, "source": [
            ":::{dropdown} Solution\n", "```python\n", "answer = len(lab.state.nodes)\n",
            "labkit.checks.welcome.node_count(answer, lab)\n", "```\n", "\n", "It prints:\n", "\n",
            "```text\n", "Correct: the lab has 3 nodes.\n", "```\n", ":::"]},
    ]
    assert nb["cells"][0]["execution_count"] == 3  # the input is not changed


def test_a_solution_that_prints_nothing_has_no_output_block():
    assert build_book.solution_dropdown("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", []) == (
        ":::{dropdown} Solution\n```python\nx = 1\n```\n:::")


def test_fences_outgrow_the_backticks_inside():
    assert build_book.fence("a ``` b", "text") == "````text\na ``` b\n````"
    assert build_book.fence("plain\n", "python") == "```python\nplain\n```"


def test_nbval_markers_are_dropped_from_the_book_only():
    cell = code("# NBVAL_IGNORE_OUTPUT  (differs per machine)\nlab = labkit.lab(seed=0)", [stream("labkit: x\n")])
    out = build_book.book_notebook({"cells": [cell]}, LESSONS)
    assert out["cells"] == [dict(cell, source=["lab = labkit.lab(seed=0)"])]


def test_a_mention_of_another_lesson_becomes_a_link():
    text = "Next: **01.00 Pods come and go**. See **00.00 Welcome** and **07.00 Ingress**."
    assert build_book.link_lessons(text, LESSONS, own="00.00-welcome.ipynb") == (
        "Next: [**01.00 Pods come and go**](01.00-pods-come-and-go.ipynb). "
        "See **00.00 Welcome** and **07.00 Ingress**.")


def test_output_text_keeps_streams_and_plain_results_in_order():
    outputs = [stream("one\n"), {"output_type": "execute_result", "data": {"text/plain": ["'two'"]}},
               {"output_type": "error", "ename": "ValueError", "evalue": "three"}]
    assert build_book.output_text(outputs) == "one\n'two'\nValueError: three\n"


def test_every_course_notebook_keeps_its_exercises_in_the_book():
    paths = authored_notebooks()
    lessons = build_book.lesson_index(paths)
    assert list(lessons.values()) == [p.name for p in paths]
    for path in paths:
        nb = json.loads(path.read_text())
        out = build_book.book_notebook(nb, lessons, path.name)
        text = json.dumps(out)
        n = sum(1 for c in nb["cells"] if c["cell_type"] == "code" and "### BEGIN SOLUTION" in "".join(c["source"]))
        assert sum(1 for c in out["cells"] if c["metadata"].get("tags") == ["solution"]) == n, path.name
        assert len(out["cells"]) == len(nb["cells"]) + n
        assert "### BEGIN SOLUTION" not in text and "NBVAL_" not in text


def test_stage_writes_the_myst_project(tmp_path):
    names = build_book.stage(tmp_path / "b")
    assert names == [p.name for p in authored_notebooks()]
    assert sorted(p.name for p in (tmp_path / "b" / "lessons").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "b" / "images").iterdir()) == sorted(
        p.name for p in (REPO / "images").glob("*.svg"))
    config = yaml.safe_load((tmp_path / "b" / "myst.yml").read_text())
    assert config["project"]["toc"] == [
        {"file": "index.md"}, {"pattern": "lessons/[0-9][0-9].[0-9][0-9]-*.ipynb"}, {"file": "glossary.md"}]
    assert config["site"]["template"] == "./theme"
    assert (tmp_path / "b" / "theme" / "template.yml").is_file()


def test_myst_log_lines_that_fail_the_build():
    log = "📖 Built index.md\n⚠️  index.md Unknown directive\n⛔️ glossary.md:3 bad\nError fetching http://x/\nok"
    assert build_book.check_log(log) == ["⚠️  index.md Unknown directive", "⛔️ glossary.md:3 bad",
                                         "Error fetching http://x/"]


# --- the theme ------------------------------------------------------------------------------

CONFIG = {"options": {"repository": "https://github.com/o/course", "branch": "main", "notebooks_dir": "notebooks",
                      "binder_url": "https://mybinder.org"},
          "projects": [{"title": "Book", "index": "index",
                        "pages": [{"slug": "welcome", "title": "00.00 Welcome"},
                                  {"slug": "glossary", "title": "Glossary"}]}]}


def text(value):
    return {"type": "text", "value": value}


def test_parse_site_puts_the_landing_page_first():
    site = render.parse_site(CONFIG, "/course/")
    assert site.pages == (("index", "Book"), ("welcome", "00.00 Welcome"), ("glossary", "Glossary"))
    assert site.base == "/course"
    assert render.page_url(site, "index") == "/course/"
    assert render.internal_url(site, "/glossary#term-dnat") == "/course/glossary/#term-dnat"


def test_nodes_render_to_html():
    site = render.parse_site(CONFIG)
    tree = {"type": "root", "children": [
        {"type": "heading", "depth": 2, "identifier": "set-up", "children": [text("Set <up>")]},
        {"type": "paragraph", "children": [
            text("A "), {"type": "crossReference", "kind": "definitionTerm", "html_id": "term-dnat",
                         "url": "/glossary", "children": [text("DNAT")]},
            text(" and "), {"type": "link", "url": "/welcome", "internal": True, "children": [text("lesson")]},
            text(" and "), {"type": "inlineCode", "value": "a<b"}]},
        {"type": "details", "children": [{"type": "summary", "children": [text("Solution")]},
                                         {"type": "code", "lang": "python", "value": "x = 1"}]},
        {"type": "image", "url": "/fig-1.svg", "alt": "a figure"},
    ]}
    assert render.Renderer(site, "welcome").render(tree) == (
        '<h2 id="set-up">Set &lt;up&gt;</h2>\n'
        '<p>A <a class="xref xref-definitionTerm" href="/glossary/#term-dnat">DNAT</a> and '
        '<a href="/welcome/">lesson</a> and <code>a&lt;b</code></p>\n'
        '<details class="dropdown"><summary>Solution</summary>\n'
        '<pre class="code"><code class="language-python">x = 1</code></pre>\n</details>\n'
        '<img src="/myst_assets_folder/fig-1.svg" alt="a figure">')


def test_an_unknown_node_fails_loudly():
    with pytest.raises(render.RenderError, match=r"^page 'welcome': no renderer for MyST node type 'mermaid' "
                                                  r"\(add Renderer.n_mermaid in book/theme/render.py\)$"):
        render.Renderer(render.parse_site(CONFIG), "welcome").render({"type": "mermaid"})


def test_outputs_render_by_their_richest_type():
    assert render.render_output(stream("a < b\x1b[31m!\x1b[0m\n")) == '<pre class="output stream-stdout">a &lt; b!\n</pre>\n'
    svg = render.render_output({"output_type": "execute_result",
                                "data": {"image/svg+xml": "<svg/>", "text/plain": "<diagram>"}})
    assert svg == ('<figure class="output diagram"><img src="data:image/svg+xml;base64,PHN2Zy8+" '
                   'alt="&lt;diagram&gt;"></figure>\n')
    widget = render.render_output({"output_type": "execute_result", "data": {
        render.WIDGET_MIME: {"model_id": "x"}, "text/plain": "VBox()"}})
    assert widget == ('<div class="output widget"><p class="widget-note">An interactive widget: launch the lesson '
                      '(above) to use it.</p><pre>VBox()</pre></div>\n')
    with pytest.raises(render.RenderError, match="an output with only"):
        render.render_output({"output_type": "display_data", "data": {"application/pdf": "x"}}, "p")


def test_launch_links_open_the_learner_copy():
    opts = CONFIG["options"]
    assert render.binder_url(opts, "02.00-services.ipynb") == (
        "https://mybinder.org/v2/gh/o/course/main?urlpath=lab%2Ftree%2Fnotebooks%2F02.00-services.ipynb")
    assert render.jupyterhub_query(opts, "02.00-services.ipynb") == (
        "repo=https%3A%2F%2Fgithub.com%2Fo%2Fcourse&branch=main"
        "&urlpath=lab%2Ftree%2Fcourse%2Fnotebooks%2F02.00-services.ipynb")


def test_a_page_has_navigation_launch_bar_and_pager():
    site = render.parse_site(CONFIG)
    page = {"slug": "welcome", "kind": "Notebook",
            "frontmatter": {"title": "00.00 Welcome", "exports": [{"format": "ipynb", "filename": "00.00-welcome.ipynb"}]},
            "mdast": {"type": "root", "children": []}}
    html = render.render_page(site, page)
    assert '<li><a href="/welcome/" aria-current="page" class="current">00.00 Welcome</a></li>' in html
    assert '<a class="launch-binder" href="https://mybinder.org/v2/gh/o/course/main?urlpath=lab%2Ftree%2F' in html
    assert ('<nav class="pager"><a class="prev" rel="prev" href="/">← Book</a>'
            '<a class="next" rel="next" href="/glossary/">Glossary →</a></nav>') in html
    assert "<title>00.00 Welcome · Book</title>" in html
