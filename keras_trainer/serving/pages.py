"""The `/docs` page (`serve --docs`): the OpenAPI description as one plain HTML page.

FastAPI's own pages load Swagger UI's scripts and styles from a CDN; a served
model's page must not make the reader's browser fetch code from elsewhere. This
one is rendered on the server from `/openapi.json`, with no script and no
outside asset.
"""

from __future__ import annotations

import html
import json


def docs_page(openapi: dict) -> str:
    """An HTML page listing every route of `openapi` with its summary and request example."""
    info = openapi.get("info", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(str(info.get('title', 'API')))}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f4f4f4;padding:.5em}</style></head><body>",
        f"<h1>{html.escape(str(info.get('title', 'API')))}</h1>",
        f"<p>Version {html.escape(str(info.get('version', '')))}. "
        "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, methods in sorted(openapi.get("paths", {}).items()):
        for method, operation in methods.items():
            parts.append(f"<h2><code>{html.escape(method.upper())} {html.escape(path)}</code></h2>")
            text = operation.get("description") or operation.get("summary") or ""
            parts.append(f"<p>{html.escape(text)}</p>")
            content = operation.get("requestBody", {}).get("content", {})
            example = content.get("application/json", {}).get("example")
            if example is not None:
                parts.append(f"<pre>{html.escape(json.dumps(example, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
