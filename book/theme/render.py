"""MyST AST (the JSON `myst` serves) -> HTML pages of the course book.

Pure: a page's JSON and the site's config.json in, HTML text out. The server
(server.py) fetches the JSON and serves the text. A node type this module does
not know raises RenderError naming the type and the page, so a new kind of
content fails the build instead of vanishing from the book.
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

ASSETS = "/myst_assets_folder/"  # `myst build --html` rewrites this to BASE_URL/build/
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class RenderError(Exception):
    """Content the book cannot show."""


@dataclass(frozen=True)
class Site:
    """What every page needs to know about the book."""

    title: str
    index: str                          # slug of the landing page
    pages: tuple[tuple[str, str], ...]  # (slug, title) in table-of-contents order, landing page first
    options: dict = field(default_factory=dict)
    base: str = ""                      # BASE_URL: "" or "/some/prefix"


def parse_site(config: dict, base: str = "") -> Site:
    """The book's structure from myst's config.json (one project)."""
    projects = config.get("projects") or []
    if len(projects) != 1:
        raise RenderError(f"config.json: expected one project, found {len(projects)}")
    proj = projects[0]
    index = proj["index"]
    pages = [(index, proj.get("title", index))]
    pages += [(p["slug"], p.get("title") or p["slug"]) for p in proj.get("pages", []) if p.get("slug")]
    return Site(proj.get("title", ""), index, tuple(pages), dict(config.get("options") or {}),
                base.rstrip("/"))


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def page_url(site: Site, slug: str) -> str:
    """The URL of a page: the landing page is the site's root."""
    return f"{site.base}/" if slug == site.index else f"{site.base}/{slug}/"


def internal_url(site: Site, url: str) -> str:
    """A link myst resolved inside the book ("/glossary#term-dnat") as a page URL."""
    path, _, frag = url.partition("#")
    slug = path.strip("/")
    out = page_url(site, slug) if slug else f"{site.base}/"
    return out + (f"#{frag}" if frag else "")


# --- launch buttons -------------------------------------------------------------


def binder_url(options: dict, notebook: str) -> str:
    """mybinder.org's URL that opens `notebook` (a learner copy) in JupyterLab."""
    repo = options.get("repository", "").rstrip("/")
    owner_repo = repo.removeprefix("https://github.com/")
    binder = options.get("binder_url", "https://mybinder.org").rstrip("/")
    path = f"{options.get('notebooks_dir', 'notebooks')}/{notebook}"
    return f"{binder}/v2/gh/{owner_repo}/{options.get('branch', 'main')}?urlpath={quote('lab/tree/' + path, safe='')}"


def jupyterhub_query(options: dict, notebook: str) -> str:
    """nbgitpuller's query: clone the repository into the hub, then open `notebook`."""
    repo = options.get("repository", "").rstrip("/")
    name = repo.rsplit("/", 1)[-1]
    path = f"{name}/{options.get('notebooks_dir', 'notebooks')}/{notebook}"
    return (f"repo={quote(repo, safe='')}&branch={quote(options.get('branch', 'main'))}"
            f"&urlpath={quote('lab/tree/' + path, safe='')}")


def render_launch(site: Site, notebook: str) -> str:
    """The launch bar of a lesson: Binder, a JupyterHub of the reader's choice, the .ipynb."""
    opts = site.options
    hub = opts.get("jupyterhub_url", "")
    return (
        '<div class="launch" aria-label="Run this lesson">'
        f'<span class="launch-label">Run this lesson:</span> '
        f'<a class="launch-binder" href="{esc(binder_url(opts, notebook))}">Binder</a> '
        f'<form class="launch-hub" data-query="{esc(jupyterhub_query(opts, notebook))}">'
        '<label>JupyterHub <input name="hub" type="url" placeholder="https://your-hub.example" '
        f'value="{esc(hub)}" size="26"></label> <button type="submit">Open</button></form>'
        "</div>"
    )


# --- nodes ------------------------------------------------------------------------


