"""The book's site server: what `myst build --html` starts and crawls.

myst starts this in the template folder with HOST, PORT, CONTENT_CDN_PORT
(where myst serves config.json and content/<slug>.json) and BASE_URL; it waits
for a line with "http://" on stdout, fetches every page and asset route, and
writes what it gets to _build/html. The rendering itself is render.py (pure).
Any failure to render answers 500, which myst reports, and the build fails.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # noqa: E402

HERE = Path(__file__).resolve().parent
CONTENT = f"http://localhost:{os.environ.get('CONTENT_CDN_PORT', '3100')}"
BASE = (os.environ.get("BASE_URL") or "").rstrip("/")
if BASE.startswith("http"):
    BASE = "/" + BASE.split("://", 1)[1].partition("/")[2].rstrip("/")
    BASE = "" if BASE == "/" else BASE


def fetch_json(path: str) -> dict:
    with urllib.request.urlopen(CONTENT + path, timeout=30) as resp:
        return json.loads(resp.read().decode("utf-8"))


def static(name: str) -> bytes:
    return (HERE / "public" / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # myst shows our stdout: keep it to errors
        pass

    def send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if BASE and path.startswith(BASE):
            path = path[len(BASE):] or "/"
        try:
            status, body, ctype = self.route(path)
        except Exception:  # a render error must reach the build log, and fail it
            message = traceback.format_exc()
            print(f"labkit book theme: error rendering {path}:\n{message}", file=sys.stderr, flush=True)
            status, body, ctype = 500, message.encode(), "text/plain; charset=utf-8"
        self.send(status, body, ctype)

    def route(self, path: str):
        config = fetch_json("/config.json")
        site = render.parse_site(config, BASE)
        slugs = {s for s, _ in site.pages}
        if path == "/myst-theme.css":
            return 200, static("myst-theme.css"), "text/css; charset=utf-8"
        if path == "/favicon.ico":
            return 200, static("favicon.ico"), "image/x-icon"
        if path == "/robots.txt":
            return 200, b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8"
        if path == "/sitemap.xml":
            host = f"http://localhost:{os.environ.get('PORT', '3000')}"
            return 200, render.render_sitemap(site, host).encode(), "application/xml"
        if path == "/sitemap_style.xsl":
            return 200, static("sitemap_style.xsl"), "application/xml"
        if path.endswith(".json") and path[1:-5] in slugs:
            page = fetch_json(f"/content/{path[1:-5]}.json")
            return 200, render.dumps(page).encode(), "application/json"
        slug = path.strip("/") or site.index
        if slug not in slugs:
            return 404, f"no page {slug!r} in this book".encode(), "text/plain; charset=utf-8"
        page = fetch_json(f"/content/{slug}.json")
        return 200, render.render_page(site, page).encode(), "text/html; charset=utf-8"


def main() -> None:
    host = os.environ.get("HOST", "localhost")
    port = int(os.environ.get("PORT", "3000"))
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"labkit book theme started at http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
