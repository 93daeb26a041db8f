"""The inspector UI: GET / serves index.html, GET /static/{path} the files under web/static/."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from router.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"

# Explicit types: the platform's mimetypes table differs between hosts (".js" has been served as
# text/plain on some Windows setups, which browsers refuse for ES modules).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}

# The files change with every upgrade and are tiny; revalidating each load keeps a browser from
# mixing modules of two versions.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

routes = web.RouteTableDef()


def _file_response(path: Path) -> web.FileResponse:
    resp = web.FileResponse(path, headers=HEADERS)
    resp.content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream").split(";")[0]
    if path.suffix in {".html", ".js", ".mjs", ".css"}:
        resp.charset = "utf-8"
    return resp


def resolve(rel: str, root: Path = STATIC_DIR) -> Path:
    """The file under ``root`` for a URL path; NotFound for anything outside it or missing."""
    base = root.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise NotFound(f"no static file '{rel}'")
    return target


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return _file_response(resolve("index.html"))


@routes.get("/static/{path:.+}")
async def static(request: web.Request) -> web.FileResponse:
    return _file_response(resolve(request.match_info["path"]))
