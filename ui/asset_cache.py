"""Let browsers keep versioned static files: a response to ``GET …/component/…?v=<version>``
gets ``Cache-Control: public, max-age=31536000, immutable``.

Streamlit serves a custom component's files with ``Cache-Control: public`` and no validator
(no ETag, no Last-Modified), so a browser fetches them again every time the component's iframe
is created: the viewer's 1.07 MB (gzipped) script on each page visit and each time the viewer
is switched on. The viewer's ``index.html`` names its script and style sheet with a version query
(the first 16 hex digits of their sha256, written by ``ui/viewer/frontend/build.mjs``), so a
rebuilt file has a new address and the old one may be cached for good. Only requests that carry
``v=`` are touched; ``index.html`` itself stays ``no-cache``. Used by ``serve.py`` (what
``make run`` starts); under a plain ``streamlit run app.py`` the files are fetched as before.
"""
from __future__ import annotations

from urllib.parse import parse_qs

__all__ = ["VersionedAssetCache", "IMMUTABLE"]

IMMUTABLE = b"public, max-age=31536000, immutable"


class VersionedAssetCache:
    """ASGI middleware (``starlette.middleware.Middleware(VersionedAssetCache)``)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if not self._versioned(scope):
            return await self.app(scope, receive, send)

        async def send_cached(message):
            if message["type"] == "http.response.start" and message.get("status") == 200:
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", IMMUTABLE)]}
            await send(message)

        return await self.app(scope, receive, send_cached)

    @staticmethod
    def _versioned(scope) -> bool:
        if scope.get("type") != "http" or scope.get("method") != "GET":
            return False
        if "/component/" not in scope.get("path", ""):
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return bool(query.get("v", [""])[0])