class Renderer:
    """Walks one page's AST; `render(node)` returns HTML."""

    def __init__(self, site: Site, slug: str):
        self.site = site
        self.slug = slug

    def children(self, node) -> str:
        return "".join(self.render(c) for c in node.get("children", []))

    def render(self, node) -> str:
        kind = node.get("type")
        fn = getattr(self, "n_" + str(kind), None)
        if fn is None:
            raise RenderError(f"page {self.slug!r}: no renderer for MyST node type {kind!r} "
                              f"(add Renderer.n_{kind} in book/theme/render.py)")
        return fn(node)

    def _id(self, node) -> str:
        ident = node.get("html_id") or node.get("identifier")
        return f' id="{esc(ident)}"' if ident else ""

    def _cls(self, node, *extra) -> str:
        classes = [c for c in (*extra, node.get("class") or "") if c]
        return f' class="{esc(" ".join(classes))}"' if classes else ""

    # structure
    def n_root(self, node):
        return self.children(node)

    def n_block(self, node):
        if node.get("kind") == "notebook-code":
            return f'<div class="cell cell-code"{self._id(node)}>{self.children(node)}</div>\n'
        return f'<div class="cell"{self._id(node)}>{self.children(node)}</div>\n'

    def n_paragraph(self, node):
        return f"<p>{self.children(node)}</p>\n"

    def n_heading(self, node):
        d = int(node.get("depth", 2))
        d = min(max(d, 1), 6)
        return f"<h{d}{self._id(node)}>{self.children(node)}</h{d}>\n"

    def n_thematicBreak(self, node):
        return "<hr>\n"

    def n_blockquote(self, node):
        return f"<blockquote>{self.children(node)}</blockquote>\n"

    def n_list(self, node):
        if node.get("ordered"):
            start = node.get("start")
            attr = f' start="{int(start)}"' if start not in (None, 1) else ""
            return f"<ol{attr}>{self.children(node)}</ol>\n"
        return f"<ul>{self.children(node)}</ul>\n"

    def n_listItem(self, node):
        return f"<li>{self.children(node)}</li>\n"

    def n_table(self, node):
        rows = node.get("children", [])
        head = [r for r in rows if all(c.get("header") for c in r.get("children", []))]
        body = [r for r in rows if r not in head]
        out = "<table>"
        if head:
            out += "<thead>" + "".join(self.render(r) for r in head) + "</thead>"
        out += "<tbody>" + "".join(self.render(r) for r in body) + "</tbody></table>\n"
        return out

    def n_tableRow(self, node):
        return f"<tr>{self.children(node)}</tr>"

    def n_tableCell(self, node):
        tag = "th" if node.get("header") else "td"
        align = node.get("align")
        style = f' style="text-align:{esc(align)}"' if align else ""
        return f"<{tag}{style}>{self.children(node)}</{tag}>"

    # inline
    def n_text(self, node):
        return esc(node.get("value", ""))

    def n_strong(self, node):
        return f"<strong>{self.children(node)}</strong>"

    def n_emphasis(self, node):
        return f"<em>{self.children(node)}</em>"

    def n_inlineCode(self, node):
        return f"<code>{esc(node.get('value', ''))}</code>"

    def n_break(self, node):
        return "<br>"

    def n_link(self, node):
        url = node.get("url", "")
        if node.get("internal"):
            url = internal_url(self.site, url)
        return f'<a href="{esc(url)}">{self.children(node)}</a>'

    def n_crossReference(self, node):
        ident = node.get("html_id") or node.get("identifier", "")
        url = node.get("url")
        href = internal_url(self.site, f"{url}#{ident}") if url else f"#{ident}"
        if not node.get("resolved", True):
            raise RenderError(f"page {self.slug!r}: unresolved cross-reference {node.get('label')!r}")
        return f'<a class="xref xref-{esc(node.get("kind", ""))}" href="{esc(href)}">{self.children(node)}</a>'

    def n_code(self, node):
        lang = node.get("lang") or "text"
        return (f'<pre class="code"{self._id(node)}><code class="language-{esc(lang)}">'
                f"{esc(node.get('value', ''))}</code></pre>\n")

    # figures, images, admonitions, dropdowns
    def n_image(self, node):
        url = node["url"]
        if url.startswith("/") and not url.startswith("//"):
            url = ASSETS + url.lstrip("/")
        width = node.get("width")
        style = f' style="width:{esc(width)}"' if width else ""
        return f'<img src="{esc(url)}" alt="{esc(node.get("alt", ""))}"{style}{self._id(node)}>'

    def n_container(self, node):
        return f'<figure{self._id(node)}{self._cls(node, "figure")}>{self.children(node)}</figure>\n'

    def n_caption(self, node):
        return f"<figcaption>{self.children(node)}</figcaption>\n"

    def n_captionNumber(self, node):
        number = self.children(node) or esc(f"Figure {node.get('enumerator', '')}:")
        return f'<span class="caption-number">{number}</span> '

    def n_legend(self, node):
        return f'<div class="legend">{self.children(node)}</div>'

    def n_admonition(self, node):
        return f'<aside{self._id(node)}{self._cls(node, "admonition", node.get("kind", "note"))}>{self.children(node)}</aside>\n'

    def n_admonitionTitle(self, node):
        return f'<p class="admonition-title">{self.children(node)}</p>'

    def n_details(self, node):
        is_open = " open" if node.get("open") else ""
        return f'<details{self._id(node)}{self._cls(node, "dropdown")}{is_open}>{self.children(node)}</details>\n'

    def n_summary(self, node):
        return f"<summary>{self.children(node)}</summary>\n"

    # glossary
    def n_glossary(self, node):
        return f'<div class="glossary">{self.children(node)}</div>\n'

    def n_definitionList(self, node):
        return f"<dl>{self.children(node)}</dl>\n"

    def n_definitionTerm(self, node):
        return f"<dt{self._id(node)}>{self.children(node)}</dt>\n"

    def n_definitionDescription(self, node):
        return f"<dd>{self.children(node)}</dd>\n"

    # table of contents directive: myst leaves a `toc` node for the theme to fill
    def n_toc(self, node):
        heading = "".join(self.render(c) for c in node.get("children", []) if c.get("type") == "heading")
        items = "".join(f'<li><a href="{esc(page_url(self.site, slug))}">{esc(title)}</a></li>'
                        for slug, title in self.site.pages if slug != self.site.index)
        return f'<nav class="toc-directive">{heading}<ol class="lessons">{items}</ol></nav>\n'

    # notebook outputs
    def n_outputs(self, node):
        inner = self.children(node)
        return f'<div class="outputs">{inner}</div>\n' if inner else ""

    def n_output(self, node):
        return render_output(node.get("jupyter_data") or {}, self.slug)


