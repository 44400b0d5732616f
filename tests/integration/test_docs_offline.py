"""/docs (Swagger UI) and /redoc load their scripts and styles from this server, not a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_swagger_ui_and_redoc_reference_only_local_assets_that_are_served(
    client: TestClient,
) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        urls += re.findall(r"url: '([^']+)'", page.text)
        assert urls, path
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], (path, urls)
        for url in urls:
            if url.startswith("/api-docs-assets/"):
                asset = client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
    script = client.get("/api-docs-assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
