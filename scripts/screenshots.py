"""Regenerate docs/screenshots/: the Permissions page as each demo customer opens it, in their
language, at 360 px (a phone) and 1280 px (a laptop), full page, default state.

    .venv/bin/python scripts/screenshots.py

Starts the demo on SQLite in a temporary folder and drives Debian's Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the demo server the browser tests use

from browser_support import chromium, demo_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
# One demo customer per language: each sees the page in their account's language.
CUSTOMERS = {
    "fr": "Amélie Fontaine",
    "nl": "Bram Verhoeven",
    "de": "Clara Neumann",
    "en": "Dylan Carter",
}
VIEWPORTS = {360: 740, 1280: 800}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, demo_server(Path(folder)) as server:
        url = server.url
        with chromium() as browser:
            for lang, name in CUSTOMERS.items():
                for width, height in VIEWPORTS.items():
                    context = browser.new_context(
                        base_url=url, locale=lang, viewport={"width": width, "height": height}
                    )
                    page = context.new_page()
                    page.goto("/demo/login")
                    page.get_by_role("button", name=name).click()
                    page.wait_for_url("**/account")
                    page.goto(f"/permissions?lang={lang}")
                    path = OUT / f"permissions-{lang}-{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(f"{path.relative_to(ROOT)}", flush=True)
                    context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