def render_output(out: dict, slug: str = "") -> str:
    """One stored Jupyter output as HTML (richest type the static page can show)."""
    kind = out.get("output_type")
    if kind == "stream":
        text = _ANSI.sub("", _text(out.get("text", "")))
        return f'<pre class="output stream-{esc(out.get("name", "stdout"))}">{esc(text)}</pre>\n'
    if kind == "error":
        tb = _ANSI.sub("", "\n".join(out.get("traceback") or [f"{out.get('ename')}: {out.get('evalue')}"]))
        return f'<pre class="output error">{esc(tb)}</pre>\n'
    if kind in ("execute_result", "display_data"):
        data = out.get("data") or {}
        plain = _content(data.get("text/plain"))
        if WIDGET_MIME in data:
            return ('<div class="output widget"><p class="widget-note">An interactive widget: '
                    "launch the lesson (above) to use it.</p>"
                    f"<pre>{esc(plain)}</pre></div>\n")
        if "image/svg+xml" in data:
            svg = _content(data["image/svg+xml"])
            uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
            return f'<figure class="output diagram"><img src="{esc(uri)}" alt="{esc(plain)}"></figure>\n'
        for mime in ("image/png", "image/jpeg"):
            if mime in data:
                item = data[mime]
                src = item.get("path") or item.get("content", "") if isinstance(item, dict) else item
                if src.startswith("/"):
                    src = ASSETS + src.lstrip("/")
                elif not src.startswith("data:"):
                    src = f"data:{mime};base64,{src}"
                return f'<figure class="output image"><img src="{esc(src)}" alt="{esc(plain)}"></figure>\n'
        if "text/html" in data:
            return f'<div class="output html">{_content(data["text/html"])}</div>\n'
        if "text/plain" in data:
            return f'<pre class="output result">{esc(_ANSI.sub("", plain))}</pre>\n'
        if not data:
            return ""
        raise RenderError(f"page {slug!r}: an output with only {sorted(data)}: no way to show it")
    raise RenderError(f"page {slug!r}: unknown output type {kind!r}")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _content(item) -> str:
    if item is None:
        return ""
    if isinstance(item, dict):
        return _text(item.get("content", ""))
    return _text(item)


# --- pages ------------------------------------------------------------------------


def notebook_file(page: dict) -> str:
    """The .ipynb a lesson page came from ("" for a Markdown page)."""
    if page.get("kind") != "Notebook":
        return ""
    for export in page.get("frontmatter", {}).get("exports", []):
        if export.get("format") == "ipynb" and export.get("filename"):
            return export["filename"]
    return page.get("location", "").rsplit("/", 1)[-1]


def render_nav(site: Site, slug: str) -> str:
    items = []
    for s, title in site.pages:
        current = ' aria-current="page" class="current"' if s == slug else ""
        items.append(f'<li><a href="{esc(page_url(site, s))}"{current}>{esc(title)}</a></li>')
    return '<nav class="sidebar" aria-label="Table of contents"><ol>' + "".join(items) + "</ol></nav>"


def render_pager(site: Site, slug: str) -> str:
    slugs = [s for s, _ in site.pages]
    if slug not in slugs:
        return ""
    i = slugs.index(slug)
    parts = []
    if i > 0:
        s, t = site.pages[i - 1]
        parts.append(f'<a class="prev" rel="prev" href="{esc(page_url(site, s))}">← {esc(t)}</a>')
    if i + 1 < len(slugs):
        s, t = site.pages[i + 1]
        parts.append(f'<a class="next" rel="next" href="{esc(page_url(site, s))}">{esc(t)} →</a>')
    return '<nav class="pager">' + "".join(parts) + "</nav>"


def render_page(site: Site, page: dict) -> str:
    """A whole HTML document for one page of the book."""
    slug = page.get("slug") or site.index
    front = page.get("frontmatter", {})
    title = front.get("title") or dict(site.pages).get(slug, slug)
    body = Renderer(site, slug).render(page["mdast"])
    notebook = notebook_file(page)
    launch = render_launch(site, notebook) if notebook else ""
    heading = "" if front.get("content_includes_title") else f"<h1>{esc(title)}</h1>\n"
    head_title = title if slug == site.index else f"{title} · {site.title}"
    base = site.base
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(head_title)}</title>"
        f'<link rel="icon" href="{base}/favicon.ico">'
        f'<link rel="stylesheet" href="{base}/myst-theme.css">'
        f'<script defer src="{base}/book.js"></script>'
        "</head><body>\n"
        f'<header class="topbar"><a class="book-title" href="{esc(page_url(site, site.index))}">{esc(site.title)}</a></header>\n'
        f'<div class="layout">{render_nav(site, slug)}\n'
        f'<main class="article" data-slug="{esc(slug)}">\n{heading}{launch}\n{body}'
        f"{render_pager(site, slug)}</main></div>\n"
        "</body></html>\n"
    )


def render_sitemap(site: Site, host: str) -> str:
    urls = "".join(f"<url><loc>{esc(host + page_url(site, s))}</loc></url>" for s, _ in site.pages)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n')


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
